"""Shared pieces of the dataset readers.

Every reader turns one official dataset layout into records (``datamodules.records``) plus a
``media`` column. This module holds what they all need so that each reader only describes its
layout:

- the layout errors (every one names the dataset, the file or folder, and what was expected);
- tolerant listing of media files (symlinks followed, hidden/AppleDouble files skipped);
- tolerant list-file reading (BOM, CRLF, a last line without a newline, blank lines);
- explicit label parsing with the file and line in the error;
- a deterministic, order-independent hold-out of groups (videos/identities) for validation;
- repeated lines of official lists: exact repeats kept once and counted, conflicts refused;
- the final record checks (one label/type/split per video id, one row per video or frame folder).

A reader may attach what it tolerated to its frame as ``frame.attrs["reader_report"]`` (a JSON-ready
dict, e.g. the repeated list lines it kept once); :func:`datamodules.index.build_index` stores it
in the index sidecar and face preprocessing copies it into ``report.json`` under ``reader``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import pandas as pd

from common.choices import check_choice
from datamodules.records import records_frame

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".webm")
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MEDIA_KINDS: tuple[str, ...] = ("video", "image", "frames")
ON_MISSING_CHOICES: tuple[str, ...] = ("raise", "warn")


class DatasetLayoutError(ValueError):
    """The files on disk do not match the layout a reader expects."""


class DatasetRootNotFoundError(DatasetLayoutError, FileNotFoundError):
    """The dataset root directory does not exist."""


class MissingLayoutFileError(DatasetLayoutError, FileNotFoundError):
    """A split/label/list file or a required folder of the layout is missing."""


class EmptyFolderError(DatasetLayoutError):
    """A folder that must hold media files holds none."""


class LabelValueError(DatasetLayoutError):
    """A label (or split) value in a list file is not one the dataset defines."""


class MissingListedFilesError(DatasetLayoutError, FileNotFoundError):
    """Files named by an official list/label file are not on disk."""


def normalise_name(name: str) -> str:
    """Folder-name key that ignores case and the space/hyphen/underscore spelling."""
    return "_".join(name.lower().replace("-", " ").replace("_", " ").split())


def require_root(root: Path | str, dataset: str, expected_layout: str) -> Path:
    """Return ``root`` as a Path, or raise naming the dataset and the layout it should hold."""
    root = Path(root).expanduser()
    if not root.is_dir():
        state = "is a file, not a directory" if root.exists() else "does not exist"
        raise DatasetRootNotFoundError(
            f"{dataset}: dataset root '{root}' {state}. Expected the {dataset} layout:\n{expected_layout}"
        )
    return root


def require_file(path: Path, dataset: str, what: str, hint: str = "") -> Path:
    """Return ``path`` if it is a file, else raise naming the dataset and what the file is."""
    if not path.is_file():
        raise MissingLayoutFileError(
            f"{dataset}: missing {what}: '{path}' does not exist." + (f" {hint}" if hint else "")
        )
    return path


def require_dir(path: Path, dataset: str, what: str, hint: str = "") -> Path:
    """Return ``path`` if it is a directory, else raise listing what its parent does hold."""
    if not path.is_dir():
        raise MissingLayoutFileError(
            f"{dataset}: missing {what}: '{path}' is not a directory; '{path.parent}' holds "
            f"{child_names(path.parent)}." + (f" {hint}" if hint else "")
        )
    return path


def child_names(folder: Path, limit: int = 20) -> list[str]:
    """Sorted names in ``folder`` (at most ``limit``), for error messages; [] if unreadable."""
    try:
        return sorted(entry.name for entry in folder.iterdir())[:limit]
    except OSError:
        return []


def find_child(parent: Path, names: Iterable[str], want_dir: bool = True) -> Path | None:
    """The child of ``parent`` whose name matches one of ``names`` ignoring case and spelling.

    Users rename folders (``Youtube-real`` vs ``YouTube-real``, ``real train`` vs
    ``real_train``), so matching is on :func:`normalise_name`. Candidates are tried in order.
    """
    if not parent.is_dir():
        return None
    children = {normalise_name(c.name): c for c in sorted(parent.iterdir()) if c.is_dir() == want_dir}
    for name in names:
        match = children.get(normalise_name(name))
        if match is not None:
            return match
    return None


def _is_hidden(name: str) -> bool:
    # macOS archives carry "._x.jpg" AppleDouble files and ".DS_Store"; they are not media.
    return name.startswith(".")


def walk_files(folder: Path, extensions: Sequence[str], recursive: bool = True) -> list[Path]:
    """Sorted media files under ``folder`` with one of ``extensions`` (case-insensitive).

    Symlinked folders are followed (users link datasets together, e.g. FF++ originals into
    DeeperForensics) while a folder reached twice is walked once, so link cycles end.
    """
    suffixes = tuple(e.lower() for e in extensions)
    if not recursive:
        if not folder.is_dir():
            return []
        return sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and not _is_hidden(p.name) and p.suffix.lower() in suffixes
        )
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        stat = os.stat(dirpath)
        if (stat.st_dev, stat.st_ino) in seen:
            dirnames[:] = []
            continue
        seen.add((stat.st_dev, stat.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        found.extend(
            Path(dirpath) / name
            for name in filenames
            if not _is_hidden(name) and Path(name).suffix.lower() in suffixes
        )
    return sorted(found)


def list_media(
    folder: Path, extensions: Sequence[str], dataset: str, what: str, recursive: bool = True
) -> list[Path]:
    """Like :func:`walk_files` but an empty result is an :class:`EmptyFolderError`."""
    files = walk_files(folder, extensions, recursive=recursive)
    if not files:
        raise EmptyFolderError(
            f"{dataset}: {what} folder '{folder}' holds no {'/'.join(extensions)} files"
            f"{' (searched recursively)' if recursive else ''}; it holds {child_names(folder)}."
        )
    return files


def relative_posix(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` as a POSIX string (records never hold absolute paths)."""
    return PurePosixPath(Path(os.path.relpath(path, root))).as_posix()


def strip_extension(relative: str) -> str:
    """A relative POSIX path without its file extension (used inside video ids)."""
    path = PurePosixPath(relative)
    return path.with_suffix("").as_posix() if path.suffix else path.as_posix()


def read_text_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank, non-comment lines of a list file as (1-based line number, stripped text).

    Tolerates a UTF-8 BOM, CRLF line ends and a last line without a newline (Celeb-DF lists).
    """
    text = path.read_text(encoding="utf-8-sig")
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            lines.append((number, stripped))
    return lines


def split_path_label(
    line: str, source: Path, line_number: int, dataset: str, label_first: bool
) -> tuple[str, str]:
    """Split ``"<path> <label>"`` (or ``"<label> <path>"``) keeping spaces inside the path."""
    parts = line.split(None, 1) if label_first else line.rsplit(None, 1)
    if len(parts) != 2:
        order = "<label> <path>" if label_first else "<path> <label>"
        raise LabelValueError(f"{dataset}: {source}, line {line_number}: expected '{order}', found {line!r}")
    label, rel = (parts[0], parts[1]) if label_first else (parts[1], parts[0])
    return rel.strip().replace("\\", "/"), label.strip()


def parse_label(
    token: str, mapping: Mapping[str, int], source: Path | str, where: str, dataset: str, meaning: str
) -> int:
    """Map a raw label token to 1 = fake/attack, 0 = real/live, or raise naming file and line.

    ``where`` is e.g. ``"line 12"`` or ``"entry 'x.mp4'"``; ``meaning`` states the file's own
    convention (``"1 = real, 0 = fake"``) so a reader of the error sees the direction.
    """
    if token not in mapping:
        raise LabelValueError(
            f"{dataset}: {source}, {where}: label {token!r} is not one of {sorted(mapping)} ({meaning})"
        )
    return mapping[token]


class ListEntry(NamedTuple):
    """One entry of a labelled list file: its line, the listed path, the raw label token and the label."""

    number: int
    relative: str
    token: str
    label: int


def read_labelled_list(
    path: Path,
    dataset: str,
    labels: Mapping[str, int],
    meaning: str,
    label_first: bool = False,
    what: str | None = "list file",
) -> list[ListEntry]:
    """Every ``"<path> <label>"`` (or ``"<label> <path>"``) line of a list file, split and its label
    mapped with ``labels`` (:func:`parse_label`; ``meaning`` states the file's convention). With
    ``what`` (e.g. ``"protocol file"``) a file without entries is an error naming it; ``None`` allows one."""
    lines = read_text_lines(path)
    if not lines and what is not None:
        raise DatasetLayoutError(f"{dataset}: {what} '{path}' holds no entries")
    entries = []
    for number, line in lines:
        relative, token = split_path_label(line, path, number, dataset, label_first=label_first)
        entries.append(ListEntry(number, relative, token, parse_label(token, labels, path, f"line {number}", dataset, meaning)))
    return entries


def check_on_missing(on_missing: str) -> None:
    """Validate the ``on_missing`` option shared by the list-driven readers."""
    check_choice("on_missing", on_missing, ON_MISSING_CHOICES)


def handle_missing_listed(
    missing: Sequence[str], total: int, dataset: str, list_file: Path | str, on_missing: str
) -> None:
    """Report files an official list names but the disk lacks: raise (default) or warn.

    With ``on_missing="warn"`` the caller drops those entries; the warning gives the count so
    a partial download never shrinks a test set unnoticed.
    """
    if not missing:
        return
    message = (
        f"{dataset}: {len(missing)} of {total} file(s) listed in '{list_file}' are missing on disk, "
        f"e.g. {list(missing[:5])}"
    )
    if on_missing == "raise":
        raise MissingListedFilesError(
            message + ". Complete the download, or pass on_missing='warn' to drop them with a warning."
        )
    warnings.warn(message + "; they are dropped (on_missing='warn').", stacklevel=3)


def warn_unlisted(unlisted: Sequence[str], dataset: str, list_file: Path | str) -> None:
    """Warn about files on disk that no official list assigns to a split (they are dropped)."""
    if unlisted:
        warnings.warn(
            f"{dataset}: {len(unlisted)} file(s) on disk are not in '{list_file}' and are left out, "
            f"e.g. {list(unlisted[:5])}",
            stacklevel=3,
        )


READER_REPORT = "reader_report"
# frame.attrs key: the folder the records' paths are relative to, when it is not the dataset root
# (WildDeepfake archives extracted outside the read-only dataset folder).
MEDIA_ROOT = "media_root"


class ListEntryTracker:
    """Remembers where each path of a dataset's list files was listed, to handle repeated lines.

    Official lists repeat lines (UniAttackData's P1 test list names some images twice). A path
    listed again *for the same split with the same label* is the same sample: it is kept once and
    the repeat is counted (:meth:`report`). The same path listed for another split (leakage) or with
    another label (contradiction) is an error naming both list files and line numbers.
    """

    def __init__(self, dataset: str):
        self.dataset = dataset
        self.first: dict[str, tuple[str, int, str, str]] = {}
        self.repeats: dict[str, list[int]] = {}

    def admit(self, key: str, list_file: Path | str, line: int, split: str, label: str) -> bool:
        """True for the first listing of ``key``; False for an exact repeat (skip it); raise on a conflict."""
        seen = self.first.get(key)
        if seen is None:
            self.first[key] = (str(list_file), line, split, label)
            return True
        first_file, first_line, first_split, first_label = seen
        if first_split != split or first_label != label:
            what = "splits" if first_split != split else "labels"
            raise DatasetLayoutError(
                f"{self.dataset}: {key!r} is listed with two {what}: '{first_file}' line {first_line} "
                f"(split {first_split}, label {first_label}) and '{list_file}' line {line} (split {split}, "
                f"label {label}). A sample in two splits is leakage and one with two labels a contradiction: "
                "fix the lists (an exact repeat, same split and label, is kept once)."
            )
        self.repeats.setdefault(str(list_file), []).append(line)
        return False

    def report(self) -> dict[str, object]:
        """``{"repeated_list_lines": n, "repeated_lines_by_list": {file: {"count", "lines"}}}`` or {}."""
        if not self.repeats:
            return {}
        return {
            "repeated_list_lines": sum(len(lines) for lines in self.repeats.values()),
            "repeated_lines_by_list": {
                name: {"count": len(lines), "lines": lines[:20]} for name, lines in sorted(self.repeats.items())
            },
        }


def attach_report(frame: pd.DataFrame, report: Mapping[str, object], source: str) -> pd.DataFrame:
    """Put ``report`` into ``frame.attrs`` (see the module docstring) and log it once."""
    if report:
        frame.attrs[READER_REPORT] = dict(report)
        total = report.get("repeated_list_lines")
        if total:
            logging.getLogger(__name__).info(
                "%s: %d repeated list line(s) (same path, split and label) kept once: %s",
                source,
                total,
                {name: entry["count"] for name, entry in report["repeated_lines_by_list"].items()},
            )
    return frame


def holdout_groups(groups: Iterable[str], fraction: float, salt: str) -> set[str]:
    """Deterministically pick ``round(fraction * n)`` of the distinct groups for validation.

    Groups are ranked by a SHA-1 of ``salt/group`` (not Python's salted ``hash``), so the pick
    is the same on every machine and run, independent of listing order, and a group keeps its
    place when others are added. At least one group is held out when ``fraction > 0`` and
    there are two or more groups, so a small dataset still gets a validation part (checkpoints
    are selected on it; without one a run cannot select honestly). On small data that minimum
    is a larger share than asked (1 of 2 groups = 50 %): logged at INFO with the share (not a
    warning: it is the documented rule, and a re-run must stay quiet).
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    unique = sorted(set(groups))
    count = round(len(unique) * fraction)
    if fraction > 0 and count == 0 and len(unique) > 1:
        count = 1
        if count / len(unique) > 2 * fraction:
            logging.getLogger(__name__).info(
                "%s: only %d group(s) to hold out from; the validation part is 1 group (%.0f %% of them, "
                "val_fraction=%s asked for less) so that validation is not empty (expected on small copies)",
                salt,
                len(unique),
                100 / len(unique),
                fraction,
            )
    ranked = sorted(unique, key=lambda g: hashlib.sha1(f"{salt}/{g}".encode()).hexdigest())
    return set(ranked[:count])


def check_video_consistency(frame: pd.DataFrame, source: str, one_row_per_video: bool) -> None:
    """Raise if a video id mixes labels, types or splits, or (videos) appears on several rows.

    A video id spread over two splits is leakage; over two labels or types it is two videos
    merged under one name (the folder-name bug of the most used public benchmark).
    """
    for column in ("label", "type", "split"):
        counts = frame.groupby("video_id")[column].nunique()
        bad = counts[counts > 1]
        if len(bad):
            raise DatasetLayoutError(
                f"{source}: {len(bad)} video id(s) have more than one {column}, e.g. {bad.index[:5].tolist()}"
            )
    if one_row_per_video and "media" in frame.columns:
        whole = frame[frame["media"].isin(["video", "frames"])]
        repeated = whole["video_id"][whole["video_id"].duplicated()]
        if len(repeated):
            raise DatasetLayoutError(
                f"{source}: {len(repeated)} video/frame-folder record(s) repeat a video id, "
                f"e.g. {sorted(set(repeated))[:5]}"
            )


def finish_records(rows: list[dict], source: str) -> pd.DataFrame:
    """Validate reader rows into the records frame (plus ``media``), sorted deterministically."""
    if not rows:
        raise DatasetLayoutError(f"{source}: the reader found no records")
    frame = records_frame(rows, source)
    if "media" not in frame.columns:
        raise DatasetLayoutError(f"{source}: records lack the 'media' column")
    bad_media = sorted(set(frame["media"]) - set(MEDIA_KINDS))
    if bad_media:
        raise DatasetLayoutError(f"{source}: media values {bad_media} are not in {list(MEDIA_KINDS)}")
    duplicated = frame["path"][frame["path"].duplicated()]
    if len(duplicated):
        raise DatasetLayoutError(
            f"{source}: {len(duplicated)} path(s) appear on more than one record, e.g. {duplicated.head(5).tolist()}"
        )
    check_video_consistency(frame, source, one_row_per_video=True)
    return frame.sort_values(["split", "video_id", "path"], kind="stable").reset_index(drop=True)
