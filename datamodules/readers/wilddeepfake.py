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
sequence folders the reader stops and says so, unless ``extract_archives=True``. Extraction never
writes into the dataset folder (it may be read-only on a cluster): every ``<category>/<k>.tar.gz``
is extracted into ``<extract_dir>/<category>/<k>/`` (members that would escape that folder are
refused by tarfile's ``data`` filter), atomically, with a marker holding the archive's size and
modification time so a re-run skips it silently and a changed archive is extracted again. A
category without archives (extracted by hand) is linked into ``extract_dir``, so every record's
``path`` is relative to one folder, the *media root*: ``extract_dir`` when extracting, else
``root``; the reader puts it in ``frame.attrs["media_root"]`` (face preprocessing reads the media
there; ``build_index`` keeps it in its sidecar). ``extract_dir`` defaults to
``$FACEMOE_CACHE/wilddeepfake-extracted/<hash of root>`` (``~/.cache/facemoe`` without
``FACEMOE_CACHE``); the preprocessing command passes ``<out>/extracted`` (the prepared tree).
Without ``extract_archives``, category folders holding both sequence folders and archives are
read from the folders, with one warning that counts the archives left aside.

Splits: the official split is train/test only. ``val_fraction`` of the train groups are
held out as ``val``, separately for real_train and fake_train so validation holds both
classes; a group is the first folder below the category (the source archive/video), so the
face sequences of one source video never straddle train and val.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from datamodules.readers.common import (
    IMAGE_EXTENSIONS,
    MEDIA_ROOT,
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

log = logging.getLogger(__name__)

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


def default_extract_dir(root: Path) -> Path:
    """``$FACEMOE_CACHE/wilddeepfake-extracted/<hash of the resolved root>`` (see the docstring)."""
    cache = Path(os.environ.get("FACEMOE_CACHE") or Path.home() / ".cache" / "facemoe").expanduser()
    key = hashlib.sha256(root.resolve().as_posix().encode()).hexdigest()[:16]
    return cache / "wilddeepfake-extracted" / key


def _stamp(archive: Path) -> str:
    stat = archive.stat()
    return f"{stat.st_size} {stat.st_mtime_ns}\n"


def extract_archives_into(archives: Iterable[Path], target_dir: Path) -> int:
    """Extract each ``<k>.tar.gz`` into ``target_dir/<k>/`` unless its marker says it is done.

    Each archive goes to a temporary folder that is renamed into place, then a marker
    ``.<k>.extracted`` records the archive's size and mtime: an interrupted extraction leaves no
    half folder behind, a re-run skips finished archives, a changed archive is extracted again.
    Returns how many archives were extracted now.
    """
    target_dir.mkdir(parents=True, exist_ok=True)
    extracted = 0
    for archive in archives:
        stem = _archive_stem(archive)
        target, marker = target_dir / stem, target_dir / f".{stem}.extracted"
        if target.is_dir() and marker.is_file() and marker.read_text() == _stamp(archive):
            continue
        temporary = Path(tempfile.mkdtemp(prefix=f".{stem}.", dir=target_dir))
        try:
            with tarfile.open(archive) as handle:
                handle.extractall(temporary, filter="data")
            if target.exists():
                shutil.rmtree(target)
            os.replace(temporary, target)
        finally:
            if temporary.exists():
                shutil.rmtree(temporary)
        marker.write_text(_stamp(archive))
        extracted += 1
    return extracted


def _link_category(folder: Path, link: Path) -> None:
    """Make ``link`` point at a category folder extracted by hand inside the dataset."""
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() and Path(os.readlink(link)) == folder.resolve():
        return
    if link.is_symlink():
        link.unlink()
    elif link.exists():
        shutil.rmtree(link)  # archives of this category were extracted here before; now folders exist
    link.symlink_to(folder.resolve(), target_is_directory=True)


def read_wilddeepfake(
    root: Path,
    *,
    val_fraction: float = 0.1,
    extract_archives: bool = False,
    extract_dir: Path | str | None = None,
) -> pd.DataFrame:
    """WildDeepfake face sequences; see the module docstring for layout, archives and splits."""
    root = require_root(root, "wilddeepfake", WILDDEEPFAKE_LAYOUT)
    categories = _category_folders(root)
    media_root = root
    if extract_archives:
        media_root = Path(extract_dir).expanduser() if extract_dir else default_extract_dir(root)
        media_root.mkdir(parents=True, exist_ok=True)
    elif extract_dir is not None:
        raise ValueError("wilddeepfake: extract_dir is only used with extract_archives=True")
    rows = []
    ignored: dict[str, int] = {}
    extracted_now = 0
    for category, folder in categories.items():
        label, split = CATEGORIES[category]
        sequences = sequence_folders(folder)
        archives = _archives(folder)
        if extract_archives:
            target = media_root / category
            if archives:
                extracted_now += extract_archives_into(archives, target)
            elif sequences:
                _link_category(folder, target)
            folder = target
            sequences = sequence_folders(folder)
        elif not sequences and archives:
            raise DatasetLayoutError(
                f"wilddeepfake: '{folder}' holds {len(archives)} archive(s) (e.g. {archives[0].name}) but no "
                "extracted sequence folders. Extract them (tar -xzf <k>.tar.gz -C <k>/) or pass "
                "extract_archives=True to extract them outside the dataset folder (the preprocessing "
                "command extracts into <out>/extracted)."
            )
        elif sequences and archives:
            ignored[str(folder)] = len(archives)
        if not sequences:
            raise EmptyFolderError(
                f"wilddeepfake: '{folder}' holds no folders of {'/'.join(IMAGE_EXTENSIONS)} images and no archives; "
                f"it holds {child_names(folder)}."
            )
        for sequence in sequences:
            inside = relative_posix(sequence, folder)
            rows.append(
                {
                    "path": f"{category}/{inside}" if extract_archives else relative_posix(sequence, root),
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
    if ignored:
        # One warning for the whole dataset (not one per category and run).
        warnings.warn(
            f"wilddeepfake: {sum(ignored.values())} archive(s) are left aside because their category folders "
            f"also hold extracted sequence folders, which are read instead: {ignored}. Delete the archives, or "
            "pass extract_archives=True to read the archives' content.",
            stacklevel=2,
        )
    if extracted_now:
        log.info("wilddeepfake: extracted %d archive(s) into '%s'", extracted_now, media_root)
    frame = finish_records(rows, f"wilddeepfake reader on '{root}'")
    if extract_archives:
        frame.attrs[MEDIA_ROOT] = str(media_root)
    return frame
