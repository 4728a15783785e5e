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
``protocol.name``; method rows match their experiment (and protocol where a table varies it).

What a cell measures: :class:`Measure` = a metric of ``results.json`` (``tests.<set>.<level>.<metric>``)
on one test set, or reduced over several (``mean``, or ``max`` for GM-DF's M_EER, or ``any``:
whichever one of the listed sets the job has, for protocols that name their test set after
themselves, like ``uniattack_p2_1``); a column
with ``mean_of`` is the row's average over other columns (the papers' "Avg").

Paper numbers are transcribed from ``/work/shared/papers/<paper>.txt`` (text extracted from
the PDFs) and checked by ``tests/test_aggregate.py``: every row's numbers must appear, in order,
on one line of the paper near the table's ``anchor``. Only tables and rows this suite can
produce are registered (plain baselines and each method's main row; method ablations follow
with their methods' sweeps). Notes record every reading that was not obvious.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from evaluation.metrics import METRIC_NAMES

MatchValue = str | int | float | bool | None | tuple
"""A match value: one value, or a tuple of accepted values."""

LEVELS = ("frame", "video")
REDUCTIONS = ("single", "mean", "max", "any")
UNITS = {"percent": 100.0, "fraction": 1.0}


@dataclass(frozen=True)
class Measure:
    """``metric`` (a key of ``evaluation.metrics.METRIC_NAMES``) at ``level`` on ``test_sets``;
    several sets are combined by ``reduce``: ``mean``, ``max``, or ``any`` (the one set present)."""

    metric: str
    test_sets: tuple[str, ...]
    level: str = "frame"
    reduce: str = "single"

    def __post_init__(self) -> None:
        if self.metric not in METRIC_NAMES:
            raise ValueError(f"Measure: unknown metric {self.metric!r}; expected one of {list(METRIC_NAMES)}")
        if self.level not in LEVELS:
            raise ValueError(f"Measure: level {self.level!r} must be one of {LEVELS}")
        if self.reduce not in REDUCTIONS:
            raise ValueError(f"Measure: reduce {self.reduce!r} must be one of {REDUCTIONS}")
        if not self.test_sets or (self.reduce == "single" and len(self.test_sets) != 1):
            raise ValueError(f"Measure: reduce={self.reduce!r} with test sets {self.test_sets}; 'single' takes exactly one")


@dataclass(frozen=True)
class Column:
    """One column: a measure (or ``mean_of`` other column keys), plus column-specific ``match``
    (e.g. the protocol a column group was trained on). ``group`` is the upper header line."""

    key: str
    label: str
    measure: Measure | None = None
    group: str = ""
    match: Mapping[str, MatchValue] = field(default_factory=dict)
    mean_of: tuple[str, ...] = ()

    @property
    def header(self) -> str:
        return f"{self.group} {self.label}".strip()


@dataclass(frozen=True)
class Row:
    """One row: which jobs fill it (``match``; None = not wired yet), the paper's numbers by
    column key (None where the paper prints '-'), ``paper_std`` for tables with mean +- std,
    ``pool``: keys whose values are pooled units of the mean +- std (instead of seeds), and
    ``sweep``: the conf/sweep config that produces the row (None for method rows so far)."""

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
    """A paper table; ``unit`` is how the paper prints rates (``percent`` or ``fraction``)."""

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
                raise ValueError(f"table {self.name}, column {column.key}: give exactly one of measure or mean_of")
            unknown = set(column.mean_of) - set(keys)
            if unknown:
                raise ValueError(f"table {self.name}, column {column.key}: mean_of names unknown columns {sorted(unknown)}")
        for row in self.rows:
            unknown = (set(row.paper) | set(row.paper_std)) - set(keys)
            if unknown:
                raise ValueError(f"table {self.name}, row {row.key}: paper numbers for unknown columns {sorted(unknown)}")

    @property
    def scale(self) -> float:
        """Factor from the fractions in results.json to the paper's unit."""
        return UNITS[self.unit]

    @property
    def title_line(self) -> str:
        return f"{self.paper.upper()} {self.number}: {self.title}"

    def column(self, key: str) -> Column:
        for column in self.columns:
            if column.key == key:
                return column
        raise KeyError(f"table {self.name}: no column {key!r}; columns are {[c.key for c in self.columns]}")


# --------------------------------------------------------------------------- builders


def metric_columns(
    sets: Mapping[str, str], metric: str = "auc", level: str = "frame", label: str | None = None
) -> tuple[Column, ...]:
    """One column per test set: ``{column label: test set}``; the key is the test set name."""
    return tuple(
        Column(key=test_set, label=name if label is None else label, group="" if label is None else name,
               measure=Measure(metric, (test_set,), level))
        for name, test_set in sets.items()
    )


def paired_columns(sets: Mapping[str, str], metrics: Mapping[str, str], level: str = "frame") -> tuple[Column, ...]:
    """Per test set (group), one column per metric (``{label: metric}``); key ``<set>_<metric>``."""
    return tuple(
        Column(key=f"{test_set}_{metric}", label=label, group=name, measure=Measure(metric, (test_set,), level))
        for name, test_set in sets.items()
        for label, metric in metrics.items()
    )


def values(keys: tuple[str, ...] | list[str], numbers: tuple[float | None, ...] | list[float | None]) -> dict[str, float | None]:
    """Paper numbers by column key, in column order (lengths must agree)."""
    if len(keys) != len(numbers):
        raise ValueError(f"{len(numbers)} paper numbers for {len(keys)} columns {list(keys)}")
    return dict(zip(keys, numbers))


# --------------------------------------------------------------------------- test-set names
# Canonical test-set names. Protocols and experiments should use these names so one table can
# be filled from baseline and method runs alike (docs/SWEEPS.md).
FFPP_METHOD_SETS = {"FF-DF": "ffpp_df", "FF-F2F": "ffpp_f2f", "FF-FS": "ffpp_fs", "FF-NT": "ffpp_nt"}
FFPP_BASELINE_SWEEP = "ffpp_baselines"


def baseline(detector: str, protocol: str, experiment: str = "baseline_ffpp") -> dict[str, MatchValue]:
    """The match of a plain baseline row: the baseline experiment, detector and protocol."""
    return {"experiment": experiment, "detector": detector, "protocol.name": protocol}


def _ffpp_baseline(detector: str) -> dict[str, MatchValue]:
    return baseline(detector, "ffpp_cross_dataset_full")


# --------------------------------------------------------------------------- DFMoE

_DFMOE_T1 = metric_columns({"FF++(c23)": "ffpp", **FFPP_METHOD_SETS})
_DFMOE_T1_KEYS = [c.key for c in _DFMOE_T1]
DFMOE_TABLE1 = PaperTable(
    name="dfmoe_table1",
    paper="dfmoe",
    number="Table 1",
    title="Within-domain AUC (%) on FF++ (c23) and per manipulation",
    columns=_DFMOE_T1,
    rows=(
        Row("resnet34", "ResNet-34", _ffpp_baseline("resnet34"), values(_DFMOE_T1_KEYS, (97.80, 99.02, 98.87, 99.16, 96.19)), sweep=FFPP_BASELINE_SWEEP),
        Row("xception", "Xception", _ffpp_baseline("xception"), values(_DFMOE_T1_KEYS, (98.23, 99.15, 99.14, 99.33, 96.77)), sweep=FFPP_BASELINE_SWEEP),
        Row("efficientnet_b4", "EfficientNet-B4", _ffpp_baseline("efficientnet_b4"), values(_DFMOE_T1_KEYS, (97.62, 98.68, 98.67, 99.24, 96.08)), sweep=FFPP_BASELINE_SWEEP),
        Row("dfmoe", "DFMoE (ours)", {"experiment": "dfmoe_ffpp"}, values(_DFMOE_T1_KEYS, (99.15, 99.56, 99.23, 99.51, 97.62))),
    ),
    unit="percent",
    decimals=2,
    anchor="Method	Backbone	FF++(c23)	FF-DF	FF-F2F	FF-FS	FF-NT",
    sweep=FFPP_BASELINE_SWEEP,
    notes=(
        "Read as DeepfakeBench's within-domain protocol: one model trained on FF++ c23 (four methods), "
        "tested on the whole test split and on each method's fakes with the real test videos (FF-DF ...): "
        "protocol ffpp_cross_dataset_full, the same run as Table 2.",
        "Frame-level AUC (the paper does not say; its robustness figure says video-level).",
    ),
)

_DFMOE_T2 = metric_columns(
    {"CDFv1": "celebdf_v1", "CDFv2": "celebdf_v2", "Fsh": "faceshifter", "DFD": "dfd", "DFDC": "dfdc", "DFDCP": "dfdcp", "UADFV": "uadfv"}
)
_DFMOE_T2_KEYS = [c.key for c in _DFMOE_T2]
DFMOE_TABLE2 = PaperTable(
    name="dfmoe_table2",
    paper="dfmoe",
    number="Table 2",
    title="Cross-domain AUC (%), trained on FF++ (c23)",
    columns=_DFMOE_T2,
    rows=(
        Row("resnet34", "ResNet-34", _ffpp_baseline("resnet34"), values(_DFMOE_T2_KEYS, (78.59, 76.17, 61.47, 72.65, 71.53, 72.97, 90.05)), sweep=FFPP_BASELINE_SWEEP),
        Row("xception", "Xception", _ffpp_baseline("xception"), values(_DFMOE_T2_KEYS, (74.36, 74.93, 66.73, 81.77, 70.46, 75.32, 95.30)), sweep=FFPP_BASELINE_SWEEP),
        Row("efficientnet_b4", "EfficientNet-B4", _ffpp_baseline("efficientnet_b4"), values(_DFMOE_T2_KEYS, (81.03, 77.60, 67.56, 69.54, 63.51, 71.01, 95.37)), sweep=FFPP_BASELINE_SWEEP),
        Row("dfmoe", "DFMoE (ours)", {"experiment": "dfmoe_ffpp"}, values(_DFMOE_T2_KEYS, (83.25, 79.32, 73.10, 81.92, 73.95, 78.51, 95.58))),
    ),
    unit="percent",
    decimals=2,
    anchor="Method	Backbone	CDFv1	CDFv2	Fsh	DFD	DFDC	DFDCP	UADFV",
    sweep=FFPP_BASELINE_SWEEP,
    notes=(
        "The table's numbers are used where the text disagrees: the text gives UADFV 95.27 for "
        "EfficientB4 (table 95.37) and 95.18 for DFMoE (table 95.58).",
        "Fsh = FaceShifter fakes of the FF++ c23 test split with its real test videos.",
    ),
)

# --------------------------------------------------------------------------- GM-DF

_GMDF_T1_SETS = metric_columns({"CDF-v1": "celebdf_v1", "CDF-v2": "celebdf_v2", "DFDC": "dfdc", "DFDCP": "dfdcp", "DFD": "dfd"})
_GMDF_T1 = (*_GMDF_T1_SETS, Column("avg", "Avg.", mean_of=tuple(c.key for c in _GMDF_T1_SETS)))
_GMDF_T1_KEYS = [c.key for c in _GMDF_T1]
GMDF_TABLE1 = PaperTable(
    name="gmdf_table1",
    paper="gmdf",
    number="Table 1",
    title="Cross-dataset frame-level AUC, trained on FF++",
    columns=_GMDF_T1,
    rows=(
        Row("xception", "Xception", _ffpp_baseline("xception"), values(_GMDF_T1_KEYS, (0.779, 0.737, 0.708, 0.737, 0.816, 0.755)), sweep=FFPP_BASELINE_SWEEP),
        Row("efficientnet_b4", "EfficientNet-B4", _ffpp_baseline("efficientnet_b4"), values(_GMDF_T1_KEYS, (0.791, 0.749, 0.696, 0.728, 0.815, 0.756)), sweep=FFPP_BASELINE_SWEEP),
        Row("gmdf", "GM-DF (ours)", {"experiment": "gmdf_ffpp"}, values(_GMDF_T1_KEYS, (0.893, 0.892, 0.847, 0.882, 0.928, 0.882))),
    ),
    unit="fraction",
    decimals=3,
    anchor="Table 1: Cross-dataset evaluation results (Frame-level AUC)",
    sweep=FFPP_BASELINE_SWEEP,
    notes=("Avg. is the mean of the five test sets (the paper's Avg. agrees with that to 1e-3).",),
)

_GID_GROUPS = {
    "GID-DF (C23)": {"gid_target": "Deepfakes", "ffpp_quality": "c23"},
    "GID-DF (C40)": {"gid_target": "Deepfakes", "ffpp_quality": "c40"},
    "GID-F2F (C23)": {"gid_target": "Face2Face", "ffpp_quality": "c23"},
    "GID-F2F (C40)": {"gid_target": "Face2Face", "ffpp_quality": "c40"},
}
_GMDF_T2 = tuple(
    Column(f"{match['gid_target']}_{match['ffpp_quality']}_{metric}", label, Measure(metric, ("gid",)), group=group, match=match)
    for group, match in _GID_GROUPS.items()
    for label, metric in (("ACC(%)", "acc"), ("AUC(%)", "auc"))
)
_GMDF_T2_KEYS = [c.key for c in _GMDF_T2]
GMDF_TABLE2 = PaperTable(
    name="gmdf_table2",
    paper="gmdf",
    number="Table 2",
    title="Cross-manipulation (GID) ACC and AUC (%): train on three FF++ methods, test on the fourth",
    columns=_GMDF_T2,
    rows=(
        Row("efficientnet_b4", "EfficientNet-B4", {"experiment": "baseline_ffpp", "detector": "efficientnet_b4"},
            values(_GMDF_T2_KEYS, (82.40, 91.11, 67.60, 75.30, 63.32, 80.10, 61.41, 67.40)), sweep="gmdf_gid_baselines"),
        Row("gmdf", "GM-DF (ours)", None, values(_GMDF_T2_KEYS, (92.52, 96.79, 80.03, 87.62, 73.18, 87.92, 71.41, 76.94)),
            note="wire to experiment=gmdf_gid once its held-out-method and quality knobs exist"),
    ),
    unit="percent",
    decimals=2,
    anchor="Table 2: Cross-Manipulation Evaluation",
    sweep="gmdf_gid_baselines",
    notes=(
        "GID-X: trained on the three other FF++ methods (FaceShifter excluded), tested on the real "
        "test videos and X's fakes (test set 'gid'); C23 / C40 = FF++ quality.",
        "ACC at the fixed threshold 0.5 (metric 'acc'; the paper does not give its threshold).",
        "The paper's 'EfficientNet' row is run as EfficientNet-B4.",
    ),
)

_GMDF_T3 = metric_columns({"CDF-v2": "celebdf_v2", "DFDC": "dfdc", "DFD": "dfd"}, level="video")
_GMDF_T3_KEYS = [c.key for c in _GMDF_T3]
_VANILLA_CLIP = values(_GMDF_T3_KEYS, (0.777, 0.742, 0.834))
GMDF_TABLE3 = PaperTable(
    name="gmdf_table3",
    paper="gmdf",
    number="Table 3",
    title="Cross-dataset video-level AUC of CLIP-based methods, trained on FF++",
    columns=_GMDF_T3,
    rows=(
        Row("clip_linear_probe", "CLIP (linear probe)", _ffpp_baseline("clip_linear_probe"), _VANILLA_CLIP, sweep=FFPP_BASELINE_SWEEP,
            note="paper: Vanilla CLIP"),
        Row("clip_finetune", "CLIP (fine-tune)", _ffpp_baseline("clip_finetune"), _VANILLA_CLIP, sweep=FFPP_BASELINE_SWEEP,
            note="paper: Vanilla CLIP"),
        Row("gmdf", "GM-DF (ours)", {"experiment": "gmdf_ffpp"}, values(_GMDF_T3_KEYS, (0.948, 0.841, 0.963))),
    ),
    unit="fraction",
    decimals=3,
    anchor="Table 3: Cross-dataset evaluation results (Video-level AUC) with CLIP based method.",
    sweep=FFPP_BASELINE_SWEEP,
    notes=("The paper's single 'Vanilla CLIP' row is compared with both CLIP baselines (linear probe and fine-tune).",),
)

# GM-DF Table 4: each column group is one three-domain training; M_EER is the maximum EER over
# the held-out domain and DFDC (not the in-domain sets), AUC their mean.
_GMDF_T4_GROUPS = {
    "FF++ & Celeb-DF & DFF": ("multidomain_leave_wdf", "wilddeepfake"),
    "FF++ & Celeb-DF & WDF": ("multidomain_leave_diff", "diff"),
    "FF++ & DFF & WDF": ("multidomain_leave_celebdf", "celebdf"),
    "Celeb-DF & DFF & WDF": ("multidomain_leave_ffpp", "ffpp"),
}
_GMDF_T4 = tuple(
    Column(f"{protocol}_{key}", label, Measure(metric, (held_out, "dfdc"), reduce=reduce), group=group,
           match={"protocol.name": protocol})
    for group, (protocol, held_out) in _GMDF_T4_GROUPS.items()
    for key, label, metric, reduce in (("meer", "M_EER(%)", "eer", "max"), ("auc", "AUC(%)", "auc", "mean"))
)
_GMDF_T4_KEYS = [c.key for c in _GMDF_T4]
GMDF_TABLE4 = PaperTable(
    name="gmdf_table4",
    paper="gmdf",
    number="Table 4",
    title="Multi-domain benchmark: M_EER and AUC (%) on the held-out domain and DFDC",
    columns=_GMDF_T4,
    rows=(
        Row("xception", "Xception", {"detector": "xception", "experiment": "baseline_multidomain"},
            values(_GMDF_T4_KEYS, (33.45, 71.09, 37.68, 66.64, 35.56, 76.88, 33.30, 65.40)), sweep="gmdf_multidomain_baselines"),
        Row("gmdf", "GM-DF (ours)", {"experiment": "gmdf_multidomain"},
            values(_GMDF_T4_KEYS, (30.13, 74.33, 32.81, 72.37, 32.90, 80.19, 28.36, 73.73))),
    ),
    unit="percent",
    decimals=2,
    anchor="Table 4: The results on the Multi-Domain Deepfake Detection Benchmarks",
    sweep="gmdf_multidomain_baselines",
    notes=(
        "Columns are matched by protocol.name; the four protocols are named like "
        "conf/protocol/multidomain_leave_wdf.yaml (conf/sweep/gmdf_multidomain_baselines.yaml defines all four).",
        "M_EER = max EER over {held-out domain, DFDC}; AUC = their mean AUC (the paper says neither "
        "which sets nor how AUC is combined; this is our reading of its protocol text).",
        "DFF = DiFF; frame level.",
    ),
)

# --------------------------------------------------------------------------- MoA-CLIP

_MOA_T1_SETS = metric_columns({"CDFv1": "celebdf_v1", "CDFv2": "celebdf_v2", "DFDC": "dfdc", "DFDCP": "dfdcp", "DFD": "dfd"})
_MOA_T1 = (*_MOA_T1_SETS, Column("avg", "Avg", mean_of=tuple(c.key for c in _MOA_T1_SETS)))
_MOA_T1_KEYS = [c.key for c in _MOA_T1]
_MOA_CLIP_T1 = values(_MOA_T1_KEYS, (0.711, 0.727, 0.728, 0.726, 0.824, 0.744))
MOA_TABLE1 = PaperTable(
    name="moa_table1",
    paper="moa_clip",
    number="Table 1",
    title="Cross-domain AUC, trained on FF++ (all four methods)",
    columns=_MOA_T1,
    rows=(
        Row("clip_linear_probe", "CLIP (linear probe)", _ffpp_baseline("clip_linear_probe"), _MOA_CLIP_T1, sweep=FFPP_BASELINE_SWEEP, note="paper: CLIP"),
        Row("clip_finetune", "CLIP (fine-tune)", _ffpp_baseline("clip_finetune"), _MOA_CLIP_T1, sweep=FFPP_BASELINE_SWEEP, note="paper: CLIP"),
        Row("moa_clip", "MoA-CLIP (ours)", {"experiment": "moa_ffpp"}, values(_MOA_T1_KEYS, (0.906, 0.875, 0.783, 0.872, 0.908, 0.868))),
    ),
    unit="fraction",
    decimals=3,
    anchor="Table 1.** Performance of cross-domain detection. All methods are trained on FF++",
    sweep=FFPP_BASELINE_SWEEP,
    notes=("The paper's 'CLIP' row is compared with both CLIP baselines.", "Frame level (not stated)."),
)

_DIFF_SUBSETS = {"DiFF-T2I": "T2I", "DiFF-I2I": "I2I", "DiFF-FS": "FS", "DiFF-FE": "FE"}
_MOA_T2_SETS = metric_columns({name: f"diff_{subset.lower()}" for name, subset in _DIFF_SUBSETS.items()})
_MOA_T2 = (*_MOA_T2_SETS, Column("avg", "Avg", mean_of=tuple(c.key for c in _MOA_T2_SETS)))
_MOA_T2_KEYS = [c.key for c in _MOA_T2]
_MOA_T2_PAPER = {
    # train subset: (CLIP, Xception, MoA-CLIP), each T2I, I2I, FS, FE, Avg
    "T2I": ((0.928, 0.769, 0.637, 0.687, 0.755), (0.963, 0.863, 0.744, 0.722, 0.828), (0.976, 0.897, 0.773, 0.753, 0.855)),
    "I2I": ((0.726, 0.902, 0.612, 0.722, 0.741), (0.769, 0.912, 0.727, 0.750, 0.789), (0.814, 0.968, 0.786, 0.792, 0.845)),
    "FS": ((0.577, 0.726, 0.902, 0.594, 0.690), (0.605, 0.771, 0.929, 0.585, 0.722), (0.768, 0.844, 0.941, 0.669, 0.800)),
    "FE": ((0.570, 0.599, 0.680, 0.915, 0.691), (0.582, 0.595, 0.729, 0.933, 0.715), (0.765, 0.691, 0.738, 0.977, 0.798)),
}


def _moa_t2_rows() -> tuple[Row, ...]:
    rows = []
    for subset, (clip, xception, ours) in _MOA_T2_PAPER.items():
        protocol = f"diff_train_{subset.lower()}"
        for detector, label in (("clip_linear_probe", "CLIP (linear probe)"), ("clip_finetune", "CLIP (fine-tune)")):
            rows.append(Row(f"{subset}_{detector}", f"DiFF-{subset} / {label}", baseline(detector, protocol),
                            values(_MOA_T2_KEYS, clip), sweep="moa_diff_baselines", note="paper: CLIP"))
        rows.append(Row(f"{subset}_xception", f"DiFF-{subset} / Xception", baseline("xception", protocol),
                        values(_MOA_T2_KEYS, xception), sweep="moa_diff_baselines"))
        rows.append(Row(f"{subset}_moa_clip", f"DiFF-{subset} / MoA-CLIP (ours)", {"experiment": "moa_diff", "protocol.name": protocol},
                        values(_MOA_T2_KEYS, ours)))
    return tuple(rows)


MOA_TABLE2 = PaperTable(
    name="moa_table2",
    paper="moa_clip",
    number="Table 2",
    title="Cross-domain AUC on DiFF: train on one subset, test on all four",
    columns=_MOA_T2,
    rows=_moa_t2_rows(),
    unit="fraction",
    decimals=3,
    anchor="Table 2.** Performance of cross-domain detection on DiFF (AUC)",
    sweep="moa_diff_baselines",
    notes=(
        "Rows are 'train subset / method' (protocols diff_train_<subset>); test sets diff_<subset> hold "
        "that subset's fakes and the real test images.",
        "The caption says AUC (%) but the numbers are fractions; printed as fractions.",
    ),
)

_MOA_T6_SETS = metric_columns({"FF++": "ffpp", "CDF-v2": "celebdf_v2", "DFD": "dfd"})
_MOA_T6 = (*_MOA_T6_SETS, Column("avg", "Avg", mean_of=tuple(c.key for c in _MOA_T6_SETS)))
_MOA_T6_KEYS = [c.key for c in _MOA_T6]
_MOA_T6_PAPER = {
    # protocol: (label, N, CLIP, MoA-CLIP), each FF++, CDF-v2, DFD, Avg
    "ffpp_moa_df_fs": ("DF+FS", 2, (0.899, 0.824, 0.783, 0.835), (0.907, 0.828, 0.805, 0.847)),
    "ffpp_moa_df_fs_nt": ("DF+FS+NT", 3, (0.960, 0.821, 0.796, 0.859), (0.974, 0.843, 0.821, 0.879)),
    "ffpp_cross_dataset_moa": ("FF++(all)", 4, (0.982, 0.727, 0.824, 0.844), (0.995, 0.875, 0.908, 0.926)),
}


def _moa_t6_rows() -> tuple[Row, ...]:
    rows = []
    for protocol, (label, n, clip, ours) in _MOA_T6_PAPER.items():
        for detector, name in (("clip_linear_probe", "CLIP (linear probe)"), ("clip_finetune", "CLIP (fine-tune)")):
            rows.append(Row(f"n{n}_{detector}", f"N={n} {label} / {name}", baseline(detector, protocol),
                            values(_MOA_T6_KEYS, clip), sweep="moa_ffpp_subsets_baselines", note="paper: CLIP"))
        rows.append(Row(f"n{n}_moa_clip", f"N={n} {label} / MoA-CLIP (ours)", {"experiment": "moa_ffpp", "protocol.name": protocol},
                        values(_MOA_T6_KEYS, ours)))
    return tuple(rows)


MOA_TABLE6 = PaperTable(
    name="moa_table6",
    paper="moa_clip",
    number="Table 6",
    title="Number of adapters N = FF++ methods trained on (AUC)",
    columns=_MOA_T6,
    rows=_moa_t6_rows(),
    unit="fraction",
    decimals=3,
    anchor="Table 6.** Ablation studies on the effect of the number of adapters.",
    sweep="moa_ffpp_subsets_baselines",
    notes=(
        "Rows: protocols ffpp_moa_df_fs (N=2), ffpp_moa_df_fs_nt (N=3), ffpp_cross_dataset_moa (N=4); "
        "the FF++ column is the whole FF++ c23 test split (four methods) whatever was trained on.",
    ),
)

# --------------------------------------------------------------------------- DTN

_DTN_SETS = {"FF++": "ffpp", "Celeb-DF": "celebdf_v2", "DFDC": "dfdc", "DF-1.0": "deeperforensics", "DFD": "dfd"}
_ACC_AUC = {"ACC": "acc", "AUC": "auc"}
_DTN_T1 = paired_columns(_DTN_SETS, _ACC_AUC)
_DTN_T1_KEYS = [c.key for c in _DTN_T1]
DTN_TABLE1 = PaperTable(
    name="dtn_table1",
    paper="dtn",
    number="Table 1",
    title="Within- and cross-dataset ACC / AUC (%), trained on FF++ (HQ)",
    columns=_DTN_T1,
    rows=(
        Row("xception", "Xception", _ffpp_baseline("xception"),
            values(_DTN_T1_KEYS, (95.73, 96.30, None, None, None, None, None, None, None, None)), sweep=FFPP_BASELINE_SWEEP),
        Row("dtn", "DTN (ours)", None, values(_DTN_T1_KEYS, (97.13, 99.70, 70.68, 75.32, 72.13, 80.01, 71.24, 78.77, 87.32, 97.60)),
            note="wire to experiment=dtn_ffpp (student 3 of the self-distillation chain)"),
    ),
    unit="percent",
    decimals=2,
    anchor="CViT†[1] | 90.47 | 96.69",
    sweep=FFPP_BASELINE_SWEEP,
    notes=(
        "The extracted text has no table captions; the table is identified by the text's "
        "'As Table 1 displays' and its header (FF++, Celeb-DF, DFDC, DF-1.0, DFD).",
        "DTN's Celeb-DF ACC is printed 70.68 here but 66.68 in Tables 4-10; transcribed as printed.",
        "The ResNet34 row (- | 98.30 | 86.40 | - | 72.10) is misaligned in the extracted text and is left out.",
        "Celeb-DF = Celeb-DF v2; DF-1.0 = DeeperForensics-1.0; ACC at threshold 0.5.",
    ),
)

_FFPP_METHODS = {"DF": "deepfakes", "F2F": "face2face", "FS": "faceswap", "NT": "neuraltextures"}
_DTN_T2 = metric_columns({"DF": "ffpp_df", "F2F": "ffpp_f2f", "FS": "ffpp_fs", "NT": "ffpp_nt"})
_DTN_T2_KEYS = [c.key for c in _DTN_T2]
_DTN_T2_PAPER = {
    # train method: (Xception, DTN), each tested on DF, F2F, FS, NT
    "DF": ((99.38, 75.05, 49.13, 80.39), (100, 97.23, 74.26, 98.53)),
    "F2F": ((87.56, 99.53, 65.23, 65.90), (100, 99.82, 93.63, 97.03)),
    "FS": ((70.12, 61.7, 99.36, 68.71), (99.15, 99.74, 98.21, 92.45)),
    "NT": ((93.09, 84.82, 47.98, 99.50), (99.71, 97.95, 91.25, 99.81)),
}


def _dtn_t2_rows() -> tuple[Row, ...]:
    rows = []
    for short, (xception, dtn) in _DTN_T2_PAPER.items():
        protocol = f"ffpp_cross_manip_{_FFPP_METHODS[short]}"
        rows.append(Row(f"{short}_xception", f"{short} / Xception", baseline("xception", protocol),
                        values(_DTN_T2_KEYS, xception), sweep="dtn_cross_manipulation_baselines"))
        rows.append(Row(f"{short}_dtn", f"{short} / DTN (ours)", {"experiment": "dtn_cross_manipulation", "protocol.name": protocol},
                        values(_DTN_T2_KEYS, dtn)))
    return tuple(rows)


DTN_TABLE2 = PaperTable(
    name="dtn_table2",
    paper="dtn",
    number="Table 2",
    title="Cross-manipulation AUC (%): train on one FF++ method, test on each",
    columns=_DTN_T2,
    rows=_dtn_t2_rows(),
    unit="percent",
    decimals=2,
    anchor="Training Set | Model | Testing Set (AUC)",
    sweep="dtn_cross_manipulation_baselines",
    notes=(
        "Rows are 'training method / model' (protocols ffpp_cross_manip_<method>); test sets hold one "
        "method's fakes and the real FF++ test videos.",
        "The DTN rows are matched on experiment=dtn_cross_manipulation (one DTN generation, not the distilled chain).",
    ),
)

_DTN_T8 = paired_columns({k: v for k, v in _DTN_SETS.items() if k != "DFD"}, _ACC_AUC)
_DTN_T8_KEYS = [c.key for c in _DTN_T8]
DTN_TABLE8 = PaperTable(
    name="dtn_table8",
    paper="dtn",
    number="Table 8",
    title="MAS in other transformers: ACC / AUC (%), trained on FF++",
    columns=_DTN_T8,
    rows=(
        Row("vit", "ViT", _ffpp_baseline("vit_b16"), values(_DTN_T8_KEYS, (62.44, 67.07, 62.28, 59.75, 56.18, 58.31, 58.05, 61.27)),
            sweep=FFPP_BASELINE_SWEEP, note="paper params 85.620 M, 16.879 GFLOPs"),
        Row("vit_mas", "ViT w/ MAS", baseline("vit_b16_mas", "ffpp_cross_dataset_full"),
            values(_DTN_T8_KEYS, (63.45, 67.97, 64.40, 61.65, 56.66, 58.86, 59.04, 62.36)), sweep=FFPP_BASELINE_SWEEP,
            note="paper params 85.620 M, 16.879 GFLOPs"),
        Row("dtn", "Ours w/ MAS (DTN)", None, values(_DTN_T8_KEYS, (97.13, 99.70, 66.68, 75.32, 72.13, 80.01, 71.24, 78.77)),
            note="wire to experiment=dtn_ffpp; paper params 29.912 M, 9.799 GFLOPs"),
    ),
    unit="percent",
    decimals=2,
    anchor="ViT w/ Re-att | 62.84",
    sweep=FFPP_BASELINE_SWEEP,
    notes=(
        "Identified by the text's 'As Table 8 shows' (no captions in the extracted text).",
        "Only the ViT rows the suite builds are registered (CViT, EfficientViT, CrossEfficientViT and "
        "Re-attention are not in the suite); the Params / FLOPs columns are kept in the row notes.",
        "ViT = ViT-B/16 baseline (detector vit_b16); ViT w/ MAS = detector vit_b16_mas (DTN's MAS in ViT-B/16).",
    ),
)

# --------------------------------------------------------------------------- SUEDE

_UNIATTACK_SETS = ("uniattack_p1", "uniattack_p2_1", "uniattack_p2_2")
_SUEDE_T1 = tuple(
    Column(metric, label, Measure(metric, _UNIATTACK_SETS, reduce="any"))
    for metric, label in (("acer", "ACER(%)"), ("acc", "ACC(%)"), ("auc", "AUC(%)"), ("eer", "EER(%)"))
)
_SUEDE_T1_KEYS = [c.key for c in _SUEDE_T1]
_SUEDE_T1_PAPER = {
    # detector: (label, P1 ACER, ACC, AUC, EER), (P2 means), (P2 stds)
    "resnet50": ("ResNet-50", (1.35, 98.83, 99.79, 1.18), (34.60, 53.69, 87.89, 19.48), (5.31, 6.39, 6.11, 9.10)),
    "vit_b16": ("ViT-B/16", (5.92, 92.29, 97.00, 9.14), (33.69, 52.43, 83.77, 25.94), (9.33, 25.88, 2.35, 0.88)),
    "clip_finetune": ("CLIP (fine-tune)", (1.17, 99.13, 99.66, 1.17), (18.20, 54.94, 84.09, 18.05), (13.72, 20.38, 14.96, 13.86)),
    "suede": ("SUEDE (ours)", (0.36, 99.50, 99.70, 0.36), (11.99, 88.99, 91.49, 11.89), (7.79, 6.96, 4.99, 7.88)),
}
_P2_PROTOCOLS = ("uniattack_p2_1", "uniattack_p2_2")


def _suede_t1_rows() -> tuple[Row, ...]:
    rows = []
    for key, (label, p1, _, _) in _SUEDE_T1_PAPER.items():
        match = {"experiment": "suede_uniattack_p1"} if key == "suede" else baseline(key, "uniattack_p1")
        rows.append(Row(f"p1_{key}", f"P1 / {label}", match, values(_SUEDE_T1_KEYS, p1),
                        sweep=None if key == "suede" else "suede_uniattack_baselines"))
    for key, (label, _, p2_mean, p2_std) in _SUEDE_T1_PAPER.items():
        if key == "suede":
            match = {"experiment": "suede_uniattack_p2", "protocol.name": _P2_PROTOCOLS}
        else:
            match = {**baseline(key, "uniattack_p2_1"), "protocol.name": _P2_PROTOCOLS}
        rows.append(Row(f"p2_{key}", f"P2 / {label}", match, values(_SUEDE_T1_KEYS, p2_mean), values(_SUEDE_T1_KEYS, p2_std),
                        sweep=None if key == "suede" else "suede_uniattack_baselines", pool=("protocol.name",)))
    return tuple(rows)


SUEDE_TABLE1 = PaperTable(
    name="suede_table1",
    paper="suede",
    number="Table I",
    title="UniAttackData protocols 1 and 2 (P2: mean +- std over P2.1 and P2.2)",
    columns=_SUEDE_T1,
    rows=_suede_t1_rows(),
    unit="percent",
    decimals=2,
    anchor="Prot. | Method | ACER(%) | ACC(%) | AUC(%) | EER(%) |",
    sweep="suede_uniattack_baselines",
    number_pattern=r"\d+\.\d{2}",
    notes=(
        "The extracted P2 cells run mean and std together ('34.605.31'); every value has two "
        "decimals, so they split as 34.60 +- 5.31 (the check uses that two-decimal pattern).",
        "P2 rows pool the protocols uniattack_p2_1 and uniattack_p2_2: seeds are averaged within each, "
        "then mean +- std (ddof 1) is taken over the two, as the paper reports P2.",
        "ACER and ACC at the fixed threshold 0.5; the paper's CLIP is compared with the fine-tuned CLIP baseline.",
    ),
)

_SUEDE_T2 = (
    Column("auc", "AUC(%)", Measure("auc", ("jfsfdb",))),
    Column("eer", "EER(%)", Measure("eer", ("jfsfdb",))),
    Column("tpr_fpr10", "TPR(%)@FPR=10%", Measure("tpr@fpr=0.1", ("jfsfdb",))),
    Column("tpr_fpr1", "TPR(%)@FPR=1%", Measure("tpr@fpr=0.01", ("jfsfdb",))),
)
_SUEDE_T2_KEYS = [c.key for c in _SUEDE_T2]
SUEDE_TABLE2 = PaperTable(
    name="suede_table2",
    paper="suede",
    number="Table II",
    title="JFSFDB joint training: AUC, EER, TPR@FPR",
    columns=_SUEDE_T2,
    rows=(
        Row("resnet50", "ResNet-50", baseline("resnet50", "jfsfdb_joint"), values(_SUEDE_T2_KEYS, (82.38, 24.62, 57.66, 21.72)),
            sweep="suede_jfsfdb_baselines"),
        Row("vit_b16", "ViT-B/16", baseline("vit_b16", "jfsfdb_joint"), values(_SUEDE_T2_KEYS, (82.70, 24.60, 61.67, 22.60)),
            sweep="suede_jfsfdb_baselines"),
        Row("xception", "Xception", baseline("xception", "jfsfdb_joint"), values(_SUEDE_T2_KEYS, (77.80, 27.62, 44.58, 16.99)),
            sweep="suede_jfsfdb_baselines"),
        Row("suede", "SUEDE (ours)", {"experiment": "suede_jfsfdb"}, values(_SUEDE_T2_KEYS, (87.02, 21.42, 62.29, 24.70))),
    ),
    unit="percent",
    decimals=2,
    anchor="Data. | Method | AUC(%) | EER(%) | TPR(%)@FPR=10% | TPR(%)@FPR=1% |",
    sweep="suede_jfsfdb_baselines",
    notes=("Protocol jfsfdb_joint (test set 'jfsfdb': the cross-domain lists, see conf/protocol/jfsfdb_joint.yaml).",),
)


TABLES: dict[str, PaperTable] = {
    table.name: table
    for table in (
        DFMOE_TABLE1,
        DFMOE_TABLE2,
        GMDF_TABLE1,
        GMDF_TABLE2,
        GMDF_TABLE3,
        GMDF_TABLE4,
        MOA_TABLE1,
        MOA_TABLE2,
        MOA_TABLE6,
        DTN_TABLE1,
        DTN_TABLE2,
        DTN_TABLE8,
        SUEDE_TABLE1,
        SUEDE_TABLE2,
    )
}
"""Every registered table by name (``<paper>_table<number>``)."""


def get_table(name: str) -> PaperTable:
    """The registered table ``name``; a KeyError lists the registered names."""
    if name not in TABLES:
        raise KeyError(f"no table {name!r} in sweeps/tables.py; registered: {sorted(TABLES)}")
    return TABLES[name]


def tables_for_sweep(sweep: str) -> list[PaperTable]:
    """The tables (some of) whose rows the sweep ``sweep`` (conf/sweep/<sweep>.yaml) fills."""
    return [t for t in TABLES.values() if t.sweep == sweep or any(r.sweep == sweep for r in t.rows)]


# --------------------------------------------------------------------------- checking transcriptions

PAPER_ROW_WINDOW = (-5, 45)
"""Lines around a table's anchor (before, after) where its rows must be found in the paper text."""


def paper_sequence(table: PaperTable, row: Row) -> list[float]:
    """The row's published numbers in the order the paper prints them (value, then its std)."""
    sequence: list[float] = []
    for column in table.columns:
        value = row.paper.get(column.key)
        if value is not None:
            sequence.append(float(value))
        if column.key in row.paper_std:
            sequence.append(float(row.paper_std[column.key]))
    return sequence


def check_transcription(table: PaperTable, paper_text: str) -> list[str]:
    """Problems with ``table``'s paper numbers against the paper's text (empty list = all found).

    Each row's numbers must appear, in order (other numbers may sit between them), on one line
    within :data:`PAPER_ROW_WINDOW` lines of the first line containing ``table.anchor``;
    numbers on a line are read with ``table.number_pattern``.
    """
    lines = paper_text.splitlines()
    anchors = [i for i, line in enumerate(lines) if table.anchor in line]
    if not anchors:
        return [f"{table.name}: anchor {table.anchor!r} not found in the {table.paper} paper text"]
    first, last = anchors[0] + PAPER_ROW_WINDOW[0], anchors[0] + PAPER_ROW_WINDOW[1]
    window = lines[max(0, first) : last + 1]
    pattern = re.compile(table.number_pattern)
    numbers_by_line = [[float(token) for token in pattern.findall(line)] for line in window]
    problems = []
    for row in table.rows:
        expected = paper_sequence(table, row)
        if not expected:
            problems.append(f"{table.name}, row {row.key}: no paper numbers")
        elif not any(_is_subsequence(expected, numbers) for numbers in numbers_by_line):
            problems.append(
                f"{table.name}, row {row.key}: numbers {expected} not found in order on one line within "
                f"{PAPER_ROW_WINDOW} lines of {table.anchor!r}"
            )
    return problems


def _is_subsequence(expected: list[float], numbers: list[float]) -> bool:
    position = 0
    for number in numbers:
        if position < len(expected) and abs(number - expected[position]) < 1e-9:
            position += 1
    return position == len(expected)


def main(argv: list[str] | None = None) -> int:
    """``python -m sweeps.tables [--check <papers dir>]``: list the tables; check transcriptions."""
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m sweeps.tables", description=main.__doc__)
    parser.add_argument("--check", type=Path, default=None, help="folder of <paper>.txt to check the numbers against")
    args = parser.parse_args(argv)
    problems: list[str] = []
    for table in TABLES.values():
        wired = sum(row.match is not None for row in table.rows)
        sweeps = sorted({s for s in (table.sweep, *(r.sweep for r in table.rows)) if s})
        print(f"{table.name:14s} {table.paper:8s} {table.number:9s} rows {wired}/{len(table.rows)} wired  "
              f"sweeps {', '.join(sweeps) or '-'}  | {table.title}")
        if args.check is not None:
            problems += check_transcription(table, (args.check / f"{table.paper}.txt").read_text(encoding="utf-8"))
    for problem in problems:
        print(f"MISMATCH {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
