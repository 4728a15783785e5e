"""Readers of the official dataset layouts, and the registry that names them.

Each reader is ``read_<name>(root: Path, **options) -> pandas.DataFrame`` returning one record
per video, frame folder or image (columns of ``datamodules.records`` plus ``media`` in
video / image / frames, and reader-specific extras), with paths relative to ``root``.
Configs name a reader by its registry key; :func:`get_reader` turns the key into the function.
Layouts, options and label conventions are in each module's docstring and docs/DATASETS.md.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from datamodules.readers.celebdf import read_celebdf_v1, read_celebdf_v2
from datamodules.readers.common import (
    DatasetLayoutError,
    DatasetRootNotFoundError,
    EmptyFolderError,
    LabelValueError,
    MissingLayoutFileError,
    MissingListedFilesError,
)
from datamodules.readers.deeperforensics import read_deeperforensics
from datamodules.readers.dfdc import read_dfdc
from datamodules.readers.dfdcp import read_dfdcp
from datamodules.readers.diff import read_diff
from datamodules.readers.ffpp import read_dfd, read_ffpp
from datamodules.readers.jfsfdb import read_jfsfdb
from datamodules.readers.uadfv import read_uadfv
from datamodules.readers.uniattack import read_uniattack
from datamodules.readers.wilddeepfake import read_wilddeepfake

Reader = Callable[..., pd.DataFrame]

READERS: dict[str, Reader] = {
    "ffpp": read_ffpp,
    "dfd": read_dfd,
    "celebdf_v1": read_celebdf_v1,
    "celebdf_v2": read_celebdf_v2,
    "dfdc": read_dfdc,
    "dfdcp": read_dfdcp,
    "diff": read_diff,
    "wilddeepfake": read_wilddeepfake,
    "uniattack": read_uniattack,
    "jfsfdb": read_jfsfdb,
    "uadfv": read_uadfv,
    "deeperforensics": read_deeperforensics,
}


class UnknownReaderError(ValueError):
    """A reader name that is not in :data:`READERS`."""


def get_reader(name: str) -> Reader:
    """The reader registered under ``name``; an unknown name lists the known ones."""
    try:
        return READERS[name]
    except KeyError:
        raise UnknownReaderError(
            f"unknown dataset reader {name!r}; known readers: {sorted(READERS)}"
        ) from None


__all__ = [
    "READERS",
    "DatasetLayoutError",
    "DatasetRootNotFoundError",
    "EmptyFolderError",
    "LabelValueError",
    "MissingLayoutFileError",
    "MissingListedFilesError",
    "UnknownReaderError",
    "get_reader",
]
