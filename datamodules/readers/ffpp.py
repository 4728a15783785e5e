"""Readers of the FaceForensics++ tree: FF++ itself (``ffpp``) and DFD (``dfd``).

Expected layout (as written by the official FF++ download script)::

    <root>/original_sequences/youtube/{raw|c0,c23,c40}/videos/000.mp4 ... 999.mp4
    <root>/original_sequences/actors/{raw,c23,c40}/videos/<actor>__<scene>.mp4      # DFD real
    <root>/manipulated_sequences/{Deepfakes,Face2Face,FaceSwap,NeuralTextures,FaceShifter,
            DeepFakeDetection}/{raw,c23,c40}/videos/*.mp4
    <root>/manipulated_sequences/<method>/masks/videos/*.mp4    # manipulation masks (not FaceShifter)
    <root>/{train,val,test}.json     # official splits (dataset/splits of the FF++ repository);
                                     # also looked for in <root>/splits and <root>/dataset/splits

Labels come from the folder (original = real, manipulated = fake). Split files are JSON lists
of pairs ``[["953", "974"], ...]``: pair [a, b] puts originals a and b and fakes a_b and b_a
in that split. The masks folders are read only with ``masks=True``, which adds a ``mask_path``
column (the fake's mask video, empty for real videos and for FaceShifter, which the release
ships without masks) for face preprocessing with ``--face mask``. Video ids carry method and compression
(``ffpp/c23/Deepfakes/000_003``) because the same file name exists under every method.
The lossless folder is ``raw`` (some tools call it ``c0``); both spellings are accepted and
ids use ``raw``.

DFD (DeepFakeDetection) has no official split: every record is ``test``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd

from common.choices import check_choice
from datamodules.readers.common import (
    VIDEO_EXTENSIONS,
    DatasetLayoutError,
    MissingLayoutFileError,
    MissingListedFilesError,
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
# Methods the FF++ release ships without a masks/ folder: their fakes get an empty mask_path.
MASKLESS_METHODS: tuple[str, ...] = ("FaceShifter",)
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
    check_choice("compression", compression, COMPRESSION_FOLDERS)


def _check_masks(masks: object) -> None:
    if not isinstance(masks, bool):
        raise ValueError(f"masks must be true or false, got {masks!r}")


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


def method_masks(method_folder: Path, method: str, dataset: str) -> dict[str, Path] | None:
    """Mask videos of one manipulation method by stem (``masks/videos/<stem>.mp4``).

    None for a method the release has no masks for (FaceShifter) when its folder is absent; for
    any other method a missing ``masks/videos`` folder is an error that says how to get it.
    """
    masks_dir = method_folder / "masks" / "videos"
    if not masks_dir.is_dir():
        if method in MASKLESS_METHODS:
            return None
        raise MissingLayoutFileError(
            f"{dataset}: masks=True, but '{masks_dir}' does not exist; '{method_folder}' holds "
            f"{child_names(method_folder)}. Download the masks with the official script "
            f"(download-FaceForensics.py <root> -d {method} -t masks) or set masks=false."
        )
    videos = list_media(masks_dir, VIDEO_EXTENSIONS, dataset, f"{method} masks", recursive=False)
    return {path.stem: path for path in videos}


def attach_masks(
    rows: list[dict],
    masks: dict[str, dict[str, Path] | None],
    root: Path,
    dataset: str,
    on_missing: str,
) -> None:
    """Give every row a ``mask_path``: its fake's mask video, or "" for real / mask-less videos.

    A fake without a mask file is an error (``on_missing="raise"``) or, with ``"warn"``, keeps
    an empty ``mask_path`` and is counted in a warning: preprocessing then takes the largest
    face for it, as for real videos.
    """
    missing: list[str] = []
    maskless: dict[str, int] = {}
    fakes = 0
    for row in rows:
        row["mask_path"] = ""
        if row["label"] == 0:
            continue
        fakes += 1
        method_masks_by_stem = masks[row["type"]]
        if method_masks_by_stem is None:
            maskless[row["type"]] = maskless.get(row["type"], 0) + 1
            continue
        stem = Path(row["path"]).stem
        if stem in method_masks_by_stem:
            row["mask_path"] = relative_posix(method_masks_by_stem[stem], root)
        else:
            missing.append(f"manipulated_sequences/{row['type']}/masks/videos/{stem}.mp4")
    for method, count in maskless.items():
        warnings.warn(
            f"{dataset}: {method} has no masks in the FF++ release; its {count} video(s) get an empty "
            "mask_path, so preprocessing with --face mask takes the largest face for them.",
            stacklevel=3,
        )
    if missing:
        message = (
            f"{dataset}: masks=True, but {len(missing)} of {fakes} manipulated video(s) have no mask video, "
            f"e.g. {missing[:5]}"
        )
        if on_missing == "raise":
            raise MissingListedFilesError(
                message + ". Complete the masks download (-t masks), set masks=false, or pass "
                "on_missing='warn' to keep those videos with an empty mask_path (largest face)."
            )
        warnings.warn(
            message + "; they keep an empty mask_path and preprocessing takes the largest face for them "
            "(on_missing='warn').",
            stacklevel=3,
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
    masks: bool = False,
    on_missing: str = "raise",
) -> pd.DataFrame:
    """FaceForensics++ videos at one compression, split by the official pair files.

    Options: ``compression`` raw (or c0) / c23 / c40; ``methods`` the manipulation folders to
    read (default the five: Deepfakes, Face2Face, FaceSwap, NeuralTextures, FaceShifter);
    ``include_real`` keep the youtube originals; ``splits_dir`` where train/val/test.json are
    (relative to root or absolute); ``masks`` add a ``mask_path`` column from the
    ``masks/videos`` folders (see the module docstring); ``on_missing`` "raise" (default) or
    "warn" when videos named by the split files, or the masks of listed fakes, are missing.
    Videos that no split names are dropped with a warning.
    """
    _check_compression(compression)
    check_on_missing(on_missing)
    _check_masks(masks)
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
    if masks:
        attach_masks(
            rows,
            {method: method_masks(folder, method, "ffpp") for method, folder, label in sources if label == 1},
            root,
            "ffpp",
            on_missing,
        )
    return finish_records(rows, f"ffpp reader on '{root}'")


def read_dfd(
    root: Path, *, compression: str = "c23", masks: bool = False, on_missing: str = "raise"
) -> pd.DataFrame:
    """DeepFakeDetection (DFD) inside the FF++ tree; test-only (it has no official split).

    ``root`` is the FF++ root. Reals are the actor videos, fakes the DeepFakeDetection folder.
    ``masks`` adds ``mask_path`` from ``DeepFakeDetection/masks/videos`` as in :func:`read_ffpp`;
    ``on_missing`` ("raise" or "warn") says what a fake without its mask does.
    """
    _check_compression(compression)
    check_on_missing(on_missing)
    _check_masks(masks)
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
    if masks:
        fakes = root / "manipulated_sequences" / DFD_METHOD
        attach_masks(rows, {DFD_METHOD: method_masks(fakes, DFD_METHOD, "dfd")}, root, "dfd", on_missing)
    return finish_records(rows, f"dfd reader on '{root}'")
