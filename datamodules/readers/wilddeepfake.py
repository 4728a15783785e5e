"""Reader of WildDeepfake (``wilddeepfake``); the dataset already consists of face crops.

Expected layout (as distributed; the four folders may also sit in one sub-folder such as
``deepfake_in_the_wild/``, and their names may use spaces: ``real train``)::

    <root>/{real_train,real_test,fake_train,fake_test}/<k>.tar.gz
        each archive: <sequence>/<frame>.png  (one folder of frames = one face sequence)

or the same tree with the archives extracted (any depth below the category folder). A
*sequence folder* is a folder that directly holds images; it is one "video" and one record
(``media="frames"``, ``path`` = the folder). ``video_id`` =
``wilddeepfake/<category>/<folder path below the category>``.

Archives are not read in place: if a category folder holds archives but no extracted
sequence folders the reader stops and says so, unless ``extract_archives=True``, which
extracts every ``<k>.tar.gz`` into ``<category>/<k>/`` (members that would escape that
folder are refused by tarfile's ``data`` filter) and then reads the folders. When extracted
folders exist next to archives the folders are used and the archives ignored, with a warning.

Splits: the official split is train/test only. ``val_fraction`` of the train groups are
held out as ``val``, separately for real_train and fake_train so validation holds both
classes; a group is the first folder below the category (the source archive/video), so the
face sequences of one source video never straddle train and val.
"""

from __future__ import annotations

import tarfile
import warnings
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from datamodules.readers.common import (
    IMAGE_EXTENSIONS,
    DatasetLayoutError,
    EmptyFolderError,
    MissingLayoutFileError,
    child_names,
    find_child,
    finish_records,
    holdout_groups,
    relative_posix,
    require_root,
    walk_files,
)

# Category folder -> (label, official split).
CATEGORIES: dict[str, tuple[int, str]] = {
    "real_train": (0, "train"),
    "real_test": (0, "test"),
    "fake_train": (1, "train"),
    "fake_test": (1, "test"),
}
ARCHIVE_SUFFIXES: tuple[str, ...] = (".tar.gz", ".tgz", ".tar")

WILDDEEPFAKE_LAYOUT = """<root>/{real_train,real_test,fake_train,fake_test}/<k>.tar.gz  (or extracted: <k>/<sequence>/<frame>.png)
(the four folders may sit in one sub-folder, e.g. deepfake_in_the_wild/)"""


def _archive_stem(path: Path) -> str:
    name = path.name
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _archives(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(ARCHIVE_SUFFIXES))


def _category_folders(root: Path) -> dict[str, Path]:
    """The four category folders, at root or inside a single sub-folder of root."""
    for base in [root, *sorted(child for child in root.iterdir() if child.is_dir())]:
        found = {name: find_child(base, [name]) for name in CATEGORIES}
        if all(found.values()):
            return found  # type: ignore[return-value]
    raise MissingLayoutFileError(
        f"wilddeepfake: '{root}' (or one sub-folder of it) must hold the folders {list(CATEGORIES)}; "
        f"it holds {child_names(root)}. Expected:\n{WILDDEEPFAKE_LAYOUT}"
    )


def sequence_folders(category_dir: Path) -> list[Path]:
    """Folders below ``category_dir`` that directly hold images (one face sequence each)."""
    return sorted({image.parent for image in walk_files(category_dir, IMAGE_EXTENSIONS)} - {category_dir})


def extract_archives_into_folders(archives: Iterable[Path]) -> None:
    """Extract each ``<k>.tar.gz`` into a sibling folder ``<k>/`` (safe ``data`` filter)."""
    for archive in archives:
        target = archive.parent / _archive_stem(archive)
        target.mkdir(exist_ok=True)
        with tarfile.open(archive) as handle:
            handle.extractall(target, filter="data")


def read_wilddeepfake(
    root: Path, *, val_fraction: float = 0.1, extract_archives: bool = False
) -> pd.DataFrame:
    """WildDeepfake face sequences; see the module docstring for layout, archives and splits."""
    root = require_root(root, "wilddeepfake", WILDDEEPFAKE_LAYOUT)
    categories = _category_folders(root)
    rows = []
    for category, folder in categories.items():
        label, split = CATEGORIES[category]
        sequences = sequence_folders(folder)
        archives = _archives(folder)
        if not sequences and archives:
            if not extract_archives:
                raise DatasetLayoutError(
                    f"wilddeepfake: '{folder}' holds {len(archives)} archive(s) (e.g. {archives[0].name}) but no "
                    "extracted sequence folders. Extract them (tar -xzf <k>.tar.gz -C <k>/) or pass "
                    "extract_archives=True to extract each into a folder of the same name."
                )
            extract_archives_into_folders(archives)
            sequences = sequence_folders(folder)
        elif sequences and archives:
            warnings.warn(
                f"wilddeepfake: '{folder}' holds extracted sequence folders and {len(archives)} archive(s); "
                "the folders are read and the archives ignored (delete or extract them if that is not intended).",
                stacklevel=2,
            )
        if not sequences:
            raise EmptyFolderError(
                f"wilddeepfake: '{folder}' holds no folders of {'/'.join(IMAGE_EXTENSIONS)} images and no archives; "
                f"it holds {child_names(folder)}."
            )
        for sequence in sequences:
            inside = relative_posix(sequence, folder)
            rows.append(
                {
                    "path": relative_posix(sequence, root),
                    "label": label,
                    "domain": "wilddeepfake",
                    "type": "fake" if label else "real",
                    "video_id": f"wilddeepfake/{category}/{inside}",
                    "split": split,
                    "media": "frames",
                    "group": f"{category}/{inside.split('/', 1)[0]}",
                }
            )
    # Held out per category so that validation holds both real and fake sequences.
    held_out: set[str] = set()
    for category in ("real_train", "fake_train"):
        groups = [r["group"] for r in rows if r["group"].startswith(f"{category}/")]
        held_out |= holdout_groups(groups, val_fraction, salt=f"wilddeepfake/{category}")
    for row in rows:
        if row["split"] == "train" and row["group"] in held_out:
            row["split"] = "val"
        row["source_group"] = row.pop("group")
    return finish_records(rows, f"wilddeepfake reader on '{root}'")
