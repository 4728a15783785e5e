"""Builders of tiny dataset trees in the official layouts, for the reader and index tests.

Each ``build_<dataset>(root, ...)`` writes placeholder media plus the real label/split files of
that dataset, and returns what the tests should expect (counts, names). Options create the
variations users meet: ``c0`` instead of ``raw``, folder names with spaces, tar archives,
missing newlines.

Videos are 1-byte placeholders by default (the readers only list files). A test that decodes
passes ``write_video=write_tiny_video`` to get tiny real MP4s written with PyAV instead.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

PLACEHOLDER = b"\0"
FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
FFPP_PAIRS: dict[str, list[tuple[str, str]]] = {
    "train": [("000", "001"), ("002", "003")],
    "val": [("004", "005")],
    "test": [("006", "007")],
}


def touch(path: Path, data: bytes = PLACEHOLDER) -> Path:
    """Write a small file, creating its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_tiny_video(path: Path, frames: int = 4, size: int = 32, fps: int = 10) -> Path:
    """Write a real, decodable H.264/MPEG-4 video of ``frames`` moving-gradient frames (PyAV)."""
    import av  # imported here: listing tests never need it

    path.parent.mkdir(parents=True, exist_ok=True)
    ramp = np.linspace(0, 255, size, dtype=np.uint8)
    with av.open(str(path), mode="w") as container:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream = container.add_stream(codec, rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for index in range(frames):
            image = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], np.uint8(index * 40)), axis=-1)
            for packet in stream.encode(
                av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            ):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


VideoWriter = Callable[[Path], object]


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def build_ffpp(
    root: Path,
    compression_folder: str = "c23",
    methods: tuple[str, ...] = FFPP_METHODS,
    pairs: dict[str, list[tuple[str, str]]] | None = None,
    write_video: VideoWriter = touch,
    masks: str = "some",
    write_mask: VideoWriter = touch,
) -> dict[str, list[tuple[str, str]]]:
    """FF++ originals + fakes for every pair (a_b and b_a) and the three split JSONs at root.

    ``masks``: "some" writes the mask video of fake a_b only (b_a lacks one), "all" of every
    fake, "none" no masks folder; FaceShifter never gets masks, as in the release.
    """
    if masks not in ("some", "all", "none"):
        raise ValueError(f"masks must be some, all or none, got {masks!r}")
    pairs = pairs if pairs is not None else FFPP_PAIRS
    for split, split_pairs in pairs.items():
        write_text(root / f"{split}.json", json.dumps([list(p) for p in split_pairs]))
        for first, second in split_pairs:
            for stem in (first, second):
                write_video(
                    root / "original_sequences/youtube" / compression_folder / "videos" / f"{stem}.mp4"
                )
            for method in methods:
                for stem in (f"{first}_{second}", f"{second}_{first}"):
                    write_video(
                        root
                        / "manipulated_sequences"
                        / method
                        / compression_folder
                        / "videos"
                        / f"{stem}.mp4"
                    )
                if masks == "none" or method == "FaceShifter":
                    continue
                mask_stems = [f"{first}_{second}"] + ([f"{second}_{first}"] if masks == "all" else [])
                for stem in mask_stems:
                    write_mask(root / "manipulated_sequences" / method / "masks/videos" / f"{stem}.mp4")
    return pairs


DFD_REALS = ("01__talking_against_wall", "02__walking_outside")
DFD_FAKES = (
    "01_02__talking_against_wall__ABCDEFGH",
    "02_01__walking_outside__IJKLMNOP",
    "01_02__walking_outside__QRSTUVWX",
)


def build_dfd(
    root: Path, compression_folder: str = "c23", write_video: VideoWriter = touch, masks: bool = False
) -> None:
    """DFD actors (real) and DeepFakeDetection (fake) videos inside an FF++ tree (+ fake masks)."""
    for stem in DFD_REALS:
        write_video(root / "original_sequences/actors" / compression_folder / "videos" / f"{stem}.mp4")
    for stem in DFD_FAKES:
        write_video(
            root / "manipulated_sequences/DeepFakeDetection" / compression_folder / "videos" / f"{stem}.mp4"
        )
        if masks:
            touch(root / "manipulated_sequences/DeepFakeDetection/masks/videos" / f"{stem}.mp4")


CELEBDF_REAL = ("id0_0000", "id0_0001", "id1_0000", "id2_0000", "id3_0000", "id4_0000", "id5_0000")
CELEBDF_YOUTUBE = ("00000", "00001", "00002", "00003")
CELEBDF_FAKE = (
    "id0_id1_0000",
    "id0_id2_0001",
    "id1_id0_0000",
    "id2_id3_0000",
    "id3_id0_0000",
    "id4_id5_0000",
    "id5_id4_0000",
)
# (official label: 1 = real, 0 = fake, path)
CELEBDF_TEST = (
    ("1", "Celeb-real/id3_0000.mp4"),
    ("1", "YouTube-real/00003.mp4"),
    ("0", "Celeb-synthesis/id3_id0_0000.mp4"),
    ("0", "Celeb-synthesis/id2_id3_0000.mp4"),
)


def build_celebdf(
    root: Path,
    youtube_folder: str = "YouTube-real",
    trailing_newline: bool = False,
    write_video: VideoWriter = touch,
) -> dict[str, int]:
    """Celeb-DF folders and the test list (1 = real); by default the last line has no newline."""
    for stem in CELEBDF_REAL:
        write_video(root / "Celeb-real" / f"{stem}.mp4")
    for stem in CELEBDF_YOUTUBE:
        write_video(root / youtube_folder / f"{stem}.mp4")
    for stem in CELEBDF_FAKE:
        write_video(root / "Celeb-synthesis" / f"{stem}.mp4")
    text = "\n".join(f"{label} {path}" for label, path in CELEBDF_TEST) + ("\n" if trailing_newline else "")
    write_text(root / "List_of_testing_videos.txt", text)
    total = len(CELEBDF_REAL) + len(CELEBDF_YOUTUBE) + len(CELEBDF_FAKE)
    return {"total": total, "test": len(CELEBDF_TEST), "test_youtube": 1}


def build_dfdc(root: Path, write_video: VideoWriter = touch) -> dict[str, int]:
    """Two train parts with metadata.json and a test folder (videos in ori_videos/) with labels.csv."""
    parts = {
        0: {
            "aaaa.mp4": {"label": "REAL", "split": "train", "original": None},
            "bbbb.mp4": {"label": "REAL", "split": "train", "original": None},
            "cccc.mp4": {"label": "FAKE", "split": "train", "original": "aaaa.mp4"},
            "dddd.mp4": {"label": "FAKE", "split": "train", "original": "bbbb.mp4"},
        },
        1: {
            "eeee.mp4": {"label": "REAL", "split": "train", "original": None},
            "ffff.mp4": {"label": "FAKE", "split": "train", "original": "eeee.mp4"},
            "gggg.mp4": {"label": "FAKE", "split": "train", "original": "eeee.mp4"},
        },
    }
    for number, metadata in parts.items():
        part_dir = root / f"dfdc_train_part_{number}"
        write_text(part_dir / "metadata.json", json.dumps(metadata))
        for name in metadata:
            write_video(part_dir / name)
    test_labels = {"t001.mp4": 1, "t002.mp4": 0, "t003.mp4": 1, "t004.mp4": 0, "t005.mp4": 1}
    for name in test_labels:
        write_video(root / "test/ori_videos" / name)
    write_text(
        root / "test/labels.csv", "filename,label\n" + "".join(f"{n},{v}\n" for n, v in test_labels.items())
    )
    return {"train_total": sum(len(m) for m in parts.values()), "test": len(test_labels), "test_fake": 3}


def build_dfdcp(root: Path, write_video: VideoWriter = touch) -> dict[str, int]:
    """DFDC Preview method_A / method_B / original_videos and dataset.json."""
    entries = {
        "original_videos/100/100_a.mp4": ("real", "test"),
        "original_videos/101/101_a.mp4": ("real", "train"),
        "original_videos/102/102_a.mp4": ("real", "test"),
        "method_A/100/100_X/100_A_001.mp4": ("fake", "test"),
        "method_A/101/101_X/101_A_001.mp4": ("fake", "train"),
        "method_B/102/102_Y/102_B_001.mp4": ("fake", "test"),
        "method_B/101/101_Y/101_B_001.mp4": ("fake", "train"),
    }
    for path in entries:
        write_video(root / path)
    metadata = {
        path: {"label": label, "set": set_name, "augmentations": []}
        for path, (label, set_name) in entries.items()
    }
    write_text(root / "dataset.json", json.dumps(metadata))
    return {"all": len(entries), "test": sum(1 for _, s in entries.values() if s == "test")}


def build_diff(root: Path) -> dict[str, int]:
    """DiFF real images (DiFF_real/<split>) and forged images (<split>/<subset>/<method>/...)."""
    count = {"real": 0, "T2I": 0, "I2I": 0, "FS": 0, "FE": 0}
    for split in ("train", "val", "test"):
        for k in range(2):
            touch(root / "DiFF_real" / split / f"{k:05d}.png")
            count["real"] += 1
        for subset, methods in {
            "T2I": ("SDXL", "Midjourney"),
            "I2I": ("SDEdit",),
            "FS": ("DiffFace",),
            "FE": ("DCFace",),
        }.items():
            for method in methods:
                touch(root / split / subset / method / "nested" / f"{split}_{method}_0.jpg")
                count[subset] += 1
    return count


def _tar_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


WILDDEEPFAKE_CATEGORIES = ("real_train", "real_test", "fake_train", "fake_test")


def build_wilddeepfake(
    root: Path, spaces: bool = False, archives: bool = False, videos_per_category: int = 4
) -> dict[str, int]:
    """Per category ``videos_per_category`` source videos, each with two face sequences.

    ``archives`` writes ``<k>.tar.gz`` files (members ``<seq>/<frame>.png``) instead of folders;
    ``spaces`` names the category folders ``real train`` etc.
    """
    for category in WILDDEEPFAKE_CATEGORIES:
        folder = root / (category.replace("_", " ") if spaces else category)
        folder.mkdir(parents=True, exist_ok=True)
        for video in range(videos_per_category):
            members = {f"{seq}/{frame}.png": PLACEHOLDER for seq in (0, 1) for frame in range(3)}
            if archives:
                touch(folder / f"{video}.tar.gz", _tar_bytes(members))
            else:
                for name, data in members.items():
                    touch(folder / str(video) / name, data)
    return {"sequences_per_category": 2 * videos_per_category}


UNIATTACK_IMAGES = {
    "train": [
        ("UniAttackData/Data/live/central-asia/CA-001/real.rssdk/color/0001.jpg", "0"),
        ("UniAttackData/Data/live/central-asia/CA-001/real.rssdk/color/0002.jpg", "0"),
        ("UniAttackData/Data/spoof/central-asia/CA-001/screen-rs/color/0001.jpg", "1"),
        ("UniAttackData/Data/adv-attacks/PGD/PGD_ca-112x112/CA-001/0001.jpg", "2"),
        ("UniAttackData/Data/DaGAN/CA-001/0001.jpg", "3"),
    ],
    "dev": [
        ("UniAttackData/Data/live/east-asia/EA-002/real.rssdk/color/0001.jpg", "0"),
        ("UniAttackData/Data/simswap/EA-002/0001.jpg", "3"),
    ],
    "test": [
        ("UniAttackData/Data/live/africa/AF-003/real.rssdk/color/0001.jpg", "0"),
        ("UniAttackData/Data/spoof/africa/AF-003/cloth-indoor/color/0001.jpg", "1"),
        ("UniAttackData/Data/adv-attacks/FGSM/FGSM_af-112x112/AF-003/0001.jpg", "2"),
    ],
}


def build_uniattack_research(
    root: Path, protocol: str = "p1", repeats: dict[str, int] | None = None
) -> dict[str, int]:
    """Research release: images, frame folders, image and video protocol files of ``protocol``.

    ``repeats`` (split -> n) appends the split's first ``n`` image lines again at the end of its
    image list, as the released P1/P2.x lists repeat lines; the counts returned are unique images.
    """
    protocol_dir = root / "UniAttackData/protocol"
    for split, entries in UNIATTACK_IMAGES.items():
        for path, _ in entries:
            touch(root / path)
        repeated = entries[: (repeats or {}).get(split, 0)]
        write_text(
            protocol_dir / f"UniAttackData@{protocol}_image_{split}.txt",
            "".join(f"{p} {v}\n" for p, v in [*entries, *repeated]),
        )
        folders = sorted({(str(Path(p).parent), v) for p, v in entries})
        write_text(
            protocol_dir / f"UniAttackData@{protocol}_video_{split}.txt",
            "".join(f"{p} {v}\n" for p, v in folders),
        )
    return {split: len(entries) for split, entries in UNIATTACK_IMAGES.items()}


def build_uniattack_challenge(
    root: Path, protocol: str = "p1", with_test_labels: bool = False
) -> dict[str, int]:
    """Challenge release: phase1 train (labelled) + dev, phase2 dev labels + test (no labels)."""
    train = {f"{protocol}/train/{k:06d}.jpg": k % 2 for k in range(1, 5)}
    dev = {f"{protocol}/dev/{k:06d}.jpg": k % 2 for k in range(1, 3)}
    test = {f"{protocol}/test/{k:06d}.jpg": k % 2 for k in range(1, 4)}
    for path in [*train, *dev]:
        touch(root / "phase1" / path)
    for path in test:
        touch(root / "phase2" / path)
    write_text(
        root / "phase1" / protocol / "train_label.txt", "".join(f"{p} {v}\n" for p, v in train.items())
    )
    write_text(root / "phase1" / protocol / "dev.txt", "".join(f"{p}\n" for p in dev))
    write_text(root / "phase2" / protocol / "dev_label.txt", "".join(f"{p} {v}\n" for p, v in dev.items()))
    write_text(root / "phase2" / protocol / "test.txt", "".join(f"{p}\n" for p in test))
    if with_test_labels:
        write_text(
            root / "phase2" / protocol / "test_label.txt", "".join(f"{p} {v}\n" for p, v in test.items())
        )
    return {"train": len(train), "val": len(dev), "test": len(test)}


# list name -> [(video dir, official label 1 = real / 0 = attack)]
JFSFDB_LISTS = {
    "SiW_train": [("SiW/live/001-1", "1"), ("SiW/spoof/001-2", "0"), ("SiW/spoof/002-2", "0")],
    "FF_train": [("FF/real/000", "1"), ("FF/fake/000_003", "0")],
    "SiW_test": [("SiW/live/009-1", "1"), ("SiW/spoof/009-2", "0")],
    "MSU_test": [("MSU/live/real_client001", "1"), ("MSU/attack/attack_client001", "0")],
    "CelebDF_test": [("CDF/real/id0_0000", "1"), ("CDF/fake/id0_id1_0000", "0")],
}


def build_jfsfdb(root: Path, lists_dir: Path | None = None) -> Path:
    """Face-crop video folders (Face_01..07.jpg) and the user's list files; returns lists_dir."""
    lists_dir = lists_dir or root / "lists"
    for name, entries in JFSFDB_LISTS.items():
        for video_dir, _ in entries:
            for k in range(1, 8):
                touch(root / video_dir / f"Face_{k:02d}.jpg")
        write_text(lists_dir / f"{name}.txt", "".join(f"{d} {v}\n" for d, v in entries))
    return lists_dir


def build_uadfv(
    root: Path, nested: bool = False, capitalised: bool = False, write_video: VideoWriter = touch
) -> int:
    """UADFV real/NNNN.mp4 and fake/NNNN_fake.mp4 (plus a frames folder to be ignored)."""
    base = root / "UADFV" if nested else root
    real, fake = ("Real", "Fake") if capitalised else ("real", "fake")
    for k in range(3):
        write_video(base / real / f"{k:04d}.mp4")
        write_video(base / fake / f"{k:04d}_fake.mp4")
        touch(base / fake / "frames" / f"{k:04d}_fake" / "000.png")
    return 3


DEEPERFORENSICS_SPLITS = {
    "train": ["000_M101", "001_W102", "002_M103"],
    "val": ["003_W104"],
    "test": ["004_M105", "005_W106"],
}


def build_deeperforensics(
    root: Path,
    with_targets: bool = True,
    target_folder: str = "target_videos",
    write_video: VideoWriter = touch,
) -> dict[str, int]:
    """end_to_end fakes, split lists, source videos, and the FF++ target videos (reals)."""
    for split, stems in DEEPERFORENSICS_SPLITS.items():
        write_text(root / "lists/splits" / f"{split}.txt", "".join(f"{stem}.mp4\n" for stem in stems))
        for stem in stems:
            write_video(root / "manipulated_videos/end_to_end" / f"{stem}.mp4")
            write_video(root / "manipulated_videos/end_to_end_level_1" / f"{stem}.mp4")
            if with_targets:
                write_video(root / target_folder / f"{stem.split('_')[0]}.mp4")
    touch(
        root
        / "source_videos/M101/light_uniform/neutral/camera_front/M101_light_uniform_neutral_camera_front.mp4"
    )
    return {split: len(stems) for split, stems in DEEPERFORENSICS_SPLITS.items()}


FFPP_PREPARED_TYPES = ("real", "Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")


def write_prepared_dataset(
    out: Path,
    domain: str = "ffpp",
    types: tuple[str, ...] = FFPP_PREPARED_TYPES,
    videos_per_type: dict[str, int] | None = None,
    frames: int = 4,
    size: int = 48,
) -> pd.DataFrame:
    """A prepared folder as face preprocessing writes it: ``crops/<video>/<frame>.jpg`` + ``index.csv``.

    Per split (``videos_per_type``, default train 3 / val 2 / test 2) every type gets that many
    videos of ``frames`` crops; fakes are brighter than reals with noise, so a model can tell them.
    """
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = []
    for split, count in (videos_per_type or {"train": 3, "val": 2, "test": 2}).items():
        for kind in types:
            label = int(kind not in ("real", "live"))
            for video in range(count):
                video_id = f"{domain}/{kind}/{split}{video:03d}"
                for frame in range(frames):
                    relative = f"crops/{video_id}/{frame:06d}.jpg"
                    (out / relative).parent.mkdir(parents=True, exist_ok=True)
                    pixels = rng.normal(96 + 64 * label, 20, (size, size, 3)).clip(0, 255).astype("uint8")
                    Image.fromarray(pixels).save(out / relative, quality=90)
                    rows.append(
                        {
                            "path": relative,
                            "label": label,
                            "domain": domain,
                            "type": kind,
                            "video_id": video_id,
                            "split": split,
                            "media": "image",
                            "frame_index": frame,
                        }
                    )
    index = pd.DataFrame(rows)
    index.to_csv(out / "index.csv", index=False)
    return index
