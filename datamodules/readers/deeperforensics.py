"""Reader of DeeperForensics-1.0 (``deeperforensics``).

Layout after running the release's ``unzip.sh`` (documented in dataset/README.md of the
official DeeperForensics-1.0 repository)::

    <root>/manipulated_videos/<variant>/<target>_<source>.mp4   # 1,000 per variant, e.g. 000_M101.mp4
        variants: end_to_end, reenact_postprocess, end_to_end_level_<1..5>,
                  end_to_end_random_level, end_to_end_mix_<2..4>_distortions
    <root>/lists/splits/{train,val,test}.txt                     # one manipulated video name a line
    <root>/source_videos/...                                     # actor footage: NOT the real class

The real class is not part of the release: it is the FF++ youtube *target* videos at c23
(``<target>`` is their three-digit id). The user places (or symlinks) them inside the root,
where the reader looks in order for ``target_videos/``, then
``original_sequences/youtube/c23/videos/``; option ``real_videos_dir`` names another folder
relative to root. A real video goes to the split of the fakes made from it (if the split
lists put one target in several splits, the most held-out split wins: test, then val, then
train, with a warning). ``include_real=False`` reads the fakes only, e.g. to pair them with
real videos from another reader.

Option ``variant`` (default ``end_to_end``, the raw set used in the paper) picks the folder;
``type`` is ``DF-VAE`` for fakes (the manipulation method) and ``real``; the variant is kept in
the ``variant`` column. ``video_id`` = ``deeperforensics/<variant>/<stem>`` for fakes and
``deeperforensics/real/<target>`` for reals.
"""

from __future__ import annotations

import warnings
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
    read_text_lines,
    relative_posix,
    require_dir,
    require_file,
    require_root,
    walk_files,
    warn_unlisted,
)

SPLIT_FILES: tuple[str, ...] = ("train", "val", "test")
# When a target appears under several splits, the real video goes to the most held-out one.
SPLIT_PRECEDENCE: dict[str, int] = {"train": 0, "val": 1, "test": 2}
REAL_DIR_CANDIDATES: tuple[str, ...] = ("target_videos", "original_sequences/youtube/c23/videos")

DEEPERFORENSICS_LAYOUT = """<root>/manipulated_videos/<variant>/<target>_<source>.mp4
<root>/lists/splits/{train,val,test}.txt
<root>/target_videos/<target>.mp4   (FF++ youtube c23 videos, placed or symlinked by the user)"""


def _target_id(stem: str) -> str:
    return stem.split("_", 1)[0]


def _load_splits(root: Path) -> dict[str, str]:
    """Fake video stem -> split from lists/splits/*.txt (names or paths, extension optional)."""
    splits_dir = require_dir(
        root / "lists" / "splits",
        "deeperforensics",
        "split lists folder",
        hint=f"Expected:\n{DEEPERFORENSICS_LAYOUT}",
    )
    assignment: dict[str, str] = {}
    for split in SPLIT_FILES:
        path = require_file(splits_dir / f"{split}.txt", "deeperforensics", f"{split} split list")
        for number, line in read_text_lines(path):
            stem = Path(line.split()[0].replace("\\", "/")).stem
            previous = assignment.setdefault(stem, split)
            if previous != split:
                raise DatasetLayoutError(
                    f"deeperforensics: {path}, line {number}: {stem!r} is already in the {previous} list"
                )
    if not assignment:
        raise DatasetLayoutError(f"deeperforensics: the split lists in '{splits_dir}' hold no entries")
    return assignment


def _real_dir(root: Path, real_videos_dir: Path | str | None) -> Path:
    candidates = [real_videos_dir] if real_videos_dir is not None else list(REAL_DIR_CANDIDATES)
    for candidate in candidates:
        folder = Path(candidate)
        if folder.is_absolute():
            raise ValueError(
                f"deeperforensics: real_videos_dir must be relative to the dataset root (records hold relative "
                f"paths); symlink '{folder}' into '{root}' instead"
            )
        if (root / folder).is_dir():
            return root / folder
    raise MissingLayoutFileError(
        f"deeperforensics: no real (target) videos folder in '{root}' (looked for {candidates}). The real class "
        "is the FF++ youtube c23 videos, which DeeperForensics does not distribute: link "
        "<FF++ root>/original_sequences/youtube/c23/videos to <root>/target_videos, pass real_videos_dir, or "
        "pass include_real=False."
    )


def read_deeperforensics(
    root: Path,
    *,
    variant: str = "end_to_end",
    include_real: bool = True,
    real_videos_dir: Path | str | None = None,
    on_missing: str = "raise",
) -> pd.DataFrame:
    """DeeperForensics-1.0 fakes of one variant plus their FF++ targets; see the module docstring."""
    check_on_missing(on_missing)
    root = require_root(root, "deeperforensics", DEEPERFORENSICS_LAYOUT)
    manipulated = require_dir(root / "manipulated_videos", "deeperforensics", "manipulated_videos folder")
    variant_dir = manipulated / variant
    if not variant_dir.is_dir():
        raise MissingLayoutFileError(
            f"deeperforensics: no variant folder {variant!r} in '{manipulated}'; available: {child_names(manipulated)}"
        )
    assignment = _load_splits(root)
    splits_name = root / "lists" / "splits" / "{train,val,test}.txt"

    fakes = {
        p.stem: p for p in list_media(variant_dir, VIDEO_EXTENSIONS, "deeperforensics", f"{variant} videos")
    }
    handle_missing_listed(
        [f"{variant}/{stem}" for stem in sorted(assignment) if stem not in fakes],
        len(assignment),
        "deeperforensics",
        splits_name,
        on_missing,
    )
    warn_unlisted(
        [relative_posix(p, root) for stem, p in fakes.items() if stem not in assignment],
        "deeperforensics",
        splits_name,
    )

    rows = []
    for stem, path in fakes.items():
        split = assignment.get(stem)
        if split is None:
            continue
        rows.append(
            {
                "path": relative_posix(path, root),
                "label": 1,
                "domain": "deeperforensics",
                "type": "DF-VAE",
                "video_id": f"deeperforensics/{variant}/{stem}",
                "split": split,
                "media": "video",
                "variant": variant,
            }
        )

    if include_real:
        real_dir = _real_dir(root, real_videos_dir)
        reals = {p.stem: p for p in walk_files(real_dir, VIDEO_EXTENSIONS, recursive=False)}
        target_splits: dict[str, set[str]] = {}
        for stem, split in assignment.items():
            target_splits.setdefault(_target_id(stem), set()).add(split)
        real_splits = {t: max(s, key=SPLIT_PRECEDENCE.__getitem__) for t, s in target_splits.items()}
        spread = sorted(t for t, s in target_splits.items() if len(s) > 1)
        if spread:
            warnings.warn(
                f"deeperforensics: {len(spread)} target video(s) have fakes in several splits, e.g. {spread[:5]}; "
                "each real target video is put in the most held-out of them (test > val > train).",
                stacklevel=2,
            )
        handle_missing_listed(
            [relative_posix(real_dir / f"{t}.mp4", root) for t in sorted(real_splits) if t not in reals],
            len(real_splits),
            "deeperforensics",
            f"{splits_name} (real targets in '{real_dir}')",
            on_missing,
        )
        for target, split in sorted(real_splits.items()):
            if target not in reals:
                continue
            rows.append(
                {
                    "path": relative_posix(reals[target], root),
                    "label": 0,
                    "domain": "deeperforensics",
                    "type": "real",
                    "video_id": f"deeperforensics/real/{target}",
                    "split": split,
                    "media": "video",
                    "variant": "real",
                }
            )
    return finish_records(rows, f"deeperforensics reader ({variant}) on '{root}'")
