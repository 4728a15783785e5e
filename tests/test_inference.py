"""``eval.py`` and ``predict.py`` on one tiny trained demo run (module fixture): eval reproduces the
run's own test results from its checkpoint, tests other protocols and prepared folders, refuses
leaks and bad checkpoints; predict scores faces found and aligned as preprocessing does, in
batches, and reports every file it could not score."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import compose
from PIL import Image
from skimage import data

from engine.compose import compose_run_config
from engine.evaluate import EvalConfigError, evaluate
from engine.pipeline import run
from engine.predict import exit_code, predict
from engine.trained import TrainedRunError, load_detector, locate, trained_config
from evaluation.results import load_results, read_predictions

TRAIN = ["experiment=baseline_multidomain", "scale=demo", "trainer.max_epochs=1", "+trainer.limit_train_batches=2"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_root) -> Path:
    """A run directory of a tiny demo training (2 batches; its test is complete)."""
    run_dir = tmp_path_factory.mktemp("trained")
    run(compose(TRAIN, run_dir, synthetic_root))
    return run_dir


def compose_eval(overrides: list[str], output_dir: Path, synthetic_root: Path):
    """eval.py's config; the synthetic data cache comes from the trained run's own config."""
    extra = [f"paths.log_dir={output_dir / 'logs'}", "data.num_workers=0"]
    return compose_run_config([*extra, *overrides], output_dir, config_name="eval")


def test_training_run_draws_the_cheap_plots(trained):
    for name in ("roc_det_frame", "roc_det_video", "scores_by_domain", "scores_by_type"):
        with Image.open(trained / "plots" / f"{name}.png") as image:
            assert image.width > 300 and image.height > 200, name
    assert not (trained / "plots" / "tsne.png").exists()  # heavier plots are off by default
    assert not list((trained / "plots").glob("expert_usage*"))  # a ResNet has no experts


def test_eval_reproduces_the_runs_own_test(trained, tmp_path, synthetic_root):
    out = tmp_path / "eval"
    evaluate(compose_eval([f"ckpt={trained}"], out, synthetic_root))
    source, again = load_results(trained / "results.json"), load_results(out / "results.json")
    assert again["tests"] == source["tests"]  # same checkpoint, frames, threshold: same numbers
    assert again["validation"]["checkpoint"] == source["validation"]["checkpoint"]
    assert again["validation"]["threshold"] == source["validation"]["threshold"]
    assert again["config"]["eval"]["source_run_dir"] == str(trained)
    assert again["config"]["task_name"] == "eval" and again["extra"]["complete_evaluation"] is True
    for name in source["tests"]:
        pd.testing.assert_frame_equal(read_predictions(out / "predictions" / f"{name}.csv"), read_predictions(trained / "predictions" / f"{name}.csv"))
    assert (out / "plots" / "roc_det_frame.png").is_file()
    # the eval run directory is itself a run (its checkpoint: the one it tested), a .ckpt file works too
    again = compose_eval([f"ckpt={out}", "test_sets=[dfdc]", "plots=none"], tmp_path / "eval2", synthetic_root)
    evaluate(again)
    assert load_results(tmp_path / "eval2" / "results.json")["tests"] == {"dfdc": source["tests"]["dfdc"]}
    assert locate(trained / "checkpoints" / "last.ckpt") == (trained, trained / "checkpoints" / "last.ckpt")


def test_eval_on_another_protocol(trained, tmp_path, synthetic_root):
    out = tmp_path / "eval"
    cfg = compose_eval([f"ckpt={trained}", "protocol=ffpp_cross_dataset", "test_sets=[celebdf_v2,dfdcp]", "plots=none"], out, synthetic_root)
    evaluate(cfg)
    results = load_results(out / "results.json")
    assert set(results["tests"]) == {"celebdf_v2", "dfdcp"}
    assert results["extra"]["protocol"] == "ffpp_cross_dataset"
    assert results["config"]["eval"]["source_protocol"] == "multidomain_leave_wdf"
    with pytest.raises(EvalConfigError, match=r"\['nope'\] not in the chosen protocol"):
        evaluate(compose_eval([f"ckpt={trained}", "test_sets=[nope]"], tmp_path / "bad", synthetic_root))


def test_eval_refuses_test_frames_the_checkpoint_was_trained_on(trained, tmp_path, synthetic_root):
    leak = "+protocol.test.leak={dataset:ffpp_c23,split:train,domain:ffpp}"
    cfg = compose_eval([f"ckpt={trained}", "protocol=ffpp_cross_dataset", leak, "test_sets=[leak]"], tmp_path / "e", synthetic_root)
    with pytest.raises(ValueError, match="also training frames"):
        evaluate(cfg)
    assert not (tmp_path / "e" / "results.json").exists()


def test_eval_of_a_prepared_folder(trained, tmp_path, synthetic_root):
    """A folder as preprocessing writes it (index.csv + crops), scored as one test set even though
    the checkpoint was trained on synthetic stand-ins."""
    source = read_predictions(trained / "predictions" / "dfdc.csv")
    datamodule_cfg = trained_config(trained).data
    from datamodules.synthetic import SyntheticSpec, synthetic_dir

    base = synthetic_dir(Path(datamodule_cfg.synthetic.root), 0, SyntheticSpec())
    folder = tmp_path / "my_set"
    rows = []
    for row in source.itertuples():
        target = folder / "crops" / row.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(base / row.path, target)
        rows.append({"path": f"crops/{row.path}", "label": row.label, "domain": "mine", "type": row.type, "video_id": row.video_id, "split": "test"})
    pd.DataFrame(rows).to_csv(folder / "index.csv", index=False)
    out = tmp_path / "eval"
    evaluate(compose_eval([f"ckpt={trained}", f"prepared={folder}", "plots=none"], out, synthetic_root))
    scored = read_predictions(out / "predictions" / "my_set.csv")
    assert len(scored) == len(source)
    np.testing.assert_allclose(scored.sort_values("video_id")["score"].to_numpy(), source.sort_values("video_id")["score"].to_numpy(), atol=1e-6)
    with pytest.raises(EvalConfigError, match="index.csv does not exist"):
        evaluate(compose_eval([f"ckpt={trained}", f"prepared={tmp_path}"], tmp_path / "bad", synthetic_root))


class NotAWeight:
    pass


def test_bad_checkpoints_name_the_file(trained, tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(trained / "results.json", run_dir / "results.json")
    garbage = run_dir / "checkpoints" / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    cfg = trained_config(trained)
    with pytest.raises(TrainedRunError, match="garbage.ckpt: cannot be read"):
        load_detector(cfg, locate(garbage)[1])
    code = run_dir / "checkpoints" / "code.ckpt"  # weights_only refuses objects that would run code
    with code.open("wb") as handle:
        torch.save({"state_dict": {}, "payload": NotAWeight()}, handle)
    with pytest.raises(TrainedRunError, match="code.ckpt: cannot be read.*weights_only=True"):
        load_detector(cfg, code)
    other = run_dir / "checkpoints" / "other.ckpt"
    torch.save({"state_dict": {"fc.weight": torch.zeros(2)}}, other)
    with pytest.raises(TrainedRunError, match="other.ckpt: its weights do not fit"):
        load_detector(cfg, other)
    with pytest.raises(TrainedRunError, match="no such run directory or checkpoint file"):
        locate(tmp_path / "nowhere")


# ----------------------------------------------------------------------------- predict

ASTRONAUT_FACE = (170, 40, 290, 200)  # x0, y0, x1, y1 in the 512x512 photograph (tests/test_preprocess.py)


def write_video(path: Path, frames: list[np.ndarray]) -> None:
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=8)
    stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
    for frame in frames:
        container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
    container.mux(stream.encode())
    container.close()


def astronaut_clip(count: int) -> list[np.ndarray]:
    photo = data.astronaut()
    return [np.ascontiguousarray(photo[4 * k : 4 * k + 256, 96 + 3 * k : 96 + 3 * k + 256]) for k in range(count)]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inputs")
    Image.fromarray(data.astronaut()).save(root / "face.jpg", quality=95)
    (root / "clips").mkdir()
    write_video(root / "clips" / "astro.mp4", astronaut_clip(10))
    (root / "mixed").mkdir()
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(root / "mixed" / "blank.png")
    write_video(root / "mixed" / "grey.mp4", [np.full((128, 128, 3), 90, np.uint8)] * 4)
    (root / "mixed" / "broken.mp4").write_bytes(b"\x00" * 3000)
    (root / "mixed" / "notes.txt").write_text("not media")
    return root


def compose_predict(overrides: list[str], output_dir: Path):
    return compose_run_config([f"paths.log_dir={output_dir / 'logs'}", *overrides], output_dir, config_name="predict")


def test_predict_scores_aligned_faces_and_reports_every_file(trained, inputs, tmp_path):
    cfg = compose_predict([f"ckpt={trained}", f"inputs=[{inputs / 'face.jpg'},{inputs / 'clips'},{inputs / 'mixed'}]", "frames=4", "batch_size=3"], tmp_path)
    summary = predict(cfg)
    assert summary == {
        "files": 6, "scored": 2, "no_face": 2, "unreadable": 1, "skipped": 1,
        "frames_sampled": 1 + 4 + 1 + 4, "frames_scored": 5, "frames_no_face": 5,
    }
    assert exit_code(summary) == 1  # a file that cannot be decoded fails the command (after writing)
    files = pd.read_csv(tmp_path / "files.csv").set_index("path")
    frames = pd.read_csv(tmp_path / "frames.csv")
    status = {Path(p).name: s for p, s in files["status"].items()}
    assert status == {"face.jpg": "ok", "astro.mp4": "ok", "blank.png": "no_face", "grey.mp4": "no_face", "broken.mp4": "unreadable", "notes.txt": "skipped"}
    for name in ("blank.png", "grey.mp4", "broken.mp4", "notes.txt"):
        assert len(str(files.loc[str(next(inputs.rglob(name))), "message"])) > 20, name  # every unscored file says why
    video = frames[frames["path"].str.endswith("astro.mp4")]
    assert video["frame_index"].tolist() == [1, 3, 6, 8]  # uniform over 10 frames, as preprocessing
    assert files.loc[str(inputs / "clips" / "astro.mp4"), "score"] == pytest.approx(video["score"].mean())
    box = json.loads(frames.loc[frames["path"].str.endswith("face.jpg"), "box"].item())
    assert ASTRONAUT_FACE[0] - 10 <= box[0] < box[2] <= ASTRONAUT_FACE[2] + 10  # the astronaut's face
    report = json.loads((tmp_path / "predictions.json").read_text())
    assert report["counts"] == summary and report["settings"]["crop_size"] == 256
    threshold = report["threshold"]
    assert files.loc[str(inputs / "face.jpg"), "prediction"] == ("fake" if files.loc[str(inputs / "face.jpg"), "score"] >= threshold else "real")

    # the image's score is the detector's P(fake) of the crop preprocessing would have written
    from datamodules.preprocess.faces import FaceAligner, choose_largest
    from datamodules.transforms import build_transform

    model = load_detector(trained_config(trained), locate(trained)[1])
    photo = np.asarray(Image.open(inputs / "face.jpg").convert("RGB"))
    aligner = FaceAligner(size=256, margin=1.3)
    crop = aligner.align(photo, choose_largest(aligner.detect(photo))).crop
    image = build_transform(model.input_size, model.normalization, train=False)(Image.fromarray(crop))
    with torch.inference_mode():
        expected = float(model(image[None], None).fake_probability()[0])
    assert files.loc[str(inputs / "face.jpg"), "score"] == pytest.approx(expected, abs=1e-6)


def test_predict_on_crops_matches_the_test_scores(trained, tmp_path):
    """faces=none scores inputs that are face crops already: the run's own test frames get the
    scores its predictions file holds (same transform, same model, other batches)."""
    source = read_predictions(trained / "predictions" / "ffpp.csv").head(12)
    from datamodules.synthetic import SyntheticSpec, synthetic_dir

    base = synthetic_dir(Path(trained_config(trained).data.synthetic.root), 0, SyntheticSpec())
    files = [str(base / p) for p in source["path"]]
    summary = predict(compose_predict([f"ckpt={trained}", f"inputs=[{','.join(files)}]", "faces=none", "batch_size=5"], tmp_path))
    assert summary["scored"] == 12
    scored = pd.read_csv(tmp_path / "files.csv")
    np.testing.assert_allclose(scored["score"].to_numpy(), source["score"].to_numpy(), atol=1e-5)


def test_predict_input_errors(trained, tmp_path):
    with pytest.raises(ValueError, match="does not exist; expected image or video"):
        predict(compose_predict([f"ckpt={trained}", f"inputs=[{tmp_path / 'missing.jpg'}]"], tmp_path))
    with pytest.raises(ValueError, match="expected a file, a folder or a list"):
        predict(compose_predict([f"ckpt={trained}", "inputs=null"], tmp_path))
    with pytest.raises(ValueError, match="faces='eyes'"):
        predict(compose_predict([f"ckpt={trained}", f"inputs=[{tmp_path}]", "faces=eyes"], tmp_path))


# ----------------------------------------------------------------------------- documented commands

def documented_block(path: Path) -> str:
    """The fenced bash block of ``path`` whose lines run eval.py and predict.py (a comment naming them,
    as the README's Commands block has, does not count)."""
    import re

    blocks = re.findall(r"^```bash\n(.*?)^```", path.read_text(encoding="utf-8"), re.S | re.M)
    chosen = [b for b in blocks if re.search(r"^python eval\.py", b, re.M) and re.search(r"^python predict\.py", b, re.M)]
    assert len(chosen) == 1, path
    return chosen[0]


@pytest.mark.slow
def test_documented_commands(tmp_path):
    """The README's block (the same in docs/INFERENCE.md), run as written by bash in a fresh copy of
    the repository, with the user's files: a photograph face.jpg and a video in clips/."""
    import os
    import subprocess

    from conftest import REPO

    block = documented_block(REPO / "README.md")
    assert documented_block(REPO / "docs" / "INFERENCE.md") == block
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    fresh = tmp_path / "facemoe"
    for name in listed:
        if (REPO / name).is_file():
            (fresh / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, fresh / name)
    Image.fromarray(data.astronaut()).save(fresh / "face.jpg", quality=95)
    (fresh / "clips").mkdir()
    write_video(fresh / "clips" / "astro.mp4", astronaut_clip(10))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FACEMOE_", "PYTHONPATH"))}
    env.update({"OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"})
    if os.environ.get("FACEMOE_CACHE"):  # the shared synthetic data cache, as a user may set it
        env["FACEMOE_CACHE"] = os.environ["FACEMOE_CACHE"]
    done = subprocess.run(["bash", "-e", "-c", block], cwd=fresh, env=env, capture_output=True, text=True, timeout=3000)
    assert done.returncode == 0, done.stderr[-4000:]
    [train_dir] = (fresh / "logs" / "train" / "runs").iterdir()
    [eval_dir] = (fresh / "logs" / "eval" / "runs").iterdir()
    [predict_dir] = (fresh / "logs" / "predict" / "runs").iterdir()
    results = load_results(eval_dir / "results.json")
    assert results["extra"]["protocol"] == "ffpp_cross_dataset" and results["config"]["eval"]["source_run_dir"] == str(train_dir)
    assert (eval_dir / "plots" / "roc_det_frame.png").is_file() and (train_dir / "plots" / "roc_det_frame.png").is_file()
    files = pd.read_csv(predict_dir / "files.csv")
    assert files["path"].tolist() == ["face.jpg", "clips/astro.mp4"] and (files["status"] == "ok").all()


@pytest.mark.slow
def test_plots_become_wandb_images(trained, tmp_path, synthetic_root):
    """With a W&B logger (offline) the figures are logged as images of the W&B run too."""
    out = tmp_path / "eval"
    evaluate(compose_eval([f"ckpt={trained}", "logger=wandb", "test_sets=[dfdc]"], out, synthetic_root))
    [run_dir] = (out / "wandb").glob("offline-run-*")
    logged = {p.name.split("_")[0] for p in (run_dir / "files" / "media" / "images" / "plots").glob("*.png")}
    assert {"roc", "scores"} <= logged, logged
