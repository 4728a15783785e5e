"""Reader of the full Deepfake Detection Challenge dataset (``dfdc``).

Expected layout (train parts as unzipped from the challenge download, test set with labels)::

    <root>/dfdc_train_part_<0..49>/{*.mp4, metadata.json}   # metadata.json may also sit one
                                                            # folder deeper (double-unzipped part)
        metadata.json: {"aaqaifqrwn.mp4": {"label": "FAKE"|"REAL", "split": "train",
                                            "original": "x.mp4"|null}, ...}
    <root>/test/{*.mp4 or any sub-folder such as ori_videos/, labels.csv}
        labels.csv: header "filename,label", 1 = fake; 5000 videos

Splits: the train parts give ``train``; a deterministic ``val`` part is held out of them by
original video: a fake is grouped with its ``original`` (both are in the same part), so no
source footage is in both train and val. ``test/`` gives ``test`` (what papers report).
Option ``splits`` selects which of train/val/test to read, so a cross-dataset user who only
downloaded ``test/`` passes ``splits=["test"]``.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pandas as pd

from datamodules.readers.common import (
    VIDEO_EXTENSIONS,
    DatasetLayoutError,
    MissingLayoutFileError,
    check_on_missing,
    child_names,
    find_child,
    finish_records,
    handle_missing_listed,
    holdout_groups,
    parse_label,
    relative_posix,
    require_file,
    require_root,
    walk_files,
    warn_unlisted,
)
from datamodules.records import SPLITS

PART_PATTERN = re.compile(r"^dfdc_train_part_(\d+)$", re.IGNORECASE)
METADATA_LABELS = {"FAKE": 1, "REAL": 0}
TEST_LABELS = {"1": 1, "0": 0, "1.0": 1, "0.0": 0}

DFDC_LAYOUT = """<root>/dfdc_train_part_<k>/{*.mp4, metadata.json}
<root>/test/{*.mp4 (any depth), labels.csv}   (header "filename,label", 1 = fake)"""


def _metadata_file(part_dir: Path) -> Path:
    """metadata.json of a train part, directly inside it or one folder deeper."""
    direct = part_dir / "metadata.json"
    if direct.is_file():
        return direct
    nested = sorted(part_dir.glob("*/metadata.json"))
    if len(nested) == 1:
        return nested[0]
    raise MissingLayoutFileError(
        f"dfdc: missing metadata.json in train part '{part_dir}' (looked in it and one folder deeper); "
        f"it holds {child_names(part_dir)}"
    )


def _read_train_parts(root: Path, val_fraction: float, on_missing: str) -> list[dict]:
    parts = sorted(
        (int(match.group(1)), child)
        for child in root.iterdir()
        if child.is_dir() and (match := PART_PATTERN.match(child.name))
    )
    if not parts:
        raise MissingLayoutFileError(
            f"dfdc: no dfdc_train_part_<k> folders in '{root}' (it holds {child_names(root)}). "
            "If you only downloaded the test set, pass splits=['test']."
        )
    entries = []
    for number, part_dir in parts:
        metadata_path = _metadata_file(part_dir)
        try:
            metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DatasetLayoutError(f"dfdc: '{metadata_path}' is not valid JSON: {error}") from error
        video_dir = metadata_path.parent
        on_disk = {p.name: p for p in walk_files(video_dir, VIDEO_EXTENSIONS, recursive=False)}
        missing = [relative_posix(video_dir / name, root) for name in sorted(metadata) if name not in on_disk]
        handle_missing_listed(missing, len(metadata), "dfdc", metadata_path, on_missing)
        warn_unlisted(
            [relative_posix(p, root) for name, p in on_disk.items() if name not in metadata],
            "dfdc",
            metadata_path,
        )
        for name in sorted(metadata):
            if name not in on_disk:
                continue
            info = metadata[name]
            raw_label = str(info.get("label", "")).upper() if isinstance(info, dict) else ""
            label = parse_label(
                raw_label, METADATA_LABELS, metadata_path, f"entry {name!r}", "dfdc", "FAKE or REAL"
            )
            original = info.get("original") or name
            entries.append(
                {
                    "path": relative_posix(on_disk[name], root),
                    "label": label,
                    "domain": "dfdc",
                    "type": "fake" if label else "real",
                    "video_id": f"dfdc/part{number}/{Path(name).stem}",
                    "media": "video",
                    "group": f"part{number}/{original}",
                }
            )
    held_out = holdout_groups([e["group"] for e in entries], val_fraction, salt="dfdc")
    for entry in entries:
        entry["split"] = "val" if entry.pop("group") in held_out else "train"
    return entries


def _read_test(root: Path, on_missing: str) -> list[dict]:
    test_dir = find_child(root, ["test"])
    if test_dir is None:
        raise MissingLayoutFileError(
            f"dfdc: no test folder in '{root}' (it holds {child_names(root)}); expected:\n{DFDC_LAYOUT}"
        )
    labels_path = require_file(
        test_dir / "labels.csv", "dfdc", "test label file", hint="It ships with the DFDC test set."
    )
    videos = walk_files(test_dir, VIDEO_EXTENSIONS)
    by_name: dict[str, list[Path]] = {}
    for path in videos:
        by_name.setdefault(path.name, []).append(path)
    rows, missing = [], []
    with labels_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"filename", "label"} <= {f.strip() for f in reader.fieldnames}:
            raise DatasetLayoutError(
                f"dfdc: '{labels_path}' must have the header 'filename,label', found {reader.fieldnames}"
            )
        listed = 0
        for line_number, record in enumerate(reader, start=2):
            record = {key.strip(): (value or "").strip() for key, value in record.items() if key is not None}
            name = record["filename"]
            if not name:
                continue
            listed += 1
            label = parse_label(
                record["label"], TEST_LABELS, labels_path, f"line {line_number}", "dfdc", "1 = fake, 0 = real"
            )
            direct = test_dir / name
            candidates = [direct] if direct.is_file() else by_name.get(Path(name).name, [])
            if len(candidates) > 1:
                raise DatasetLayoutError(
                    f"dfdc: {labels_path}, line {line_number}: {name!r} matches several files: "
                    f"{[relative_posix(p, root) for p in candidates]}"
                )
            if not candidates:
                missing.append(name)
                continue
            rows.append(
                {
                    "path": relative_posix(candidates[0], root),
                    "label": label,
                    "domain": "dfdc",
                    "type": "fake" if label else "real",
                    "video_id": f"dfdc/test/{Path(name).stem}",
                    "split": "test",
                    "media": "video",
                }
            )
    handle_missing_listed(missing, listed, "dfdc", labels_path, on_missing)
    return rows


def read_dfdc(
    root: Path,
    *,
    splits: list[str] | tuple[str, ...] = SPLITS,
    val_fraction: float = 0.05,
    on_missing: str = "raise",
) -> pd.DataFrame:
    """DFDC train parts (train/val) and labelled test set; see the module docstring."""
    check_on_missing(on_missing)
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown or not splits:
        raise ValueError(f"dfdc: splits must be a non-empty subset of {list(SPLITS)}, got {list(splits)}")
    root = require_root(root, "dfdc", DFDC_LAYOUT)
    rows: list[dict] = []
    if {"train", "val"} & set(splits):
        rows.extend(r for r in _read_train_parts(root, val_fraction, on_missing) if r["split"] in splits)
    if "test" in splits:
        rows.extend(_read_test(root, on_missing))
    return finish_records(rows, f"dfdc reader on '{root}'")
