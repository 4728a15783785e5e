"""Readers of the FaceForensics++ tree: FF++ itself (``ffpp``) and DFD (``dfd``).

Expected layout (as written by the official FF++ download script)::

    <root>/original_sequences/youtube/{raw|c0,c23,c40}/videos/000.mp4 ... 999.mp4
    <root>/original_sequences/actors/{raw,c23,c40}/videos/<actor>__<scene>.mp4      # DFD real
    <root>/manipulated_sequences/{Deepfakes,Face2Face,FaceSwap,NeuralTextures,FaceShifter,
            DeepFakeDetection}/{raw,c23,c40}/videos/*.mp4
    <root>/{train,val,test}.json     # official splits (dataset/splits of the FF++ repository);
                                     # also looked for in <root>/splits and <root>/dataset/splits

Labels come from the folder (original = real, manipulated = fake). Split files are JSON lists
of pairs ``[["953", "974"], ...]``: pair [a, b] puts originals a and b and fakes a_b and b_a
in that split. Masks folders are ignored. Video ids carry method and compression
(``ffpp/c23/Deepfakes/000_003``) because the same file name exists under every method.
The lossless folder is ``raw`` (some tools call it ``c0``); both spellings are accepted and
ids use ``raw``.

DFD (DeepFakeDetection) has no official split: every record is ``test``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from datamodules.readers.common import (
    VIDEO_EXTENSIONS,
    DatasetLayoutError,
    MissingLayoutFileError,
    check_on_missing,
    child_names,
    finish_records,
    handle_missing_listed,
    list_media,
    relative_posix,
    require_dir,
    require_root,
    warn_unlisted,
)

FFPP_METHODS: tuple[str, ...] = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
DFD_METHOD = "DeepFakeDetection"
# Folder spellings accepted per compression option, and the name used in video ids.
COMPRESSION_FOLDERS: dict[str, tuple[str, ...]] = {
    "raw": ("raw", "c0"),
    "c0": ("c0", "raw"),
    "c23": ("c23",),
    "c40": ("c40",),
}
COMPRESSION_ID: dict[str, str] = {"raw": "raw", "c0": "raw", "c23": "c23", "c40": "c40"}
SPLIT_FILES: tuple[str, ...] = ("train", "val", "test")

FFPP_LAYOUT = """<root>/original_sequences/youtube/{raw|c0,c23,c40}/videos/*.mp4
<root>/manipulated_sequences/<method>/{raw|c0,c23,c40}/videos/<target>_<source>.mp4
<root>/{train,val,test}.json   (official FF++ split files)"""
DFD_LAYOUT = """<root>/original_sequences/actors/{raw|c0,c23,c40}/videos/<actor>__<scene>.mp4
<root>/manipulated_sequences/DeepFakeDetection/{raw|c0,c23,c40}/videos/*.mp4"""


def _check_compression(compression: str) -> None:
    if compression not in COMPRESSION_FOLDERS:
        raise ValueError(f"compression must be one of {list(COMPRESSION_FOLDERS)}, got {compression!r}")


def compression_videos_dir(parent: Path, compression: str, dataset: str) -> Path:
    """``<parent>/<raw|c0|c23|c40>/videos`` for ``compression``, accepting raw/c0 as one."""
    candidates = COMPRESSION_FOLDERS[compression]
    for name in candidates:
        if (parent / name / "videos").is_dir():
            return parent / name / "videos"
    raise MissingLayoutFileError(
        f"{dataset}: no {' or '.join(f'{name}/videos' for name in candidates)} folder under '{parent}' "
        f"for compression {compression!r}; that folder holds {child_names(parent)}"
    )


def _find_split_dir(root: Path, splits_dir: Path | str | None) -> Path:
    """The folder holding train/val/test.json: ``splits_dir`` or the usual places."""
    if splits_dir is not None:
        candidates = [Path(splits_dir) if Path(splits_dir).is_absolute() else root / splits_dir]
    else:
        candidates = [root, root / "splits", root / "dataset" / "splits"]
    for folder in candidates:
        if all((folder / f"{name}.json").is_file() for name in SPLIT_FILES):
            return folder
    looked = ", ".join(f"'{folder}'" for folder in candidates)
    raise MissingLayoutFileError(
        f"ffpp: missing official split files train.json, val.json, test.json; looked in {looked}. "
        "They are in dataset/splits of the FaceForensics++ repository; copy them into the dataset root "
        "or pass splits_dir."
    )


def _video_key(value: object) -> str:
    # Official files hold strings such as "071"; integers would lose the leading zeros.
    text = str(value).strip()
    return text.zfill(3) if text.isdigit() else text


def load_pair_splits(split_dir: Path) -> dict[str, str]:
    """Map every FF++ video stem (``"000"``, ``"000_003"``) to its split from the pair files."""
    assignment: dict[str, str] = {}
    for split in SPLIT_FILES:
        path = split_dir / f"{split}.json"
        try:
            pairs = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DatasetLayoutError(f"ffpp: split file '{path}' is not valid JSON: {error}") from error
        if not isinstance(pairs, list):
            raise DatasetLayoutError(
                f"ffpp: split file '{path}' must hold a JSON list of pairs, found {type(pairs).__name__}"
            )
        for position, pair in enumerate(pairs):
            if not (isinstance(pair, list | tuple) and len(pair) == 2):
                raise DatasetLayoutError(
                    f'ffpp: split file \'{path}\', entry {position}: expected a pair like ["953", "974"], found {pair!r}'
                )
            first, second = (_video_key(v) for v in pair)
            for stem in (first, second, f"{first}_{second}", f"{second}_{first}"):
                previous = assignment.setdefault(stem, split)
                if previous != split:
                    raise DatasetLayoutError(
                        f"ffpp: video {stem!r} is in both {previous}.json and {split}.json (in '{split_dir}')"
                    )
    return assignment


def read_ffpp(
    root: Path,
    *,
    compression: str = "c23",
    methods: list[str] | tuple[str, ...] = FFPP_METHODS,
    include_real: bool = True,
    splits_dir: Path | str | None = None,
    on_missing: str = "raise",
) -> pd.DataFrame:
    """FaceForensics++ videos at one compression, split by the official pair files.

    Options: ``compression`` raw (or c0) / c23 / c40; ``methods`` the manipulation folders to
    read (default the five: Deepfakes, Face2Face, FaceSwap, NeuralTextures, FaceShifter);
    ``include_real`` keep the youtube originals; ``splits_dir`` where train/val/test.json are
    (relative to root or absolute); ``on_missing`` "raise" (default) or "warn" when videos named
    by the split files are missing. Videos that no split names are dropped with a warning.
    """
    _check_compression(compression)
    check_on_missing(on_missing)
    unknown = sorted(set(methods) - set(FFPP_METHODS))
    if unknown:
        raise ValueError(f"ffpp: unknown method(s) {unknown}; known methods are {list(FFPP_METHODS)}")
    root = require_root(root, "ffpp", FFPP_LAYOUT)
    split_dir = _find_split_dir(root, splits_dir)
    assignment = load_pair_splits(split_dir)
    compression_id = COMPRESSION_ID[compression]

    sources: list[tuple[str, Path, int]] = []
    if include_real:
        youtube = require_dir(
            root / "original_sequences" / "youtube", "ffpp", "original (real) videos folder"
        )
        sources.append(("real", youtube, 0))
    for method in methods:
        folder = require_dir(root / "manipulated_sequences" / method, "ffpp", f"{method} folder")
        sources.append((method, folder, 1))

    rows: list[dict] = []
    missing: list[str] = []
    unlisted: list[str] = []
    expected_total = 0
    for video_type, folder, label in sources:
        videos_dir = compression_videos_dir(folder, compression, "ffpp")
        videos = {
            p.stem: p
            for p in list_media(videos_dir, VIDEO_EXTENSIONS, "ffpp", f"{video_type} videos", recursive=False)
        }
        expected = sorted(stem for stem in assignment if ("_" in stem) == (label == 1))
        expected_total += len(expected)
        missing.extend(
            relative_posix(videos_dir / f"{stem}.mp4", root) for stem in expected if stem not in videos
        )
        for stem, path in videos.items():
            split = assignment.get(stem)
            if split is None:
                unlisted.append(relative_posix(path, root))
                continue
            rows.append(
                {
                    "path": relative_posix(path, root),
                    "label": label,
                    "domain": "ffpp",
                    "type": video_type,
                    "video_id": f"ffpp/{compression_id}/{video_type}/{stem}",
                    "split": split,
                    "media": "video",
                    "compression": compression_id,
                }
            )
    handle_missing_listed(missing, expected_total, "ffpp", split_dir / "{train,val,test}.json", on_missing)
    warn_unlisted(unlisted, "ffpp", split_dir / "{train,val,test}.json")
    return finish_records(rows, f"ffpp reader on '{root}'")


def read_dfd(root: Path, *, compression: str = "c23") -> pd.DataFrame:
    """DeepFakeDetection (DFD) inside the FF++ tree; test-only (it has no official split).

    ``root`` is the FF++ root. Reals are the actor videos, fakes the DeepFakeDetection folder.
    """
    _check_compression(compression)
    root = require_root(root, "dfd", DFD_LAYOUT)
    compression_id = COMPRESSION_ID[compression]
    sources = (
        ("real", root / "original_sequences" / "actors", 0),
        (DFD_METHOD, root / "manipulated_sequences" / DFD_METHOD, 1),
    )
    rows = []
    for video_type, folder, label in sources:
        require_dir(
            folder,
            "dfd",
            f"{video_type} folder",
            hint="DFD is downloaded with the FF++ script (-d DeepFakeDetection / DeepFakeDetection_original).",
        )
        videos_dir = compression_videos_dir(folder, compression, "dfd")
        for path in list_media(videos_dir, VIDEO_EXTENSIONS, "dfd", f"{video_type} videos", recursive=False):
            rows.append(
                {
                    "path": relative_posix(path, root),
                    "label": label,
                    "domain": "dfd",
                    "type": video_type,
                    "video_id": f"dfd/{compression_id}/{video_type}/{path.stem}",
                    "split": "test",
                    "media": "video",
                    "compression": compression_id,
                }
            )
    return finish_records(rows, f"dfd reader on '{root}'")
