"""Reader of DiFF, the diffusion facial forgery dataset (``diff``); images, not videos.

The layout is UNVERIFIED (no published file listing could be checked), so the reader walks
the root recursively and classifies every image by the folder names on its path:

    <root>/DiFF_real/{train,val,test}/...                     # pristine (real) images
    <root>/{train,val,test}/{T2I,I2I,FS,FE}/<method>/...      # forged images, any depth

- split: the first folder named train / val (also validation, dev) / test;
- real: a folder named ``DiFF_real``, ``real``, ``pristine`` or ``original`` (any case);
- subset: a folder named T2I, I2I, FS or FE (any case); ``method`` is the first folder after
  the subset folder that is not the split folder (``unknown`` when there is none).

So ``<root>/T2I/<method>/train/x.png`` or ``<root>/train/real/x.png`` are read as well.
Images that fit none of this are left out with a warning that counts them and shows
examples; if nothing fits, the error explains the expected layout. The pristine images are
distributed separately from the forged ones (see docs/DATASETS.md); without them the reader
stops, since a fake-only set cannot be scored with AUC.

Records: one per image (``media="image"``), ``type`` = subset (T2I/I2I/FS/FE) or ``real``,
extra column ``method``, ``video_id`` = ``diff/<path without extension>``. Option ``subsets``
keeps only those forged subsets (real images are always kept), e.g. to train on DiFF-T2I.
"""

from __future__ import annotations

import warnings
from pathlib import Path, PurePosixPath

import pandas as pd

from datamodules.readers.common import (
    IMAGE_EXTENSIONS,
    DatasetLayoutError,
    EmptyFolderError,
    finish_records,
    normalise_name,
    relative_posix,
    require_root,
    strip_extension,
    walk_files,
)

DIFF_SUBSETS: tuple[str, ...] = ("T2I", "I2I", "FS", "FE")
SPLIT_NAMES = {"train": "train", "val": "val", "validation": "val", "dev": "val", "test": "test"}
REAL_NAMES = {"diff_real", "real", "pristine", "original"}

DIFF_LAYOUT = """<root>/DiFF_real/{train,val,test}/...                    (real images)
<root>/{train,val,test}/{T2I,I2I,FS,FE}/<method>/...     (forged images, .jpg/.png, any depth)
(folder order may differ; every image needs a split folder and either a real or a subset folder)"""


def classify_diff_path(relative: str) -> dict | None:
    """Split, real/subset and method of one image from its folders; None if they do not fit."""
    folders = PurePosixPath(relative).parts[:-1]
    keys = [normalise_name(folder) for folder in folders]
    split_positions = [i for i, key in enumerate(keys) if key in SPLIT_NAMES]
    subset_positions = [i for i, folder in enumerate(folders) if folder.upper() in DIFF_SUBSETS]
    is_real = any(key in REAL_NAMES for key in keys)
    if not split_positions or is_real == bool(subset_positions):
        return None
    split_position = split_positions[0]
    if is_real:
        return {"split": SPLIT_NAMES[keys[split_position]], "type": "real", "method": "real"}
    subset_position = subset_positions[0]
    after = [folders[i] for i in range(subset_position + 1, len(folders)) if i != split_position]
    return {
        "split": SPLIT_NAMES[keys[split_position]],
        "type": folders[subset_position].upper(),
        "method": after[0] if after else "unknown",
    }


def read_diff(root: Path, *, subsets: list[str] | tuple[str, ...] = DIFF_SUBSETS) -> pd.DataFrame:
    """DiFF images (real + the chosen forged subsets); see the module docstring."""
    wanted = [s.upper() for s in subsets]
    unknown = sorted(set(wanted) - set(DIFF_SUBSETS))
    if unknown or not wanted:
        raise ValueError(
            f"diff: subsets must be a non-empty subset of {list(DIFF_SUBSETS)}, got {list(subsets)}"
        )
    root = require_root(root, "diff", DIFF_LAYOUT)
    images = walk_files(root, IMAGE_EXTENSIONS)
    if not images:
        raise EmptyFolderError(
            f"diff: no {'/'.join(IMAGE_EXTENSIONS)} images under '{root}'. Expected:\n{DIFF_LAYOUT}"
        )

    rows, unmatched = [], []
    for path in images:
        relative = relative_posix(path, root)
        info = classify_diff_path(relative)
        if info is None:
            unmatched.append(relative)
            continue
        if info["type"] != "real" and info["type"] not in wanted:
            continue
        rows.append(
            {
                "path": relative,
                "label": 0 if info["type"] == "real" else 1,
                "domain": "diff",
                "type": info["type"],
                "video_id": f"diff/{strip_extension(relative)}",
                "split": info["split"],
                "media": "image",
                "method": info["method"],
            }
        )
    found_types = {row["type"] for row in rows}
    if not rows:
        raise DatasetLayoutError(
            f"diff: none of the {len(images)} images under '{root}' fit the expected layout, e.g. "
            f"{unmatched[:5]}. Expected:\n{DIFF_LAYOUT}"
        )
    if unmatched:
        warnings.warn(
            f"diff: {len(unmatched)} image(s) under '{root}' have no split folder or no real/subset folder "
            f"and are left out, e.g. {unmatched[:5]}. Expected:\n{DIFF_LAYOUT}",
            stacklevel=2,
        )
    absent = [subset for subset in wanted if subset not in found_types]
    if absent:
        raise DatasetLayoutError(
            f"diff: no images of subset(s) {absent} under '{root}' (found {sorted(found_types)}). Expected:\n{DIFF_LAYOUT}"
        )
    if "real" not in found_types:
        raise DatasetLayoutError(
            f"diff: no real images under '{root}' (a DiFF_real folder). The pristine images are distributed "
            f"separately (request form on the DiFF repository); a fake-only set cannot be scored. Expected:\n{DIFF_LAYOUT}"
        )
    return finish_records(rows, f"diff reader on '{root}'")
