"""Where the records of a named dataset come from: its prepared face crops, or the embedded
synthetic data standing in for it (``data.source: synthetic``, set by ``scale=demo``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from datamodules.records import validate_records

SOURCES = ("prepared", "synthetic")


class DatasetNotFoundError(FileNotFoundError):
    """A configured dataset whose data directory or index does not exist."""


def load_dataset_records(
    name: str,
    spec: Mapping,
    source: str,
    synthetic: Mapping | None = None,
) -> pd.DataFrame:
    """Records of dataset ``name`` with an absolute ``file`` column added for loading.

    ``spec`` is the dataset's entry in ``data.datasets`` (``prepared``: the folder holding the
    prepared ``index.csv``; ``synthetic``: the synthetic domain that stands in for it).
    """
    if source not in SOURCES:
        raise ValueError(f"data.source must be one of {SOURCES}, got {source!r}")
    if source == "synthetic":
        from datamodules.synthetic import ensure_synthetic, synthetic_dir

        options = dict(synthetic or {})
        domain = spec.get("synthetic")
        if not domain:
            raise ValueError(f"dataset {name!r} has no 'synthetic' domain to stand in for it at data.source=synthetic")
        root = Path(options.pop("root"))
        seed = int(options.pop("seed", 0))
        spec_obj = _synthetic_spec(options.pop("spec", None))
        records = ensure_synthetic(root, seed=seed, spec=spec_obj, progress=bool(options.pop("progress", True)))
        base = synthetic_dir(root, seed, spec_obj)
        records = records[records["domain"] == domain]
        if records.empty:
            known = sorted(ensure_synthetic(root, seed=seed, spec=spec_obj, progress=False)["domain"].unique())
            raise ValueError(f"dataset {name!r} maps to synthetic domain {domain!r}, which does not exist; known: {known}")
    else:
        prepared = spec.get("prepared")
        if not prepared:
            raise ValueError(f"dataset {name!r} has no 'prepared' directory configured in data.datasets.{name}")
        base = Path(str(prepared)).expanduser()
        if not base.is_dir():
            raise DatasetNotFoundError(
                f"dataset {name!r}: prepared data directory {str(base)!r} does not exist. Prepare it as described in "
                f"docs/DATASETS.md (python -m datamodules.preprocess ...), point paths.prepared_dir / "
                f"data.datasets.{name}.prepared at it, or run with scale=demo to use the embedded synthetic data."
            )
        from datamodules.index import load_prepared_index

        records = load_prepared_index(base)
    records = validate_records(records, f"dataset {name!r} ({source})")
    records["file"] = [str(base / p) for p in records["path"]]
    return records


def _synthetic_spec(raw: Mapping | None):
    from datamodules.synthetic import SyntheticSpec

    if raw is None:
        return SyntheticSpec()
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in dict(raw).items()}
    return SyntheticSpec(**values)
