"""Helpers the paper modules build tables with: column families, paper numbers in column order and the
match of an ablation row (its sweep plus its knob values, a named knob set read from the sweep's YAML)."""

from __future__ import annotations

from collections.abc import Mapping

from sweeps.tables.baselines import baseline
from sweeps.tables.knob_sets import expand_choices
from sweeps.tables.schema import Column, MatchValue, Measure, Row


def metric_columns(
    sets: Mapping[str, str], metric: str = "auc", level: str = "frame", label: str | None = None
) -> tuple[Column, ...]:
    """One column per test set: ``{column label: test set}``; the key is the test set name."""
    return tuple(
        Column(
            key=test_set,
            label=name if label is None else label,
            group="" if label is None else name,
            measure=Measure(metric, (test_set,), level),
        )
        for name, test_set in sets.items()
    )


def paired_columns(
    sets: Mapping[str, str], metrics: Mapping[str, str], level: str = "frame"
) -> tuple[Column, ...]:
    """Per test set (group), one column per metric (``{label: metric}``); key ``<set>_<metric>``."""
    return tuple(
        Column(
            key=f"{test_set}_{metric}", label=label, group=name, measure=Measure(metric, (test_set,), level)
        )
        for name, test_set in sets.items()
        for label, metric in metrics.items()
    )


def cost_columns(columns: Mapping[str, tuple[str, int]], group: str = "") -> tuple[Column, ...]:
    """Columns read from ``extra.cost`` of results.json: ``{label: (cost metric, decimals)}``."""
    return tuple(
        Column(
            key=metric, label=label, group=group, measure=Measure(metric, source="cost"), decimals=decimals
        )
        for label, (metric, decimals) in columns.items()
    )


def robustness_columns(
    test_set: str,
    corruptions: Mapping[str, str],
    metric: str = "auc",
    level: str = "frame",
    severities: range = range(1, 6),
) -> tuple[Column, ...]:
    """A clean column, then per corruption (``{label: corruption}``) one column per severity;
    keys ``clean`` and ``<corruption>_<severity>``, read from robustness.json."""
    first = next(iter(corruptions.values()))
    clean = Column(
        "clean",
        "clean",
        Measure(metric, (test_set,), level, source="robustness", corruption=first, severity=0),
    )
    return (
        clean,
        *(
            Column(
                f"{corruption}_{severity}",
                str(severity),
                group=label,
                measure=Measure(
                    metric, (test_set,), level, source="robustness", corruption=corruption, severity=severity
                ),
            )
            for label, corruption in corruptions.items()
            for severity in severities
        ),
    )


def values(
    keys: tuple[str, ...] | list[str], numbers: tuple[float | None, ...] | list[float | None]
) -> dict[str, float | None]:
    """Paper numbers by column key, in column order (lengths must agree)."""
    if len(keys) != len(numbers):
        raise ValueError(f"{len(numbers)} paper numbers for {len(keys)} columns {list(keys)}")
    return dict(zip(keys, numbers))


def ablation(sweep: str, knobs: Mapping[str, MatchValue] | None = None) -> dict[str, MatchValue]:
    """The match of an ablation row: the jobs of its sweep (``sweep_name``) with the row's knob values
    (dotted config keys such as ``detector.top_k``). Pinning the sweep keeps a row from averaging in
    jobs of other ablations that happen to share its knob values (their other knobs differ).

    A knob may be one of the sweep's named choices (``dfmoe_loss_set: B``): it stands for the knob
    values that choice sets in ``conf/sweep/<sweep>.yaml`` (:func:`sweeps.tables.knob_sets.expand_choices`),
    so those values are written once, in the YAML."""
    return {"sweep_name": sweep, **expand_choices(sweep, knobs or {})}


def ablation_rows(
    sweep: str, columns: tuple[Column, ...], rows: Mapping[str, tuple[str, Mapping[str, MatchValue], tuple]]
) -> tuple[Row, ...]:
    """Rows ``{key: (label, knob values or the sweep's choice, paper numbers in column order)}`` of one
    sweep (the knobs as :func:`ablation` takes them)."""
    keys = [c.key for c in columns]
    return tuple(
        Row(key, label, ablation(sweep, knobs), values(keys, numbers), sweep=sweep)
        for key, (label, knobs, numbers) in rows.items()
    )


def baseline_rows(
    sweep: str, protocol: str, columns: tuple[Column, ...], rows: Mapping[str, tuple[str, tuple]]
) -> tuple[Row, ...]:
    """Rows ``{detector: (label, paper numbers in column order)}`` of plain baselines that ``sweep`` trains
    on ``protocol`` (the match of :func:`sweeps.tables.baselines.baseline`), keyed by the detector's name."""
    keys = [c.key for c in columns]
    return tuple(
        Row(detector, label, baseline(detector, protocol), values(keys, numbers), sweep=sweep)
        for detector, (label, numbers) in rows.items()
    )
