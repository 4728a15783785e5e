"""The schema of a paper table: :class:`PaperTable` of :class:`Column` (a :class:`Measure`) and
:class:`Row` (a ``match`` of jobs plus the published numbers), and the names they validate against."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from evaluation.metrics import METRIC_NAMES
from evaluation.robustness import CORRUPTIONS

MatchValue = str | int | float | bool | None | tuple
"""A match value: one value, or a tuple of accepted values."""

LEVELS = ("frame", "video")
REDUCTIONS = ("single", "mean", "max", "any")
UNITS = {"percent": 100.0, "fraction": 1.0}
SOURCES = ("tests", "cost", "robustness")
COST_METRICS = (
    "params_total_m",
    "params_trainable_m",
    "params_total",
    "params_trainable",
    "gflops_per_image",
    "gmacs_per_image",
    "latency_ms_per_image",
    "latency_ms_per_batch",
)
"""Numeric keys of ``results.json`` ``extra.cost`` (``evaluation.cost.measure_cost``)."""
SEVERITY_RANGE = range(0, 6)
GENERATION = "self_distill.generation"
"""Match key of one generation of a self-distillation chain (0 = teacher, g = student g)."""


@dataclass(frozen=True)
class Measure:
    """``metric`` (a key of ``evaluation.metrics.METRIC_NAMES``) at ``level`` on ``test_sets``;
    several sets are combined by ``reduce``: ``mean``, ``max``, or ``any`` (the one set present).

    ``source`` says where the value is read: ``tests`` (``results.json`` ``tests``), ``cost``
    (``results.json`` ``extra.cost``; ``metric`` one of :data:`COST_METRICS`, no test sets; printed
    as is, not in the table's unit) or ``robustness`` (``robustness.json``: the test sets under
    ``corruption`` at ``severity``, 0 = clean)."""

    metric: str
    test_sets: tuple[str, ...] = ()
    level: str = "frame"
    reduce: str = "single"
    source: str = "tests"
    corruption: str | None = None
    severity: int | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"Measure: source {self.source!r} must be one of {SOURCES}")
        if self.source == "cost":
            if self.metric not in COST_METRICS:
                raise ValueError(
                    f"Measure: cost metric {self.metric!r}; expected one of {list(COST_METRICS)}"
                )
            if self.test_sets or self.corruption is not None or self.severity is not None:
                raise ValueError(
                    f"Measure: a cost measure ({self.metric}) takes no test sets, corruption or severity"
                )
            return
        if self.metric not in METRIC_NAMES:
            raise ValueError(f"Measure: unknown metric {self.metric!r}; expected one of {list(METRIC_NAMES)}")
        if self.level not in LEVELS:
            raise ValueError(f"Measure: level {self.level!r} must be one of {LEVELS}")
        if self.reduce not in REDUCTIONS:
            raise ValueError(f"Measure: reduce {self.reduce!r} must be one of {REDUCTIONS}")
        if not self.test_sets or (self.reduce == "single" and len(self.test_sets) != 1):
            raise ValueError(
                f"Measure: reduce={self.reduce!r} with test sets {self.test_sets}; 'single' takes exactly one"
            )
        if self.source == "robustness":
            if self.corruption not in CORRUPTIONS:
                raise ValueError(
                    f"Measure: corruption {self.corruption!r}; expected one of {list(CORRUPTIONS)}"
                )
            if self.severity not in SEVERITY_RANGE:
                raise ValueError(
                    f"Measure: severity {self.severity!r}; expected an integer in 0..5 (0 = clean)"
                )
        elif self.corruption is not None or self.severity is not None:
            raise ValueError("Measure: corruption and severity need source='robustness'")

    @property
    def is_rate(self) -> bool:
        """Whether the value is a rate in [0, 1] (scaled to the table's unit); cost values are not."""
        return self.source != "cost"


@dataclass(frozen=True)
class Column:
    """One column: a measure (or ``mean_of`` other column keys), plus column-specific ``match``
    (e.g. the protocol a column group was trained on). ``group`` is the upper header line;
    ``decimals`` overrides the table's (cost columns: the paper's own precision)."""

    key: str
    label: str
    measure: Measure | None = None
    group: str = ""
    match: Mapping[str, MatchValue] = field(default_factory=dict)
    mean_of: tuple[str, ...] = ()
    decimals: int | None = None

    @property
    def header(self) -> str:
        return f"{self.group} {self.label}".strip()


@dataclass(frozen=True)
class Row:
    """One row: which jobs fill it (``match``; None = not wired yet), the paper's numbers by
    column key (None where the paper prints '-'), ``paper_std`` for tables with mean +- std,
    ``pool``: keys whose values are pooled units of the mean +- std (instead of seeds), and
    ``sweep``: the conf/sweep config that produces the row (None: no sweep runs it, e.g. the
    methods' main rows, run by their experiments)."""

    key: str
    label: str
    match: Mapping[str, MatchValue] | None
    paper: Mapping[str, float | None]
    paper_std: Mapping[str, float] = field(default_factory=dict)
    sweep: str | None = None
    note: str = ""
    pool: tuple[str, ...] = ()


@dataclass(frozen=True)
class PaperTable:
    """A paper table; ``unit`` is how the paper prints rates (``percent`` or ``fraction``).
    ``figure``: the paper shows these results only as a plot (no numbers to transcribe)."""

    name: str
    paper: str
    number: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    unit: str
    decimals: int
    anchor: str
    sweep: str | None = None
    match: Mapping[str, MatchValue] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    number_pattern: str = r"\d+(?:\.\d+)?"
    figure: bool = False

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"table {self.name}: unit {self.unit!r} must be one of {list(UNITS)}")
        keys = [c.key for c in self.columns]
        if len(set(keys)) != len(keys):
            raise ValueError(f"table {self.name}: duplicate column keys in {keys}")
        row_keys = [r.key for r in self.rows]
        if len(set(row_keys)) != len(row_keys):
            raise ValueError(f"table {self.name}: duplicate row keys in {row_keys}")
        for column in self.columns:
            if (column.measure is None) == (not column.mean_of):
                raise ValueError(
                    f"table {self.name}, column {column.key}: give exactly one of measure or mean_of"
                )
            unknown = set(column.mean_of) - set(keys)
            if unknown:
                raise ValueError(
                    f"table {self.name}, column {column.key}: mean_of names unknown columns {sorted(unknown)}"
                )
        for row in self.rows:
            unknown = (set(row.paper) | set(row.paper_std)) - set(keys)
            if unknown:
                raise ValueError(
                    f"table {self.name}, row {row.key}: paper numbers for unknown columns {sorted(unknown)}"
                )
            if self.figure and (row.paper or row.paper_std):
                raise ValueError(
                    f"table {self.name} is a figure (no published numbers) but row {row.key} has paper numbers"
                )

    @property
    def scale(self) -> float:
        """Factor from the fractions in results.json to the paper's unit."""
        return UNITS[self.unit]

    @property
    def title_line(self) -> str:
        return f"{self.paper.upper()} {self.number}: {self.title}"

    def column_decimals(self, column: Column) -> int:
        return self.decimals if column.decimals is None else column.decimals

    def column(self, key: str) -> Column:
        for column in self.columns:
            if column.key == key:
                return column
        raise KeyError(f"table {self.name}: no column {key!r}; columns are {[c.key for c in self.columns]}")
