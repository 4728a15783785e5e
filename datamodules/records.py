"""The record contract every reader, the synthetic generator and the datamodule share.

One record is one frame or image:

=========  ======================================================================
path       POSIX path relative to the dataset root (never absolute)
label      int, 1 = fake / attack, 0 = real / live (readers convert explicitly)
domain     str, the dataset (domain) name, e.g. ``ffpp``
type       str, fine-grained type: manipulation method or attack family, ``real``
           or ``live`` for genuine samples
video_id   str, unique across the whole dataset, includes method and compression
           (``ffpp/c23/Deepfakes/000_003``); an image dataset uses one id per image
split      str, one of ``train``, ``val``, ``test``
=========  ======================================================================
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

RECORD_COLUMNS: tuple[str, ...] = ("path", "label", "domain", "type", "video_id", "split")
SPLITS: tuple[str, ...] = ("train", "val", "test")


class RecordError(ValueError):
    """Records that break the contract; the message names the source and the bad values."""


def records_frame(rows: Iterable[dict], source: str) -> pd.DataFrame:
    """Build a validated records DataFrame from dict rows (extra keys are kept)."""
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        frame = pd.DataFrame(columns=list(RECORD_COLUMNS))
    return validate_records(frame, source)


def validate_records(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check a records table against the contract and return it with canonical dtypes.

    ``source`` names where the records came from (a file or a reader) so every error says it.
    """
    missing = [c for c in RECORD_COLUMNS if c not in frame.columns]
    if missing:
        raise RecordError(
            f"{source}: records lack column(s) {missing}; expected at least {list(RECORD_COLUMNS)}, "
            f"found {list(frame.columns)}"
        )
    frame = frame.copy()
    labels = pd.to_numeric(frame["label"], errors="coerce")
    bad = frame.loc[~labels.isin([0, 1]), "label"]
    if len(bad):
        raise RecordError(
            f"{source}: {len(bad)} record(s) have a label that is not 0 (real) or 1 (fake): "
            f"examples {bad.head(5).tolist()}"
        )
    frame["label"] = labels.astype("int64")
    bad_split = frame.loc[~frame["split"].isin(SPLITS), "split"]
    if len(bad_split):
        raise RecordError(
            f"{source}: {len(bad_split)} record(s) have a split outside {list(SPLITS)}: "
            f"examples {sorted(set(bad_split.astype(str)))[:5]}"
        )
    absolute = frame.loc[frame["path"].astype(str).str.startswith("/"), "path"]  # PurePosixPath.is_absolute, vectorised
    if len(absolute):
        raise RecordError(
            f"{source}: record paths must be relative to the dataset root, found absolute paths "
            f"such as {absolute.head(3).tolist()}"
        )
    for column in ("path", "domain", "type", "video_id", "split"):
        frame[column] = frame[column].astype(str)
    return frame.reset_index(drop=True)
