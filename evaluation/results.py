"""The files every run writes: ``results.json`` and ``predictions/<test set>.csv`` (docs/RESULTS.md).

Every file is written atomically (temporary file in the same directory, fsync, ``os.replace``)
so a crash or a failing serialisation never leaves a partial or corrupt file behind; an
aggregator reading a run directory sees either the old complete file or the new one.

``results.json`` is strict JSON: NaN and +-inf (undefined metrics, e.g. AUC on a one-class
set) are written as ``null``, because ``NaN`` tokens break strict parsers (jq, JavaScript,
many JSON libraries). :func:`load_results` turns ``null`` metric values back into NaN.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import numbers
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from evaluation.metrics import METRIC_NAMES, max_eer

SCHEMA_VERSION = 1
RESULTS_FILE_NAME = "results.json"
PREDICTIONS_DIR_NAME = "predictions"
PREDICTION_COLUMNS: tuple[str, ...] = ("path", "video_id", "label", "domain", "type", "score")
METRIC_LEVELS: tuple[str, ...] = ("frame", "video")
RESULTS_KEYS: tuple[str, ...] = (
    "schema_version",
    "created_utc",
    "git_commit",
    "wall_time_s",
    "config",
    "validation",
    "tests",
    "summary",
    "extra",
)
# A test-set name becomes a file name under predictions/, so keep it to a safe alphabet.
_TEST_SET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


class ResultsFileError(ValueError):
    """A results file or results dict that breaks the schema; the message names file and key."""


class OutputWriteError(OSError):
    """An output file could not be written (full disk, quota, permissions); names the file. The
    previous version of the file, if any, is unchanged and no partial file is left."""

    def __str__(self) -> str:
        return str(self.strerror)


# --------------------------------------------------------------------------- atomic writing


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, newline: str | None = None, binary: bool = False) -> Iterator[TextIO]:
    """Open a text handle (a binary one with ``binary=True``, e.g. for ``torch.save``) whose content
    replaces ``path`` only if the block completes: the suite's one "temporary file, then rename".

    The handle writes to a hidden temporary file next to ``path`` (same file system, so the
    final ``os.replace`` is atomic). On any exception the temporary file is removed and the
    previous ``path`` (if any) is left untouched.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(
            "wb" if binary else "w",
            encoding=None if binary else "utf-8",
            newline=newline,
            dir=target.parent,
            prefix=f".{target.name}.",
            suffix=".tmp",
            delete=False,
        )
    except OSError as error:
        raise output_write_error(target, error) from error
    temporary = Path(handle.name)
    try:
        with handle:
            yield handle
            handle.flush()
            # mkstemp creates 0600 files; keep an existing file's mode, else the usual 0644,
            # so results stay readable by collaborators on a shared cluster.
            mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise output_write_error(target, error) from error
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


def output_write_error(target: Path, error: OSError) -> OutputWriteError:
    # ENOSPC from a write carries no file name: say which file, and that nothing partial is left.
    if isinstance(error, OutputWriteError):
        return error
    reason = error.strerror or str(error)
    return OutputWriteError(
        error.errno,
        f"cannot write {str(target)!r}: {reason} (errno {error.errno}); no partial file was left and the previous "
        f"version, if any, is unchanged. Free space (or fix permissions) and re-run",
        str(target),
    )


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not every file system allows it, and the file content
    # is already safe, so failure here is not an error.
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_open(path) as handle:
        handle.write(text)
    return Path(path)


def json_safe(value: Any, where: str = "$") -> Any:
    """A copy of ``value`` made of JSON types only, with NaN/inf floats replaced by None.

    Converts numpy scalars and arrays, tuples, sets (sorted) and paths; raises TypeError naming
    the key path (``where``) for anything else, and for non-string mapping keys.
    """
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, int | np.integer):
        return int(value)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist(), where)
    if isinstance(value, Mapping):
        converted = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"{where}: mapping key {key!r} is a {type(key).__name__}; JSON keys must be str"
                )
            converted[key] = json_safe(item, f"{where}.{key}")
        return converted
    if isinstance(value, list | tuple):
        return [json_safe(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, set | frozenset):
        return [json_safe(item, f"{where}[]") for item in sorted(value)]
    raise TypeError(f"{where}: cannot write a {type(value).__name__} to JSON ({value!r:.80})")


def _json_chunks(obj: Any) -> Iterator[str]:
    # allow_nan=False: a NaN that escaped json_safe must fail loudly, never become a NaN token.
    return json.JSONEncoder(indent=2, sort_keys=False, allow_nan=False, ensure_ascii=False).iterencode(obj)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as strict JSON (NaN/inf -> null) to ``path`` atomically; returns the path."""
    target = Path(path)
    try:
        safe = json_safe(obj)
    except TypeError as error:
        raise TypeError(f"{target}: {error}") from error
    with atomic_open(target) as handle:
        # Streamed chunk by chunk: a failure half-way is still caught by atomic_open.
        for chunk in _json_chunks(safe):
            handle.write(chunk)
        handle.write("\n")
    return target


# --------------------------------------------------------------------------- predictions


def predictions_path(run_dir: str | os.PathLike, test_set: str) -> Path:
    """``run_dir/predictions/<test_set>.csv``; ``test_set`` must be a safe file name."""
    if not _TEST_SET_NAME.match(test_set):
        raise ValueError(
            f"test set name {test_set!r} cannot be a file name; expected letters, digits and . _ + - "
            f"(no '/' or spaces), e.g. 'celebdf_v2'"
        )
    return Path(run_dir) / PREDICTIONS_DIR_NAME / f"{test_set}.csv"


def write_predictions(path: str | os.PathLike, frame: pd.DataFrame) -> Path:
    """Write one row per frame with columns exactly :data:`PREDICTION_COLUMNS`, atomically.

    ``frame`` is a records table (``datamodules.records``) with a ``score`` column (P(fake));
    other columns (``split``, ...) are not written. Raises ValueError for missing columns,
    labels outside {0, 1} or non-finite scores, naming the file.
    """
    target = Path(path)
    missing = [column for column in PREDICTION_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(
            f"{target}: predictions lack column(s) {missing}; expected {list(PREDICTION_COLUMNS)}, "
            f"found {list(frame.columns)}"
        )
    table = frame.loc[:, list(PREDICTION_COLUMNS)].copy()
    scores = pd.to_numeric(table["score"], errors="coerce").astype("float64")
    bad_scores = int((~np.isfinite(scores.to_numpy())).sum())
    if bad_scores:
        raise ValueError(f"{target}: {bad_scores} of {len(table)} scores are missing, NaN or infinite")
    labels = pd.to_numeric(table["label"], errors="coerce")
    bad_labels = table.loc[~labels.isin([0, 1]), "label"]
    if len(bad_labels):
        raise ValueError(
            f"{target}: {len(bad_labels)} label(s) are not 0 (real) or 1 (fake): "
            f"examples {bad_labels.head(5).tolist()}"
        )
    # float64 is written with its shortest round-trip repr, so scores read back are identical.
    table["score"] = scores
    table["label"] = labels.astype("int64")
    with atomic_open(target, newline="") as handle:
        table.to_csv(handle, index=False, lineterminator="\n")
    return target


def read_predictions(path: str | os.PathLike) -> pd.DataFrame:
    """Read a predictions CSV back, checking its columns; ids and names stay strings."""
    source = Path(path)
    table = pd.read_csv(
        source,
        dtype={
            "path": str,
            "video_id": str,
            "domain": str,
            "type": str,
            "label": "int64",
            "score": "float64",
        },
        keep_default_na=False,
    )
    if tuple(table.columns) != PREDICTION_COLUMNS:
        raise ResultsFileError(
            f"{source}: predictions columns are {list(table.columns)}; expected {list(PREDICTION_COLUMNS)}"
        )
    return table


# --------------------------------------------------------------------------- results.json


def git_commit(repo_dir: str | os.PathLike) -> str | None:
    """The HEAD commit of the repository holding ``repo_dir``, with ``-dirty`` if tracked files
    changed; None outside a repository, before the first commit, or without git."""

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["git", *args], cwd=repo_dir, capture_output=True, text=True, timeout=30, check=False
        )

    try:
        head = git("rev-parse", "--verify", "HEAD")
        if head.returncode != 0:
            return None
        # Untracked files are ignored: run outputs inside the tree must not mark every run dirty.
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = head.stdout.strip()
    if status.returncode != 0:
        return None
    return f"{commit}-dirty" if status.stdout.strip() else commit


def _metric_block(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ResultsFileError(
            f"{where}: expected a mapping of metric name -> number, got {type(value).__name__}"
        )
    missing = [name for name in METRIC_NAMES if name not in value]
    if missing:
        raise ResultsFileError(
            f"{where}: metrics {missing} are missing; expected all of {list(METRIC_NAMES)}"
        )
    for name, number in value.items():
        if number is not None and (isinstance(number, bool) or not isinstance(number, numbers.Real)):
            raise ResultsFileError(f"{where}.{name}: expected a number or null, got {number!r}")
    return dict(value)


def _metric_levels(value: Any, where: str) -> dict[str, dict[str, Any]]:
    if not isinstance(value, Mapping):
        raise ResultsFileError(
            f"{where}: expected {{'frame': metrics, 'video': metrics}}, got {type(value).__name__}"
        )
    missing = [level for level in METRIC_LEVELS if level not in value]
    if missing:
        raise ResultsFileError(f"{where}: lacks level(s) {missing}; expected {list(METRIC_LEVELS)}")
    return {**value, **{level: _metric_block(value[level], f"{where}.{level}") for level in METRIC_LEVELS}}


def validate_results(results: Mapping[str, Any], source: str) -> None:
    """Raise :class:`ResultsFileError` (naming ``source`` and the key) if ``results`` breaks the
    schema described in docs/RESULTS.md. Metric values may be numbers, NaN or None."""
    if not isinstance(results, Mapping):
        raise ResultsFileError(f"{source}: results must be a JSON object, got {type(results).__name__}")
    missing = [key for key in RESULTS_KEYS if key not in results]
    if missing:
        raise ResultsFileError(f"{source}: results lack key(s) {missing}; expected {list(RESULTS_KEYS)}")
    if results["schema_version"] != SCHEMA_VERSION:
        raise ResultsFileError(
            f"{source}: schema_version is {results['schema_version']!r}; this code reads version {SCHEMA_VERSION}"
        )
    commit = results["git_commit"]
    if commit is not None and not isinstance(commit, str):
        raise ResultsFileError(f"{source}: git_commit must be a string or null, got {commit!r}")
    wall_time = results["wall_time_s"]
    if isinstance(wall_time, bool) or not isinstance(wall_time, int | float) or not wall_time >= 0:
        raise ResultsFileError(f"{source}: wall_time_s must be a number >= 0, got {wall_time!r}")
    for key in ("config", "validation", "tests", "summary", "extra"):
        if not isinstance(results[key], Mapping):
            raise ResultsFileError(f"{source}: {key} must be an object, got {type(results[key]).__name__}")
    if not results["tests"]:
        raise ResultsFileError(f"{source}: tests is empty; expected at least one test set")
    for test_set, levels in results["tests"].items():
        if not _TEST_SET_NAME.match(test_set):
            raise ResultsFileError(f"{source}: test set name {test_set!r} cannot name a predictions file")
        _metric_levels(levels, f"{source}: tests.{test_set}")
    if "metrics" in results["validation"]:
        _metric_levels(results["validation"]["metrics"], f"{source}: validation.metrics")
    m_eer = results["summary"].get("m_eer")
    if (
        not isinstance(m_eer, Mapping)
        or set(m_eer) != set(METRIC_LEVELS)
        or any(value is not None and not isinstance(value, numbers.Real) for value in m_eer.values())
    ):
        raise ResultsFileError(
            f"{source}: summary.m_eer must map {list(METRIC_LEVELS)} to a number or null, got {m_eer!r}"
        )


def build_results(
    config: dict,
    validation: dict,
    tests: dict[str, dict],
    git_commit: str | None,
    wall_time_s: float,
    extra: dict | None = None,
) -> dict:
    """Assemble the results dict (schema in docs/RESULTS.md) and check it.

    ``config``: the resolved run config (plain containers); ``validation``: what model selection
    saw, e.g. ``{"metrics": all_metrics(...), "threshold": eer_threshold(...),
    "monitor": "val/auc", "best_epoch": 7}``; ``tests``: test set name ->
    :func:`evaluation.metrics.all_metrics` output. ``summary.m_eer`` (GM-DF's M_EER, the
    maximum EER over test sets) is computed here per level. Values are converted to JSON types
    (NaN -> None) so the returned dict is what the file will hold.
    """
    if not tests:
        raise ResultsFileError("build_results: tests is empty; expected at least one test set")
    for name, levels in tests.items():
        _metric_levels(levels, f"build_results: tests.{name}")
    m_eer = {
        level: max_eer({name: levels[level]["eer"] for name, levels in tests.items()})
        for level in METRIC_LEVELS
    }
    results = {
        "schema_version": SCHEMA_VERSION,
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit,
        "wall_time_s": wall_time_s,
        "config": config,
        "validation": validation,
        "tests": tests,
        "summary": {
            "test_sets": sorted(tests),
            "m_eer": m_eer,
        },
        "extra": {} if extra is None else extra,
    }
    try:
        safe = json_safe(results)
    except TypeError as error:
        raise TypeError(f"build_results: {error}") from error
    validate_results(safe, "build_results")
    return safe


def write_results(run_dir: str | os.PathLike, results: Mapping[str, Any]) -> Path:
    """Check ``results`` and write it to ``run_dir/results.json`` atomically; returns the path."""
    target = Path(run_dir) / RESULTS_FILE_NAME
    validate_results(results, str(target))
    return atomic_write_json(target, results)


def _reject_constant(token: str) -> None:
    raise ValueError(f"non-standard JSON token {token}; NaN/inf must be written as null")


def _nulls_to_nan(levels: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **levels,
        **{
            level: {name: math.nan if value is None else value for name, value in levels[level].items()}
            for level in METRIC_LEVELS
        },
    }


def load_results(path: str | os.PathLike) -> dict:
    """Read and check a results.json; metric values that are null come back as NaN.

    Raises :class:`ResultsFileError` naming the file for invalid JSON or a schema violation.
    """
    source = Path(path)
    try:
        results = json.loads(source.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError) as error:
        raise ResultsFileError(f"{source}: not a valid results JSON file: {error}") from error
    validate_results(results, str(source))
    results["tests"] = {name: _nulls_to_nan(levels) for name, levels in results["tests"].items()}
    if "metrics" in results["validation"]:
        results["validation"]["metrics"] = _nulls_to_nan(results["validation"]["metrics"])
    results["summary"]["m_eer"] = {
        level: math.nan if value is None else value for level, value in results["summary"]["m_eer"].items()
    }
    return results
