"""The registry of paper tables: layout, where each cell comes from, and the published numbers.

A :class:`PaperTable` is what ``python -m sweeps.aggregate <sweep dir> --table <name>`` prints:
its rows and columns in the paper's order, each cell filled from the ``results.json`` of the
jobs that match it, beside the number the paper published.

How a cell finds its jobs: a job matches when every ``key: value`` of the table's, the row's and
the column's ``match`` holds. A key that names a config group (``detector``, ``experiment``,
``protocol``, ...) is compared with the job's group choice (``.hydra/hydra.yaml``); any other key
is a dotted path into the job's resolved config (``protocol.name``, ``leave_out``, ``seed``).
A tuple value accepts any of its values. Jobs of one cell that differ only in ``seed`` are
replicates (mean +- std over seeds); ``Row.pool`` names keys whose values are pooled instead
(SUEDE's P2 = mean +- std over the sub-protocols P2.1 and P2.2: seeds are averaged within each
sub-protocol first). ``Row.match = None`` means the row is not wired to runs yet; it prints as
such, with the paper's numbers. Baseline rows match ``experiment``, ``detector`` and
``protocol.name``; method rows match their experiment (and protocol where a table varies it);
ablation rows (:func:`ablation`) match their sweep's ``sweep_name`` and the row's knob values, or
the sweep's named choice (``dfmoe_loss_set: B``), whose knob values are read from the sweep's YAML
(:mod:`sweeps.tables.knob_sets`).

What a cell measures: :class:`Measure` = a metric of ``results.json`` (``tests.<set>.<level>.<metric>``)
on one test set, or reduced over several (``mean``, or ``max`` for GM-DF's M_EER, or ``any``:
whichever one of the listed sets the job has, for protocols that name their test set after
themselves, like ``uniattack_p2_1``); a column
with ``mean_of`` is the row's average over other columns (the papers' "Avg").

Besides test metrics, a measure can read the cost of the tested model (``source="cost"``:
``results.json`` ``extra.cost``, written with ``evaluate_cost: true``; parameters in millions,
GFLOPs / GMACs and ms per image, printed as measured, never scaled to percent) or a robustness
score (``source="robustness"``: ``robustness.json``, a test set under one corruption at one
severity). Runs of DTN's self-distillation chain are matched by generation with the key
:data:`GENERATION` (the ``gen<g>/`` run directory, or ``self_distill.generation`` in the config).

Paper numbers are transcribed from ``/work/shared/papers/<paper>.txt`` (text extracted from
the PDFs) and checked by ``tests/test_aggregate.py``: every row's numbers must appear, in order,
on one line of the paper near the table's ``anchor``. Figures (``figure=True``) publish no
numbers, only plots: their rows carry none and only the anchor (the caption) is checked. Rows a
paper prints but the suite cannot run yet are kept with ``match=None`` (printed "not wired", with
the paper's numbers) and listed in docs/SWEEPS.md. Notes record every reading that was not obvious.

The package: :mod:`~sweeps.tables.schema` (the dataclasses), :mod:`~sweeps.tables.builders` (column
families, paper numbers, ablation matches), :mod:`~sweeps.tables.knob_sets` (a sweep's named choices),
:mod:`~sweeps.tables.baselines` (what several papers share), one module per paper (``dfmoe``, ``dtn``,
``gmdf``, ``moa_clip``, ``suede``) and :mod:`~sweeps.tables.checker`. :data:`TABLES` is collected: every
``PaperTable`` defined at the top level of a module of this package is registered, so a new table (or
a new paper module) needs no list to be edited.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from types import ModuleType

from sweeps.tables.builders import (
    ablation,
    ablation_rows,
    cost_columns,
    metric_columns,
    paired_columns,
    robustness_columns,
    values,
)
from sweeps.tables.checker import PAPER_ROW_WINDOW, check_transcription, paper_sequence
from sweeps.tables.schema import (
    COST_METRICS,
    GENERATION,
    LEVELS,
    REDUCTIONS,
    SEVERITY_RANGE,
    SOURCES,
    UNITS,
    Column,
    MatchValue,
    Measure,
    PaperTable,
    Row,
)

__all__ = [
    "COST_METRICS",
    "GENERATION",
    "LEVELS",
    "PAPER_ROW_WINDOW",
    "REDUCTIONS",
    "SEVERITY_RANGE",
    "SOURCES",
    "TABLES",
    "UNITS",
    "Column",
    "MatchValue",
    "Measure",
    "PaperTable",
    "Row",
    "ablation",
    "ablation_rows",
    "check_transcription",
    "collect_tables",
    "cost_columns",
    "get_table",
    "metric_columns",
    "paired_columns",
    "paper_modules",
    "paper_sequence",
    "robustness_columns",
    "tables_for_sweep",
    "values",
]


def paper_modules() -> list[ModuleType]:
    """Every module of this package (``sweeps/tables/*.py`` but ``__main__``), imported, by name."""
    return [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name)
        if not info.name.startswith("_")
    ]


def collect_tables(modules: Iterable[ModuleType]) -> dict[str, PaperTable]:
    """Every :class:`PaperTable` at the top level of ``modules``, by name, in module then definition
    order. A table imported into another module is the same object and counted once; two different
    tables with one name are an error."""
    tables: dict[str, PaperTable] = {}
    where: dict[str, str] = {}
    for module in modules:
        for attribute, table in vars(module).items():
            if not isinstance(table, PaperTable):
                continue
            if table.name in tables and tables[table.name] is not table:
                raise ValueError(
                    f"two tables named {table.name!r}: {where[table.name]} and {module.__name__}.{attribute}"
                )
            tables.setdefault(table.name, table)
            where.setdefault(table.name, f"{module.__name__}.{attribute}")
    return tables


TABLES: dict[str, PaperTable] = collect_tables(paper_modules())
"""Every registered table by name (``<paper>_table<number>``), collected from the paper modules."""


def get_table(name: str) -> PaperTable:
    """The registered table ``name``; a KeyError lists the registered names."""
    if name not in TABLES:
        raise KeyError(f"no table {name!r} in sweeps/tables/; registered: {sorted(TABLES)}")
    return TABLES[name]


def tables_for_sweep(sweep: str) -> list[PaperTable]:
    """The tables (some of) whose rows the sweep ``sweep`` (conf/sweep/<sweep>.yaml) fills."""
    return [t for t in TABLES.values() if t.sweep == sweep or any(r.sweep == sweep for r in t.rows)]
