"""Reader of the DFDC Preview dataset (``dfdcp``), used as a cross-dataset test set.

Expected layout (as released)::

    <root>/method_A/<id>/<id>_<X>/*.mp4
    <root>/method_B/<id>/<id>_<X>/*.mp4
    <root>/original_videos/<id>/*.mp4
    <root>/dataset.json: {"method_A/.../x.mp4": {"label": "real"|"fake", "set": "train"|"test",
                          "augmentations": [...]}, ...}

Labels come from dataset.json ("fake" -> 1) and are checked against the folder
(``original_videos`` holds only real videos). Option ``subset``: ``"test"`` (default) keeps
the entries with ``set == "test"`` as most papers do; ``"all"`` keeps every video. Either
way the records are the ``test`` split: DFDCP is only used for testing here. ``type`` is the
top folder (``method_A``, ``method_B``) or ``real``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from common.choices import check_choice
from datamodules.readers.common import (
    VIDEO_EXTENSIONS,
    DatasetLayoutError,
    LabelValueError,
    check_on_missing,
    finish_records,
    handle_missing_listed,
    parse_label,
    relative_posix,
    require_file,
    require_root,
    strip_extension,
    walk_files,
    warn_unlisted,
)

SUBSETS: tuple[str, ...] = ("test", "all")
DATASET_LABELS = {"fake": 1, "real": 0}
SET_VALUES: tuple[str, ...] = ("train", "test")
REAL_FOLDER = "original_videos"

DFDCP_LAYOUT = """<root>/method_A/<id>/<id>_<X>/*.mp4, <root>/method_B/..., <root>/original_videos/<id>/*.mp4
<root>/dataset.json   ({"<relative path>": {"label": "real"|"fake", "set": "train"|"test", ...}})"""


def read_dfdcp(root: Path, *, subset: str = "test", on_missing: str = "raise") -> pd.DataFrame:
    """DFDC Preview videos as a test set; ``subset`` "test" (set == test) or "all"."""
    check_choice("dfdcp: subset", subset, SUBSETS)
    check_on_missing(on_missing)
    root = require_root(root, "dfdcp", DFDCP_LAYOUT)
    metadata_path = require_file(
        root / "dataset.json",
        "dfdcp",
        "label file dataset.json",
        hint="It ships with the DFDC Preview release.",
    )
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DatasetLayoutError(f"dfdcp: '{metadata_path}' is not valid JSON: {error}") from error
    if not isinstance(metadata, dict) or not metadata:
        raise DatasetLayoutError(f"dfdcp: '{metadata_path}' must be a non-empty JSON object of path -> info")

    rows, missing, selected = [], [], 0
    for key in sorted(metadata):
        info = metadata[key]
        where = f"entry {key!r}"
        if not isinstance(info, dict):
            raise DatasetLayoutError(
                f"dfdcp: {metadata_path}, {where}: expected an object with label and set, found {info!r}"
            )
        set_value = str(info.get("set", "")).lower()
        if set_value not in SET_VALUES:
            raise LabelValueError(
                f"dfdcp: {metadata_path}, {where}: set {info.get('set')!r} is not one of {list(SET_VALUES)}"
            )
        label = parse_label(
            str(info.get("label", "")).lower(), DATASET_LABELS, metadata_path, where, "dfdcp", "real or fake"
        )
        if subset == "test" and set_value != "test":
            continue
        selected += 1
        relative = key.replace("\\", "/").lstrip("/")
        top = relative.split("/", 1)[0]
        if (top == REAL_FOLDER) == bool(label):
            raise LabelValueError(
                f"dfdcp: {metadata_path}, {where}: label {info.get('label')!r} contradicts the folder {top!r} "
                f"({REAL_FOLDER} holds real videos, method_* fake ones)"
            )
        if not (root / relative).is_file():
            missing.append(relative)
            continue
        rows.append(
            {
                "path": relative,
                "label": label,
                "domain": "dfdcp",
                "type": "real" if top == REAL_FOLDER else top,
                "video_id": f"dfdcp/{strip_extension(relative)}",
                "split": "test",
                "media": "video",
                "dfdcp_set": set_value,
            }
        )
    handle_missing_listed(missing, selected, "dfdcp", metadata_path, on_missing)
    known = {key.replace("\\", "/").lstrip("/") for key in metadata}
    unlisted = [
        rel
        for rel in (relative_posix(p, root) for p in walk_files(root, VIDEO_EXTENSIONS))
        if rel not in known
    ]
    warn_unlisted(unlisted, "dfdcp", metadata_path)
    return finish_records(rows, f"dfdcp reader on '{root}'")
