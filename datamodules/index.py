"""Dataset indexes: the cached output of a reader, and the validated prepared (face-crop) index.

Two tables flow through the data pipeline (reader -> index -> dataset):

- the *raw index*: what a reader (``datamodules.readers``) finds in a dataset as the user
  downloaded it, one record per video / frame folder / image. :func:`build_index` runs the
  reader once and caches the table as CSV (parquet engines are not guaranteed to be
  installed) under ``cache_dir``. The cache file is keyed by reader name, options and dataset
  root; beside it a JSON sidecar stores a fingerprint of the data, and the index is rebuilt
  whenever the fingerprint changes. The fingerprint hashes the sorted relative names of every
  file and folder under the root (and under any absolute path given as an option, such as
  JFSFDB's ``lists_dir``), the size and modification time of the label/split files
  (``.json``, ``.txt``, ``.csv``), and the source of the reader module, so adding, removing or
  renaming a video, editing a split file or changing reader code all rebuild the index.
  Media files are not stat'ed: listing names keeps the walk fast on large trees.
- the *prepared index*: ``<prepared_root>/index.csv``, one record per face-crop frame, written
  by face preprocessing. :func:`load_prepared_index` validates it against the record
  contract and checks that every file exists before any training starts.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from common.choices import check_choice
from datamodules.readers import get_reader
from datamodules.readers.common import (
    MEDIA_ROOT,
    READER_REPORT,
    DatasetRootNotFoundError,
    check_video_consistency,
)
from datamodules.records import RECORD_COLUMNS, validate_records
from evaluation.results import atomic_write_text

logger = logging.getLogger(__name__)

INDEX_FILENAME = "index.csv"
CACHE_FORMAT_VERSION = 1
# Small text files whose content defines labels and splits: their size and mtime are hashed.
LABEL_FILE_SUFFIXES: tuple[str, ...] = (".json", ".txt", ".csv")
MISSING_CHOICES: tuple[str, ...] = ("raise", "warn")


class MissingFilesError(FileNotFoundError):
    """Files named by a prepared index are not on disk."""


def _canonical(value: object) -> object:
    """JSON-ready, order-stable form of an option value (Paths, tuples, OmegaConf containers)."""
    if isinstance(value, Mapping) or hasattr(value, "items"):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple | set | frozenset) or hasattr(value, "__iter__"):
        items = [_canonical(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    return repr(value)


def _option_paths(options: Mapping[str, object]) -> list[Path]:
    """Absolute existing paths given as option values; they belong to the data fingerprint."""
    paths = []
    for value in options.values():
        if (
            isinstance(value, str | Path)
            and Path(value).expanduser().is_absolute()
            and Path(value).expanduser().exists()
        ):
            paths.append(Path(value).expanduser())
    return paths


def _tree_entries(base: Path, exclude: Path | None = None) -> list[str]:
    """Sorted fingerprint lines for a tree: every relative name, plus size/mtime of label files.

    ``exclude`` (the cache folder, when a user puts it inside the dataset) is skipped, or
    writing the cache would change the fingerprint and force a rebuild on every call.
    """
    if base.is_file():
        stat = base.stat()
        return [f"{base.name}\t{stat.st_size}\t{stat.st_mtime_ns}"]
    entries = []
    seen: set[tuple[int, int]] = set()
    if exclude is not None and exclude.is_dir():
        exclude_stat = exclude.stat()
        seen.add((exclude_stat.st_dev, exclude_stat.st_ino))  # treated as already walked
    for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
        stat = os.stat(dirpath)
        if (stat.st_dev, stat.st_ino) in seen:  # the cache, a symlink cycle or a folder linked twice
            dirnames[:] = []
            continue
        seen.add((stat.st_dev, stat.st_ino))
        dirnames.sort()
        relative_dir = os.path.relpath(dirpath, base)
        for name in dirnames:
            entries.append(f"{relative_dir}/{name}/")
        for name in filenames:
            relative = f"{relative_dir}/{name}"
            if name.lower().endswith(LABEL_FILE_SUFFIXES):
                file_stat = os.stat(os.path.join(dirpath, name))
                entries.append(f"{relative}\t{file_stat.st_size}\t{file_stat.st_mtime_ns}")
            else:
                entries.append(relative)
    return sorted(entries)


def data_fingerprint(
    root: Path, extra_paths: list[Path] | tuple[Path, ...] = (), exclude: Path | None = None
) -> str:
    """SHA-256 over the tree listing of ``root`` and ``extra_paths`` (see the module docstring)."""
    digest = hashlib.sha256()
    for base in [Path(root), *extra_paths]:
        digest.update(f"== {base}\n".encode())
        for entry in _tree_entries(base, exclude):
            digest.update(entry.encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()


def _reader_source_hash(reader: object) -> str:
    """Hash of the reader's module and the shared reader helpers, so code changes rebuild."""
    digest = hashlib.sha256()
    for obj in (reader, check_video_consistency):
        try:
            source_file = inspect.getsourcefile(obj)  # type: ignore[arg-type]
        except TypeError:
            source_file = None
        if source_file and Path(source_file).is_file():
            digest.update(Path(source_file).read_bytes())
    return digest.hexdigest()


def cache_key(reader: str, root: Path, options: Mapping[str, object]) -> str:
    """Stable key of one (reader, resolved root, options) combination."""
    payload = json.dumps(
        {"reader": reader, "root": Path(root).resolve().as_posix(), "options": _canonical(dict(options))},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def _read_index_csv(path: Path, dtypes: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Read an index CSV keeping strings as written ("000", "NA" stay strings)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column, dtype in (dtypes or {}).items():
        if column in frame.columns and column not in RECORD_COLUMNS and dtype != "object":
            try:
                if dtype == "bool":  # astype(bool) would turn the text "False" into True
                    frame[column] = frame[column].map({"True": True, "False": False}).astype(bool)
                else:
                    frame[column] = frame[column].astype(dtype)
            except (TypeError, ValueError):
                logger.warning(
                    "index %s: column %r could not be restored to %s; kept as text", path, column, dtype
                )
    return frame


def build_index(reader: str, root: Path, cache_dir: Path, **options: object) -> pd.DataFrame:
    """Records of ``reader`` on ``root`` with ``options``, cached as CSV under ``cache_dir``.

    The reader runs only when no cache exists for this (reader, root, options) or when the
    data fingerprint changed (see the module docstring); otherwise the cached CSV is returned.
    Extra columns keep their dtypes through the cache (stored in the sidecar), and so does the
    reader's report (``frame.attrs["reader_report"]``, e.g. repeated list lines kept once). The
    returned table is validated with ``validate_records`` either way.
    """
    read = get_reader(reader)
    root = Path(root).expanduser()
    if not root.is_dir():
        read(root, **options)  # the reader's own error names the dataset layout it expected
        raise DatasetRootNotFoundError(f"{reader}: dataset root '{root}' is not a directory")
    cache_dir = Path(cache_dir).expanduser()
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = cache_key(reader, root, options)
    csv_path = cache_dir / f"{reader}-{key}.csv"
    meta_path = cache_dir / f"{reader}-{key}.json"
    fingerprint = hashlib.sha256(
        "\n".join(
            [
                str(CACHE_FORMAT_VERSION),
                data_fingerprint(root, _option_paths(options), exclude=cache_dir),
                _reader_source_hash(read),
            ]
        ).encode()
    ).hexdigest()
    source = f"index of reader {reader!r} on '{root}'"

    if meta_path.is_file() and csv_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            meta = {}
        if meta.get("fingerprint") == fingerprint:
            logger.info("%s: using cached index %s", reader, csv_path)
            cached = validate_records(
                _read_index_csv(csv_path, meta.get("dtypes")), f"{source} (cache {csv_path})"
            )
            for key in (READER_REPORT, MEDIA_ROOT):
                if meta.get(key):
                    cached.attrs[key] = meta[key]
            return cached
        logger.info("%s: dataset or reader changed since %s was written; rebuilding", reader, csv_path)

    records = read(root, **options)
    report = dict(records.attrs.get(READER_REPORT, {}))
    media_root = records.attrs.get(MEDIA_ROOT)
    frame = validate_records(records, source)
    if report:
        frame.attrs[READER_REPORT] = report
    if media_root:
        frame.attrs[MEDIA_ROOT] = media_root
    atomic_write_text(csv_path, frame.to_csv(index=False))
    meta = {
        "reader": reader,
        "root": root.resolve().as_posix(),
        "options": _canonical(dict(options)),
        "fingerprint": fingerprint,
        "rows": len(frame),
        "dtypes": {column: str(dtype) for column, dtype in frame.dtypes.items()},
        READER_REPORT: report,  # what the reader tolerated, e.g. repeated list lines kept once
        MEDIA_ROOT: media_root,  # paths are relative to this folder when it is not the root
    }
    atomic_write_text(meta_path, json.dumps(meta, indent=2, sort_keys=True))
    logger.info("%s: indexed %d records from '%s' into %s", reader, len(frame), root, csv_path)
    return frame


def _infer_extra_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Turn all-numeric extra columns of a text-read CSV back into numbers."""
    for column in frame.columns:
        if column in RECORD_COLUMNS:
            continue
        converted = pd.to_numeric(frame[column], errors="coerce")
        if len(frame) and not converted.isna().any():
            frame[column] = converted
    return frame


def load_prepared_index(prepared_root: Path, *, on_missing: str = "raise") -> pd.DataFrame:
    """Validated frame-level index of a prepared dataset, with every file checked to exist.

    Reads ``<prepared_root>/index.csv`` (record columns + optional extras; paths relative to
    ``prepared_root``), validates it with ``validate_records`` and the video-id consistency
    rules (one label, type and split per video id), then checks every path exists.
    ``on_missing="raise"`` (default) raises :class:`MissingFilesError` with the count and up to
    5 examples; ``on_missing="warn"`` drops the missing rows and warns with the count.
    Checking existence costs one ``stat`` per frame (about a second per 100k local files).
    """
    check_choice("on_missing", on_missing, MISSING_CHOICES)
    prepared_root = Path(prepared_root).expanduser()
    if not prepared_root.is_dir():
        raise FileNotFoundError(
            f"prepared dataset folder '{prepared_root}' does not exist; run face preprocessing first "
            "(docs/DATASETS.md, 'Preparing face crops')"
        )
    index_path = prepared_root / INDEX_FILENAME
    if not index_path.is_file():
        raise FileNotFoundError(
            f"prepared dataset folder '{prepared_root}' has no {INDEX_FILENAME}; face preprocessing writes it "
            "(docs/DATASETS.md, 'Preparing face crops')"
        )
    frame = validate_records(_infer_extra_dtypes(_read_index_csv(index_path)), str(index_path))
    if frame.empty:
        raise ValueError(f"'{index_path}' holds no records")
    check_video_consistency(frame, str(index_path), one_row_per_video=False)

    exists = frame["path"].map(lambda relative: (prepared_root / relative).exists())
    missing = frame.loc[~exists, "path"]
    if len(missing):
        message = (
            f"{len(missing)} of {len(frame)} file(s) listed in '{index_path}' are missing under "
            f"'{prepared_root}', e.g. {missing.head(5).tolist()}"
        )
        if on_missing == "raise":
            raise MissingFilesError(
                message
                + ". Re-run face preprocessing, or pass on_missing='warn' to drop them with a warning."
            )
        warnings.warn(message + "; they are dropped (on_missing='warn').", stacklevel=2)
        logger.warning("%s; dropped", message)
        frame = frame.loc[exists].reset_index(drop=True)
        if frame.empty:
            raise MissingFilesError(f"every file listed in '{index_path}' is missing under '{prepared_root}'")
    return frame
