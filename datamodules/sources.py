"""Where the records of a named dataset come from: its prepared face crops, or the embedded
synthetic data standing in for it (``data.source: synthetic``, set by ``scale=demo``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from common.choices import check_choice
from datamodules.records import validate_records

log = logging.getLogger(__name__)

SOURCES = ("prepared", "synthetic")


class DatasetNotFoundError(FileNotFoundError):
    """A configured dataset whose data directory or index does not exist."""


def missing_data_advice(name: str, scale_name: str | None) -> str:
    """What to do when dataset ``name`` has no prepared folder, fitting the run that asked.

    A run at ``scale=demo`` with ``data.source=prepared`` asked for the prepared crops on purpose
    (a small run on real data): telling it to "run with scale=demo" would be wrong advice.
    """
    prepare = (
        "Prepare it as described in docs/DATASETS.md (python -m datamodules.preprocess ... --out "
        f"$FACEMOE_PREPARED/{name}), or point paths.prepared_dir (FACEMOE_PREPARED) / "
        f"data.datasets.{name}.prepared at an existing prepared folder"
    )
    if scale_name == "demo":
        return (
            f"{prepare}. This run is a small run on prepared data (scale=demo with data.source=prepared); "
            "drop data.source=prepared to run the demo on the embedded synthetic data instead."
        )
    return f"{prepare}, or try the pipeline first on the embedded synthetic data with scale=demo."


def load_dataset_records(
    name: str,
    spec: Mapping,
    source: str,
    synthetic: Mapping | None = None,
    scale_name: str | None = None,
) -> pd.DataFrame:
    """Records of dataset ``name`` with an absolute ``file`` column added for loading.

    ``spec`` is the dataset's entry in ``data.datasets``: ``prepared``, the folder holding the
    prepared ``index.csv``; ``where`` (optional), ``{column: value or [values]}`` keeping only the
    prepared rows whose reader column has one of those values, so one prepared folder can serve
    several named datasets (JFSFDB's intra- and cross-dataset test lists, by ``role``);
    ``synthetic``, the synthetic domain that stands in for it at ``source=synthetic`` (the whole
    domain: ``where`` names reader columns the synthetic records do not have). ``scale_name``
    only shapes the advice of a missing-data error (:func:`missing_data_advice`).
    """
    check_choice("data.source", source, SOURCES)
    if source == "synthetic":
        from datamodules.synthetic import ensure_synthetic, synthetic_dir

        options = dict(synthetic or {})
        domain = spec.get("synthetic")
        if not domain:
            raise ValueError(
                f"dataset {name!r} has no 'synthetic' domain to stand in for it at data.source=synthetic"
            )
        root = Path(options.pop("root"))
        seed = int(options.pop("seed", 0))
        spec_obj = synthetic_spec(options.pop("spec", None))
        records = ensure_synthetic(
            root, seed=seed, spec=spec_obj, progress=bool(options.pop("progress", True))
        )
        base = synthetic_dir(root, seed, spec_obj)
        records = records[records["domain"] == domain]
        if records.empty:
            known = sorted(
                ensure_synthetic(root, seed=seed, spec=spec_obj, progress=False)["domain"].unique()
            )
            raise ValueError(
                f"dataset {name!r} maps to synthetic domain {domain!r}, which does not exist; known: {known}"
            )
    else:
        prepared = spec.get("prepared")
        if not prepared:
            raise ValueError(
                f"dataset {name!r} has no 'prepared' directory configured in data.datasets.{name}"
            )
        base = Path(str(prepared)).expanduser()
        if not base.is_dir():
            raise DatasetNotFoundError(
                f"dataset {name!r}: prepared data directory {str(base)!r} does not exist. "
                + missing_data_advice(name, scale_name)
            )
        from datamodules.index import load_prepared_index

        records = load_prepared_index(base)
        records = select_where(records, spec.get("where"), f"dataset {name!r} ({base / 'index.csv'})")
    records = validate_records(records, f"dataset {name!r} ({source})")
    records["file"] = [str(base / p) for p in records["path"]]
    return records


def select_where(records: pd.DataFrame, where: Mapping | None, source: str) -> pd.DataFrame:
    """Rows whose ``column`` value is one of the given values, for every column of ``where``.

    Values compare as text (the index is CSV). A column the records lack, or a filter that
    keeps nothing, is an error naming the columns or the values that do exist.
    """
    if not where:
        return records
    if not isinstance(where, Mapping):
        raise ValueError(
            f"{source}: 'where' must map column names to a value or a list of values, got {where!r}"
        )
    keep = pd.Series(True, index=records.index)
    for column, wanted in where.items():
        if column not in records.columns:
            raise ValueError(
                f"{source}: 'where' filters on column {column!r}, which the index does not have; its columns are "
                f"{list(records.columns)}. Prepare the dataset with a reader that writes it (docs/DATASETS.md)."
            )
        scalar = isinstance(wanted, str | bytes) or not isinstance(wanted, Iterable)
        values = [str(v) for v in ([wanted] if scalar else wanted)]
        present = records[column].astype(str)
        unknown = sorted(set(values) - set(present))
        if unknown:
            raise ValueError(
                f"{source}: 'where' asks for {column} in {unknown}, which no row has; values present: "
                f"{sorted(present.unique())[:20]}"
            )
        keep &= present.isin(values)
    if not keep.any():
        raise ValueError(f"{source}: no row satisfies every condition of 'where' {dict(where)}")
    log.info("%s: 'where' %s keeps %d of %d rows", source, dict(where), int(keep.sum()), len(records))
    return records.loc[keep].reset_index(drop=True)


def synthetic_spec(raw: Mapping | None):
    from datamodules.synthetic import SyntheticSpec

    if raw is None:
        return SyntheticSpec()
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in dict(raw).items()}
    return SyntheticSpec(**values)
