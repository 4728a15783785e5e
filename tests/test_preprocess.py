"""Face preprocessing: sampling, alignment maths, and the pipeline on a real photograph.

The astronaut photograph of scikit-image (face roughly x 170-290, y 40-200 in the 512x512
image, checked by drawing the box) is turned into short videos with PyAV; videos that cannot
be opened, that hold no face, or whose header announces more frames than they hold, sit beside
it so that one pipeline run checks what is written and what is reported.
"""

from __future__ import annotations

import inspect
import json
import re
import shlex
import sys
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage import data

from datamodules.preprocess import PreprocessConfig, PreprocessError, format_summary, preprocess_records
from datamodules.preprocess.__main__ import build_parser, main, parse_reader_options
from datamodules.preprocess.faces import (
    apply_affine,
    box_mask_iou,
    canonical_template,
    landmark_model_path,
    umeyama_similarity,
)
from datamodules.preprocess.video import list_frame_files, uniform_indices

ASTRONAUT_FACE = (170, 40, 290, 200)  # x0, y0, x1, y1 in the 512x512 photograph
FRAME_SIDE = 256
N_FRAMES = 4
EYE_TOLERANCE_PX = 8.0  # dlib landmarks on a ~90 px face vs the template, in a 256 px crop


def astronaut_window(step: int) -> tuple[np.ndarray, tuple[int, int]]:
    """A 256x256 window of the photograph holding the face, moved by a few pixels per step."""
    x0, y0 = 96 + 3 * step, 4 * step
    image = data.astronaut()
    return np.ascontiguousarray(image[y0 : y0 + FRAME_SIDE, x0 : x0 + FRAME_SIDE]), (x0, y0)


def write_video(
    path: Path, frames: list[np.ndarray], options: dict[str, str] | None = None, gop: int = 12
) -> None:
    container = av.open(str(path), "w", options=options or {})
    stream = container.add_stream("libx264", rate=8)
    stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
    stream.options = {"g": str(gop)}
    for frame in frames:
        container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
    container.mux(stream.encode())
    container.close()


def record(
    path: str, video_id: str, media: str = "video", label: int = 0, **extra: object
) -> dict[str, object]:
    return {
        "path": path,
        "label": label,
        "domain": "toy",
        "type": "real" if label == 0 else "fake",
        "video_id": video_id,
        "split": "test",
        "media": media,
        **extra,
    }


def overlap_fraction(box: list[float], region: tuple[float, float, float, float]) -> float:
    """Share of ``box`` inside ``region``."""
    width = max(0.0, min(box[2], region[2]) - max(box[0], region[0]))
    height = max(0.0, min(box[3], region[3]) - max(box[1], region[1]))
    return width * height / ((box[2] - box[0]) * (box[3] - box[1]))


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("toy_dataset")
    write_video(root / "astro.mp4", [astronaut_window(step)[0] for step in range(8)])
    write_video(root / "blank.mp4", [np.full((FRAME_SIDE, FRAME_SIDE, 3), 128, np.uint8)] * N_FRAMES)
    # Header at the front (faststart), one keyframe per frame, then cut: the header announces
    # 16 frames, fewer exist.
    write_video(
        root / "full.mp4", [astronaut_window(s % 8)[0] for s in range(16)], {"movflags": "faststart"}, gop=1
    )
    full = (root / "full.mp4").read_bytes()
    (root / "lying.mp4").write_bytes(full[: int(len(full) * 0.6)])
    # Header at the end (the default), cut in half: cannot even be opened.
    (root / "corrupt.mp4").write_bytes((root / "astro.mp4").read_bytes()[:4000])
    Image.fromarray(data.astronaut()).save(root / "astronaut.png")
    frames_dir = root / "frames"
    frames_dir.mkdir()
    for k in range(12):  # unpadded names: "10.png" sorts before "2.png" as text
        Image.fromarray(astronaut_window(k % 8)[0]).save(frames_dir / f"{k}.png")
    return root


@pytest.fixture(scope="module")
def main_run(dataset_root: Path, tmp_path_factory: pytest.TempPathFactory):
    records = pd.DataFrame(
        [
            record("astro.mp4", "toy/astro"),
            record("blank.mp4", "toy/blank"),
            record("corrupt.mp4", "toy/corrupt"),
            record("lying.mp4", "toy/lying"),
            record("astronaut.png", "toy/image", media="image"),
            record("frames", "toy/frames", media="frames"),
        ]
    )
    out = tmp_path_factory.mktemp("crops")
    result = preprocess_records(
        records, dataset_root, out, PreprocessConfig(frames=N_FRAMES), show_progress=False
    )
    return result, out


# ----------------------------------------------------------------------------- pure functions


def test_uniform_indices_cover_the_whole_video_not_its_start() -> None:
    indices = uniform_indices(100, 4)
    assert indices.tolist() == [12, 37, 62, 87]  # centres of four equal segments
    assert uniform_indices(8, 4).tolist() == [1, 3, 5, 7]
    long = uniform_indices(10_000, 32)
    assert np.all(np.diff(long) > 0) and long[0] < 10_000 / 32 and long[-1] > 10_000 * 31 / 32
    assert uniform_indices(3, 8).tolist() == [0, 1, 2]  # short video: each frame once, no repeats


def test_umeyama_recovers_a_known_similarity() -> None:
    rng = np.random.default_rng(0)
    source = rng.uniform(0, 200, size=(5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -40.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = scale * source @ rotation.T + shift
    matrix = umeyama_similarity(source, target)
    np.testing.assert_allclose(matrix[:, :2], scale * rotation, atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-9)
    np.testing.assert_allclose(apply_affine(matrix, source), target, atol=1e-9)


def test_template_margin_shrinks_the_face_around_the_centre() -> None:
    tight, loose = canonical_template(256, 1.0), canonical_template(256, 1.3)
    centre = np.array([128.0, 128.0])
    np.testing.assert_allclose(loose - centre, (tight - centre) / 1.3)
    assert tight[0, 0] < tight[1, 0] and tight[3, 1] > tight[0, 1]  # left eye left, mouth below eyes


def test_box_mask_iou() -> None:
    mask = np.zeros((100, 100), bool)
    mask[10:30, 10:30] = True
    assert box_mask_iou((10, 10, 30, 30), mask) == pytest.approx(1.0)
    assert box_mask_iou((20, 10, 40, 30), mask) == pytest.approx(200 / 600)
    assert box_mask_iou((60, 60, 90, 90), mask) == 0.0


def test_landmark_model_found_without_importing_its_package() -> None:
    assert landmark_model_path("68").stat().st_size > 1_000_000
    assert "face_recognition_models" not in sys.modules  # its __init__ needs pkg_resources


def test_frame_files_in_natural_order(dataset_root: Path) -> None:
    names = [p.name for p in list_frame_files(dataset_root / "frames")]
    assert names == [f"{k}.png" for k in range(12)]


# ----------------------------------------------------------------------------- the pipeline


def test_video_crops_are_aligned_on_the_template(main_run) -> None:
    result, out = main_run
    rows = result.index[result.index["video_id"] == "toy/astro"]
    assert rows["frame_index"].tolist() == [1, 3, 5, 7]  # spread over the 8 frames
    template = canonical_template(256, 1.3)
    for row in rows.itertuples():
        crop = Image.open(out / row.path)
        assert crop.size == (256, 256)
        landmarks = np.array(json.loads(row.landmarks))
        assert landmarks.shape == (5, 2)
        eye_error = np.linalg.norm(landmarks[:2] - template[:2], axis=1)
        assert eye_error.max() < EYE_TOLERANCE_PX, eye_error
        # The detected box, moved back into photograph coordinates, is on the astronaut's face.
        _, (x0, y0) = astronaut_window(row.frame_index)
        box = json.loads(row.box)
        box_in_photo = [box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0]
        assert overlap_fraction(box_in_photo, ASTRONAUT_FACE) > 0.9, box_in_photo


def test_image_and_frame_folder_records(main_run) -> None:
    result, out = main_run
    image_rows = result.index[result.index["video_id"] == "toy/image"]
    assert image_rows["frame_index"].tolist() == [0]
    assert overlap_fraction(json.loads(image_rows.iloc[0]["box"]), ASTRONAUT_FACE) > 0.9
    folder_rows = result.index[result.index["video_id"] == "toy/frames"]
    assert folder_rows["frame_index"].tolist() == [1, 4, 7, 10]
    for row in folder_rows.itertuples():
        _, (x0, y0) = astronaut_window(row.frame_index % 8)
        box = json.loads(row.box)
        assert overlap_fraction([box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0], ASTRONAUT_FACE) > 0.9


def test_index_file_matches_the_records_contract(main_run) -> None:
    result, out = main_run
    on_disk = pd.read_csv(out / "index.csv")
    assert (
        len(on_disk) == len(result.index) == 2 * N_FRAMES + 1 + (result.index.video_id == "toy/lying").sum()
    )
    assert {"path", "label", "domain", "type", "video_id", "split", "frame_index", "landmarks"} <= set(
        on_disk.columns
    )
    assert (on_disk["media"] == "image").all()
    assert all(np.array(json.loads(value)).shape == (5, 2) for value in on_disk["landmarks"])
    assert all((out / p).is_file() for p in on_disk["path"])
    assert set(on_disk.loc[on_disk.video_id == "toy/astro", "source_path"]) == {"astro.mp4"}


def test_undecodable_video_is_reported_and_the_others_still_processed(main_run) -> None:
    result, out = main_run
    report = json.loads((out / "report.json").read_text())
    assert report["counts"]["failed"] == 1
    assert [f["video_id"] for f in report["failed"]] == ["toy/corrupt"]
    assert "corrupt.mp4" in report["failed"][0]["error"]
    assert "toy/corrupt" not in set(result.index["video_id"])
    assert not (out / "parts" / "toy" / "corrupt.json").exists()  # retried on the next run
    assert "toy/corrupt" in format_summary(report)


def test_frames_without_a_face_are_counted_and_listed(main_run) -> None:
    result, out = main_run
    report = json.loads((out / "report.json").read_text())
    blank = [entry for entry in report["no_face"] if entry["video_id"] == "toy/blank"]
    assert blank and blank[0]["frame_indices"] == [0, 1, 2, 3]
    assert report["counts"]["frames_no_face"] >= N_FRAMES
    short = {entry["video_id"]: entry for entry in report["short"]}
    assert short["toy/blank"]["frames_written"] == 0 and short["toy/blank"]["frames_requested"] == N_FRAMES
    assert "toy/blank" not in set(result.index["video_id"])


def test_video_whose_header_lies_is_resampled_over_its_real_length(main_run) -> None:
    result, out = main_run
    report = json.loads((out / "report.json").read_text())
    mismatch = {entry["video_id"]: entry for entry in report["frame_count_mismatch"]}
    decoded = mismatch["toy/lying"]["decoded_count"]
    assert mismatch["toy/lying"]["metadata_count"] == 16 and N_FRAMES <= decoded < 16
    rows = result.index[result.index["video_id"] == "toy/lying"]
    # Sampled over the frames that exist, not over the 16 announced ([2, 6, 10, 14]).
    assert rows["frame_index"].tolist() == uniform_indices(decoded, N_FRAMES).tolist()
    assert rows["frame_index"].max() >= decoded * 3 // 4  # reaches the end of the real video
    assert [entry["video_id"] for entry in report["decode_errors"]] == ["toy/lying"]


def test_resume_skips_finished_videos_and_redoes_partial_ones(dataset_root: Path, tmp_path: Path) -> None:
    records = pd.DataFrame([record("astro.mp4", "toy/done"), record("astro.mp4", "toy/partial")])
    config = PreprocessConfig(frames=2)
    first = preprocess_records(records, dataset_root, tmp_path, config, show_progress=False)
    assert sorted(first.processed_now) == ["toy/done", "toy/partial"]
    done_files = sorted((tmp_path / "crops" / "toy" / "done").iterdir()) + [
        tmp_path / "parts" / "toy" / "done.json"
    ]
    done_mtimes = [p.stat().st_mtime_ns for p in done_files]
    # Simulate a run killed while writing "partial": crops on disk, no done-marker, a stray file.
    (tmp_path / "parts" / "toy" / "partial.json").unlink()
    stray = tmp_path / "crops" / "toy" / "partial" / "999999.png"
    stray.write_bytes(b"half-written")

    second = preprocess_records(records, dataset_root, tmp_path, config, show_progress=False)
    assert second.processed_now == ["toy/partial"]
    assert [p.stat().st_mtime_ns for p in done_files] == done_mtimes
    assert not stray.exists()
    assert second.report["counts"]["skipped_already_done"] == 1
    assert second.report["redone_partial"] == ["toy/partial"]
    pd.testing.assert_frame_equal(second.index, first.index)

    with pytest.raises(PreprocessError, match="other settings"):
        preprocess_records(
            records, dataset_root, tmp_path, PreprocessConfig(frames=2, size=128), show_progress=False
        )


def test_resume_with_other_reader_options_updates_rows_not_crops(dataset_root: Path, tmp_path: Path) -> None:
    """Re-running into the same folder after the reader's split or columns changed never keeps
    the old split: the rows follow the new records (crops reused); a changed source is redone."""
    config = PreprocessConfig(frames=2)
    first_records = pd.DataFrame(
        [record("astro.mp4", "toy/a"), record("astronaut.png", "toy/b", media="image")]
    )
    preprocess_records(first_records, dataset_root, tmp_path, config, show_progress=False)
    crops = sorted((tmp_path / "crops" / "toy" / "a").iterdir())
    mtimes = [p.stat().st_mtime_ns for p in crops]

    changed = first_records.assign(split=["train", "test"], role=["intra_test", "cross_test"])
    second = preprocess_records(changed, dataset_root, tmp_path, config, show_progress=False)
    assert second.processed_now == []
    # toy/a: new split and a new column; toy/b: the new column
    assert (
        second.report["records_updated"] == ["toy/a", "toy/b"]
        and second.report["counts"]["records_updated"] == 2
    )
    assert [p.stat().st_mtime_ns for p in crops] == mtimes
    on_disk = pd.read_csv(tmp_path / "index.csv")
    assert on_disk.groupby("video_id")["split"].agg(set).to_dict() == {"toy/a": {"train"}, "toy/b": {"test"}}
    assert set(on_disk.loc[on_disk["video_id"] == "toy/a", "role"]) == {"intra_test"}

    third = preprocess_records(changed, dataset_root, tmp_path, config, show_progress=False)
    assert third.report["counts"]["records_updated"] == 0 and third.processed_now == []

    moved = changed.assign(path=["full.mp4", "astronaut.png"])  # same id, other source: redo
    fourth = preprocess_records(moved, dataset_root, tmp_path, config, show_progress=False)
    assert fourth.processed_now == ["toy/a"]
    assert set(fourth.index.loc[fourth.index["video_id"] == "toy/a", "source_path"]) == {"full.mp4"}


def two_faces() -> tuple[np.ndarray, np.ndarray]:
    """A 256x512 frame: a large face (left) and a smaller one (right), and a mask over the small one."""
    photo = data.astronaut()
    large_face = photo[0:256, 96:352]  # face about 90 px
    small_face = np.asarray(Image.fromarray(photo).resize((307, 307)))[0:256, 40:296]  # about 55 px
    mask = np.zeros((256, 512), np.uint8)
    mask[60:100, 330:375] = 255  # over the small face only
    return np.ascontiguousarray(np.concatenate([large_face, small_face], axis=1)), mask


def test_mask_chooses_the_manipulated_face_not_the_largest(tmp_path: Path) -> None:
    frame, mask = two_faces()
    Image.fromarray(frame).save(tmp_path / "two.png")
    Image.fromarray(mask).save(tmp_path / "two_mask.png")
    records = pd.DataFrame(
        [
            record("two.png", "toy/fake", media="image", label=1, mask_path="two_mask.png"),
            record("two.png", "toy/real", media="image", mask_path=None),
        ]
    )
    result = preprocess_records(
        records, tmp_path, tmp_path / "out", PreprocessConfig(face="mask"), show_progress=False
    )
    boxes = {row.video_id: json.loads(row.box) for row in result.index.itertuples()}
    assert boxes["toy/fake"][0] > 256  # the masked (right, smaller) face
    assert boxes["toy/real"][0] < 256  # no mask for reals: the largest face
    assert result.report["counts"]["frames_mask_fallback"] == 0

    with pytest.raises(PreprocessError, match="mask_path"):
        preprocess_records(
            records.drop(columns="mask_path"), tmp_path, tmp_path / "out2", PreprocessConfig(face="mask")
        )


def test_ffpp_masks_layout_drives_the_face_choice(tmp_path: Path) -> None:
    """FF++ as downloaded, with mask videos under manipulated_sequences/<method>/masks/videos."""
    from fixtures_layouts import build_ffpp, touch

    from datamodules.readers import get_reader

    frame, mask = two_faces()
    root = tmp_path / "ffpp"
    build_ffpp(
        root,
        methods=("Deepfakes", "FaceShifter"),
        pairs={"train": [], "val": [], "test": [("000", "001")]},
        write_video=lambda path: write_video(touch(path), [frame] * 2),
        masks="all",
        write_mask=lambda path: write_video(touch(path), [np.repeat(mask[..., None], 3, axis=2)] * 2),
    )
    with pytest.warns(UserWarning, match="FaceShifter has no masks"):
        records = get_reader("ffpp")(root, methods=["Deepfakes", "FaceShifter"], masks=True)
    result = preprocess_records(
        records, root, tmp_path / "out", PreprocessConfig(frames=1, face="mask"), show_progress=False
    )
    assert result.report["counts"]["failed"] == 0 and len(result.index) == 6
    for row in result.index.itertuples():
        x0 = json.loads(row.box)[0]
        if row.type == "Deepfakes":
            assert x0 > 256, row.video_id  # the face under the mask, not the largest
            assert row.mask_path.startswith("manipulated_sequences/Deepfakes/masks/videos/")
        else:
            assert x0 < 256, row.video_id  # real and FaceShifter (no masks): the largest face
    assert result.report["counts"]["frames_mask_fallback"] == 0


def test_undecodable_image_is_a_reported_failure(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "0.png").write_bytes(b"not an image")
    records = pd.DataFrame(
        [record("broken.png", "toy/broken", media="image"), record("frames", "toy/frames", media="frames")]
    )
    result = preprocess_records(
        records, tmp_path, tmp_path / "out", PreprocessConfig(frames=1), show_progress=False
    )
    failed = {f["video_id"]: f["error"] for f in result.report["failed"]}
    assert set(failed) == {"toy/broken", "toy/frames"} and result.index.empty
    assert "broken.png" in failed["toy/broken"] and "0.png" in failed["toy/frames"]
    assert result.report["counts"]["failed"] == 2


def test_records_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(PreprocessError, match="media"):
        preprocess_records(
            pd.DataFrame([record("a.mp4", "x")]).drop(columns="media"), tmp_path, tmp_path / "o"
        )
    duplicated = pd.DataFrame([record("a.mp4", "x"), record("b.mp4", "x")])
    with pytest.raises(PreprocessError, match="unique"):
        preprocess_records(duplicated, tmp_path, tmp_path / "o")


def test_reader_options_parse_as_the_key_value_overrides_of_every_command() -> None:
    assert parse_reader_options(["limit=10", "compression=c23", 'methods=["Deepfakes"]', "types=[a,b]"]) == {
        "limit": 10,
        "compression": "c23",
        "methods": ["Deepfakes"],
        "types": ["a", "b"],
    }
    with pytest.raises(PreprocessError, match="key=value"):
        parse_reader_options(["oops"])


def test_command_line_runs_the_named_reader(dataset_root: Path, tmp_path: Path, monkeypatch) -> None:
    import datamodules.readers

    calls = []

    def toy_reader(root: Path, **options: object) -> pd.DataFrame:
        calls.append((Path(root), options))
        return pd.DataFrame([record("astronaut.png", "toy/cli", media="image")])

    monkeypatch.setattr(datamodules.readers, "get_reader", lambda name: toy_reader, raising=False)
    status = main(
        ["--dataset", "toy", "--root", str(dataset_root), "--out", str(tmp_path), "--size", "128", "limit=1"]
    )
    assert status == 0
    assert calls == [(dataset_root, {"limit": 1})]
    index = pd.read_csv(tmp_path / "index.csv")
    assert index["video_id"].tolist() == ["toy/cli"]
    assert Image.open(tmp_path / index["path"][0]).size == (128, 128)
    # Contract errors end with status 2 and a message, not a traceback.
    assert (
        main(
            ["--dataset", "toy", "--root", str(dataset_root), "--out", str(tmp_path / "m"), "--face", "mask"]
        )
        == 2
    )


@pytest.mark.slow
def test_worker_processes_give_the_same_index_as_one_process(dataset_root: Path, tmp_path: Path) -> None:
    records = pd.DataFrame(
        [record("astro.mp4", "toy/a"), record("astro.mp4", "toy/b"), record("blank.mp4", "toy/c")]
    )
    serial = preprocess_records(
        records, dataset_root, tmp_path / "one", PreprocessConfig(frames=2), show_progress=False
    )
    parallel = preprocess_records(
        records, dataset_root, tmp_path / "two", PreprocessConfig(frames=2, workers=2), show_progress=False
    )
    pd.testing.assert_frame_equal(serial.index, parallel.index)
    assert parallel.report["counts"] == serial.report["counts"]
    for path in serial.index["path"]:
        assert np.array_equal(
            np.asarray(Image.open(tmp_path / "one" / path)), np.asarray(Image.open(tmp_path / "two" / path))
        )


# ----------------------------------------------------------------------------- the documented commands

DOCS = Path(__file__).resolve().parent.parent / "docs"
COMMAND = ["python", "-m", "datamodules.preprocess"]
SHELL_WORDS = {"done", "do", "for", "export"}


def documented_commands(doc: Path) -> list[list[str]]:
    """The arguments of every ``python -m datamodules.preprocess`` command in the bash blocks of ``doc``."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", doc.read_text(encoding="utf-8"), re.S):
        tokens = shlex.split(block.replace("\\\n", " "), comments=True)
        starts = [i for i in range(len(tokens)) if tokens[i : i + 3] == COMMAND]
        for start, end in zip(starts, [*starts[1:], len(tokens)]):
            argv = []
            for token in tokens[start + 3 : end]:
                if token in SHELL_WORDS:
                    break
                argv.append(token)
            commands.append(argv)
    return commands


@pytest.mark.parametrize("doc", ["DATASETS.md", "PREPROCESS.md"])
def test_documented_commands_match_the_cli_and_the_readers(doc: str) -> None:
    """Every documented command parses with the real CLI, and its key=value options are options
    of the named reader; DATASETS.md prepares every reader into a folder the configs name."""
    from omegaconf import OmegaConf

    from datamodules.readers import READERS, get_reader

    commands = documented_commands(DOCS / doc)
    assert commands
    catalogue = OmegaConf.load(DOCS.parent / "conf" / "data" / "default.yaml")["datasets"]
    for argv in commands:
        args = build_parser().parse_args(argv)
        options = parse_reader_options(args.reader_options)
        inspect.signature(get_reader(args.dataset)).bind(args.root, **options)  # TypeError names a bad option
        if doc == "DATASETS.md" and "$" not in args.out.name:
            assert args.out.name in catalogue, f"{args.out} is no dataset of conf/data/default.yaml"
    if doc == "DATASETS.md":
        assert {build_parser().parse_args(argv).dataset for argv in commands} == set(READERS)


def test_uniattack_repeated_list_lines_are_counted_in_the_report(tmp_path: Path, capsys) -> None:
    """The documented command on a UniAttackData tree whose lists repeat lines (as released)."""
    from fixtures_layouts import UNIATTACK_IMAGES, build_uniattack_research

    root = tmp_path / "release"
    build_uniattack_research(root, protocol="p1", repeats={"test": 2})
    for step, (relative, _) in enumerate(p for entries in UNIATTACK_IMAGES.values() for p in entries):
        Image.fromarray(astronaut_window(step % 8)[0]).save(root / relative, format="JPEG", quality=90)
    out = tmp_path / "uniattack_p1"
    status = main(
        ["--dataset", "uniattack", "--root", str(root), "--out", str(out), "--size", "96", "protocol=p1"]
    )
    assert status == 0
    report = json.loads((out / "report.json").read_text())
    assert report["reader"]["repeated_list_lines"] == 2
    assert report["reader"]["repeated_lines_by_list"] == {
        "UniAttackData@p1_image_test.txt": {"count": 2, "lines": [4, 5]}
    }
    assert report["counts"]["videos"] == sum(len(v) for v in UNIATTACK_IMAGES.values())
    assert "2 repeated list line(s)" in capsys.readouterr().err
