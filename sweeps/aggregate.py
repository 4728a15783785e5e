"""Print a paper table from the job directories of sweeps: measured beside published numbers.

``python -m sweeps.aggregate <sweep dir> [<more dirs>] [--table <name>] [--format markdown|csv]``

Reads every job directory under the given paths (a directory holding ``results.json``,
``failed.json`` or ``.hydra/``): its resolved config (``results.json``, else ``failed.json``,
else ``.hydra/config.yaml``), its config-group choices (``.hydra/hydra.yaml``) and, where
present, ``robustness.json``. The generations ``gen<g>/`` of a self-distillation chain are jobs
of their own (match key ``self_distill.generation``); generations a failed or unfinished chain
never reached are reported with the chain's status. Each cell of the table
(``sweeps/tables/``) collects the jobs that match it; replicates (seeds) give
mean +- std (sample std, ddof = 1). Cells without a value are marked, never dropped:

============  ================================================================================
FAILED        every matching job failed (``failed.json``, written by fail-soft jobs)
no result     jobs exist but wrote neither results.json nor failed.json (killed, crashed
              hard, or still running; see ``<sweep dir>/.submitit/`` logs)
not run       no job in the given directories matches the cell
no <set>      jobs finished but their results hold no test set ``<set>`` (or no ``cost``:
              run with evaluate_cost=true; or no ``robustness``: robustness.json missing)
not wired     the row is not yet connected to a config (``Row.match is None``)
============  ================================================================================

Writes ``<first dir>/tables/<table>.md``, ``<table>.csv`` (the paper layout: mean, std, paper
and status per column) and ``<table>_cells.csv`` (one line per cell, with n and job dirs);
``--wandb`` also logs the cells as a W&B table (offline unless an API key is configured).
Without ``--table`` every table that the sweep's ``sweep_name`` fills is printed.

Any multirun, paper table or not, also gets a summary: mean ± std of the headline metrics per
combination of the knobs it varied (``sweeps/summary.py``, written to ``<first dir>/summary/``).
Cells measured at ``scale=demo`` (synthetic data, tiny models) are marked ``(demo)`` next to the
paper's numbers.
"""

from __future__ import annotations

import argparse
import io
import logging
import math
import sys
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.failures import FAILED_FILE_NAME
from evaluation.results import RESULTS_FILE_NAME, atomic_write_text
from sweeps.jobs import (  # noqa: F401  (re-exported: the aggregator's API)
    _MISSING,
    HYDRA_DIR,
    JOB_CHAIN,
    JOB_DONE,
    JOB_FAILED,
    JOB_NO_RESULT,
    ROBUSTNESS_FILE_NAME,
    SELF_DISTILL_FILE_NAME,
    AggregateError,
    Job,
    canonical,
    discover_jobs,
    load_job,
)
from sweeps.tables import (
    Column,
    MatchValue,
    Measure,
    PaperTable,
    Row,
    get_table,
    tables_for_sweep,
)

log = logging.getLogger(__name__)

STATUS_OK = "ok"
STATUS_PARTIAL = "partial"
STATUS_FAILED = "failed"
STATUS_NO_RESULT = "no_result"
STATUS_NOT_RUN = "not_run"
STATUS_NO_SET = "no_set"
STATUS_NOT_WIRED = "not_wired"

# --------------------------------------------------------------------------- matching


def _allowed(value: MatchValue) -> set[str]:
    return {canonical(v) for v in value} if isinstance(value, tuple) else {canonical(value)}


def matches(job: Job, match: Mapping[str, MatchValue]) -> bool:
    """Whether every key of ``match`` has (one of) the wanted value(s) in ``job``."""
    for key, wanted in match.items():
        value = job.value(key)
        if value is _MISSING or canonical(value) not in _allowed(wanted):
            return False
    return True


def cell_match(table: PaperTable, row: Row, column: Column) -> dict[str, MatchValue]:
    return {**table.match, **(row.match or {}), **column.match}


# --------------------------------------------------------------------------- cells


@dataclass
class Cell:
    """One table cell in the paper's unit: measured mean +- std over ``n`` units, paper number."""

    row: str
    column: str
    status: str
    mean: float | None = None
    std: float | None = None
    n: int = 0
    paper: float | None = None
    paper_std: float | None = None
    message: str = ""
    jobs: list[str] = field(default_factory=list)
    units: dict[tuple, float] = field(default_factory=dict)
    scales: list[str] = field(default_factory=list)  # scale_name of the jobs measured (demo | paper)

    @property
    def demo(self) -> bool:
        return "demo" in self.scales


def measure_value(results: Mapping, measure: Measure, robustness: Mapping | None = None) -> float | None:
    """The measure's value in one results dict (a fraction for rates; cost values as measured) or,
    for robustness measures, in the job's robustness report; None when what it reads is absent."""
    if measure.source == "cost":
        value = ((results.get("extra") or {}).get("cost") or {}).get(measure.metric)
        return None if value is None else float(value)
    if measure.source == "robustness":
        tests = {}
        for name, corruptions in ((robustness or {}).get("metrics") or {}).items():
            point = ((corruptions or {}).get(measure.corruption) or {}).get(str(measure.severity))
            if point is not None:
                tests[name] = point
    else:
        tests = results["tests"]
    if measure.reduce == "any":
        present = [name for name in measure.test_sets if name in tests]
        if len(present) > 1:
            raise AggregateError(
                f"measure {measure}: the job has several of its alternative test sets {present}"
            )
        return _number(tests[present[0]][measure.level][measure.metric]) if present else None
    if any(name not in tests for name in measure.test_sets):
        return None
    numbers = np.array([_number(tests[name][measure.level][measure.metric]) for name in measure.test_sets])
    if measure.reduce == "single":
        return float(numbers[0])
    defined = numbers[~np.isnan(numbers)]
    if defined.size == 0:
        return math.nan
    # Undefined values (one-class sets) are left out, as evaluation.metrics.max_eer does.
    return float(defined.max() if measure.reduce == "max" else defined.mean())


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)  # null in JSON = an undefined metric


def _absent(job: Job, measure: Measure) -> list[str]:
    """What a done job lacks for the measure, as the cell's message words."""
    if measure.source == "cost":
        return ["cost (run with evaluate_cost=true)"]
    if measure.source == "robustness":
        if job.robustness is None:
            return [f"{ROBUSTNESS_FILE_NAME}"]
        return [f"robustness {name}/{measure.corruption}/{measure.severity}" for name in measure.test_sets]
    return [name for name in measure.test_sets if name not in job.results["tests"]]


def summarise(units: Mapping[tuple, float], pooled: int) -> tuple[float, float | None, int]:
    """Mean, std (ddof 1; None for one unit) and count over units keyed (pooled values..., seed).

    With pooled keys, seeds are averaged within each pooled value first, then mean +- std is
    taken across the pooled values (SUEDE's P2 over its sub-protocols).
    """
    if pooled:
        groups: dict[tuple, list[float]] = defaultdict(list)
        for key, value in units.items():
            groups[key[:pooled]].append(value)
        numbers = np.array([float(np.mean(v)) for v in groups.values()])
    else:
        numbers = np.array(list(units.values()), dtype=np.float64)
    mean = float(np.mean(numbers))
    std = float(np.std(numbers, ddof=1)) if len(numbers) > 1 else None
    return mean, std, len(numbers)


def compute_cell(table: PaperTable, row: Row, column: Column, jobs: Sequence[Job]) -> Cell:
    """One measured cell (columns with ``mean_of`` are filled by :func:`compute_table`)."""
    paper = row.paper.get(column.key)
    cell = Cell(row.key, column.key, STATUS_NOT_RUN, paper=paper, paper_std=row.paper_std.get(column.key))
    if row.match is None:
        cell.status, cell.message = STATUS_NOT_WIRED, row.note
        return cell
    match = cell_match(table, row, column)
    pool_keys = list(row.pool)
    matched = [job for job in jobs if matches(job, match)]
    cell.jobs = [str(job.directory) for job in matched]
    if not matched:
        return cell
    done = [job for job in matched if job.status == JOB_DONE]
    failed = [job for job in matched if job.status == JOB_FAILED]
    if not done:
        if failed:
            kinds = Counter(
                str((job.failure or {}).get("exception_type", "?")).rsplit(".", 1)[-1] for job in failed
            )
            cell.status = STATUS_FAILED
            cell.message = ", ".join(
                f"{kind} x{count}" if count > 1 else kind for kind, count in kinds.items()
            )
        else:
            cell.status = STATUS_NO_RESULT
        return cell
    cell.scales = sorted({str(v) for job in done if (v := job.value("scale_name")) is not _MISSING})
    per_unit: dict[tuple, list[float]] = defaultdict(list)
    absent: set[str] = set()
    lacking = 0
    scale = table.scale if column.measure.is_rate else 1.0
    for job in done:
        value = measure_value(job.results, column.measure, job.robustness)
        if value is None:
            absent.update(_absent(job, column.measure))
            lacking += 1
            continue
        unit = (*(canonical(job.value(k)) for k in pool_keys), job.seed)
        per_unit[unit].append(value * scale)
    if not per_unit:
        cell.status, cell.message = STATUS_NO_SET, f"no {', '.join(sorted(absent))}"
        return cell
    cell.units = {unit: float(np.mean(v)) for unit, v in per_unit.items()}
    cell.mean, cell.std, cell.n = summarise(cell.units, len(pool_keys))
    notes = [f"{lacking} job(s) without {', '.join(sorted(absent))}"] if lacking else []
    duplicates = sum(len(v) - 1 for v in per_unit.values())
    if duplicates:
        notes.append(f"{duplicates} duplicate job(s) with the same seed averaged")
    if failed or len(done) < len(matched):
        notes.append(f"{len(matched) - len(done)} of {len(matched)} jobs without results")
    cell.status = STATUS_PARTIAL if notes else STATUS_OK
    cell.message = "; ".join(notes)
    return cell


def _row_mean_cell(table: PaperTable, row: Row, column: Column, cells: Mapping[str, Cell]) -> Cell:
    cell = Cell(
        row.key,
        column.key,
        STATUS_NOT_RUN,
        paper=row.paper.get(column.key),
        paper_std=row.paper_std.get(column.key),
    )
    parts = [cells[key] for key in column.mean_of]
    cell.scales = sorted({scale for part in parts for scale in part.scales})
    if row.match is None:
        cell.status = STATUS_NOT_WIRED
        return cell
    if any(part.mean is None for part in parts):
        statuses = sorted({part.status for part in parts if part.mean is None})
        cell.status = statuses[0] if len(statuses) == 1 else STATUS_NO_RESULT
        cell.message = f"needs all of {list(column.mean_of)}"
        return cell
    shared = set.intersection(*(set(part.units) for part in parts))
    if shared:
        cell.units = {unit: float(np.mean([part.units[unit] for part in parts])) for unit in shared}
        cell.mean, cell.std, cell.n = summarise(cell.units, len(row.pool))
    else:  # seeds differ between columns: the mean of the column means, without a spread
        cell.mean, cell.n = float(np.mean([part.mean for part in parts])), 1
        cell.message = "columns have no seed in common; mean of means"
    cell.status = STATUS_PARTIAL if any(part.status == STATUS_PARTIAL for part in parts) else STATUS_OK
    return cell


@dataclass
class TableResult:
    table: PaperTable
    cells: dict[tuple[str, str], Cell]
    rows: list[Row]
    columns: list[Column]
    jobs: dict[str, Job] = field(default_factory=dict)

    def unfinished_jobs(self) -> list[Job]:
        """Matched jobs (of the shown rows and columns) that failed or left no result."""
        shown = {str(d) for r in self.rows for c in self.columns for d in self.cells[(r.key, c.key)].jobs}
        return [job for name, job in self.jobs.items() if name in shown and job.status != JOB_DONE]


def compute_table(table: PaperTable, jobs: Sequence[Job], only_measured: bool = False) -> TableResult:
    """Every cell of ``table`` from ``jobs``. ``only_measured`` drops rows and columns in which no
    job matched any cell (to print the part of a table that a partial sweep covers)."""
    cells: dict[tuple[str, str], Cell] = {}
    for row in table.rows:
        row_cells = {c.key: compute_cell(table, row, c, jobs) for c in table.columns if c.measure is not None}
        for column in table.columns:
            if column.mean_of:
                row_cells[column.key] = _row_mean_cell(table, row, column, row_cells)
        cells.update({(row.key, key): cell for key, cell in row_cells.items()})
    rows, columns = list(table.rows), list(table.columns)
    if only_measured:
        touched = {key for key, cell in cells.items() if cell.jobs}
        rows = [r for r in rows if any((r.key, c.key) in touched for c in columns)]
        kept = {c.key for c in columns if any((r.key, c.key) in touched for r in rows)}
        columns = [c for c in columns if c.key in kept or (c.mean_of and set(c.mean_of) <= kept)]
    return TableResult(table, cells, rows, columns, {str(job.directory): job for job in jobs})


# --------------------------------------------------------------------------- rendering

_MARKERS = {
    STATUS_FAILED: "FAILED",
    STATUS_NO_RESULT: "no result",
    STATUS_NOT_RUN: "not run",
    STATUS_NOT_WIRED: "not wired",
}


def _text(value: float | None, decimals: int) -> str:
    if value is None:
        return "-"
    return "nan" if math.isnan(value) else f"{value:.{decimals}f}"


def format_cell(cell: Cell, decimals: int, published: bool = True) -> str:
    """``measured [paper]``: ``78.12 ± 0.50 [78.59]``, ``FAILED (ValueError) [78.59]``; without the
    bracket when nothing is ``published`` (figures)."""
    if cell.mean is not None:
        measured = _text(cell.mean, decimals)
        if cell.std is not None:
            measured += f" ± {_text(cell.std, decimals)}"
        if cell.status == STATUS_PARTIAL and "without results" in cell.message:
            measured += f" ({cell.message.split(';')[-1].strip()})"
        if cell.demo:
            measured += " (demo)"
    elif cell.status == STATUS_NO_SET:
        measured = cell.message
    else:
        measured = _MARKERS[cell.status]
        if cell.status == STATUS_FAILED and cell.message:
            measured += f" ({cell.message})"
    if not published:
        return measured
    paper = _text(cell.paper, decimals)
    if cell.paper_std is not None:
        paper += f" ± {_text(cell.paper_std, decimals)}"
    return f"{measured} [{paper}]"


LEGEND = (
    "Cells: measured mean ± std over seeds (sample std) [paper]. FAILED = every job of the cell failed "
    "(failed.json); no result = job without results.json (killed, crashed hard or still running); "
    "not run = no matching job in the given directories; not wired = row not yet connected to a config."
)


DEMO_NOTE = ("measured at scale=demo, tiny models on the embedded synthetic data; it checks the pipeline, "
             "it is not comparable with the paper's number beside it.")


def to_markdown(result: TableResult) -> str:
    table = result.table
    header = ["Method", *(c.header for c in result.columns)]
    unit = f"Unit: {'%' if table.unit == 'percent' else 'fraction'}"
    if any(c.measure is not None and not c.measure.is_rate for c in result.columns):
        unit += " (cost columns as measured: M parameters, G(FL/MAC)s and ms per image)"
    legend = (
        LEGEND
        if not table.figure
        else LEGEND.replace(" [paper]", "") + " The paper shows these results only as a plot."
    )
    demo = any(result.cells[(r.key, c.key)].demo for r in result.rows for c in result.columns)
    lines = [
        f"### {table.title_line}",
        "",
        f"{unit}. {legend}",
        "",
        *([f"**(demo): {DEMO_NOTE}**", ""] if demo else []),
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * len(result.columns)) + "|",
    ]
    for row in result.rows:
        cells = [
            format_cell(result.cells[(row.key, c.key)], table.column_decimals(c), not table.figure)
            for c in result.columns
        ]
        lines.append("| " + " | ".join([row.label, *cells]) + " |")
    notes = [*table.notes, *(f"{row.label}: {row.note}" for row in result.rows if row.note)]
    partial = [
        f"{row.label} / {column.header}: {cell.message}"
        for row in result.rows
        for column in result.columns
        if (cell := result.cells[(row.key, column.key)]).status == STATUS_PARTIAL and cell.message
    ]
    if notes:
        lines += ["", "Notes:", *(f"- {note}" for note in notes)]
    if partial:
        lines += ["", "Cells from part of their jobs:", *(f"- {text}" for text in partial)]
    unfinished = result.unfinished_jobs()
    if unfinished:
        lines += ["", "Jobs without results:", *(f"- {describe_job(job)}" for job in unfinished)]
    return "\n".join(lines) + "\n"


def describe_job(job: Job) -> str:
    """``<dir>: failed: ValueError: message`` or ``<dir>: no results.json ...``."""
    if job.status == JOB_FAILED:
        failure = job.failure or {}
        kind = str(failure.get("exception_type", "?")).rsplit(".", 1)[-1]
        message = str(failure.get("message", "")).strip().splitlines()
        return (
            f"{job.directory}: failed: {kind}: {message[0][:160] if message else ''} (see {FAILED_FILE_NAME})"
        )
    extra = f" ({job.problem})" if job.problem else ""
    return f"{job.directory}: no {RESULTS_FILE_NAME} and no {FAILED_FILE_NAME}{extra}; killed, crashed hard or still running"


def to_frame(result: TableResult) -> pd.DataFrame:
    """The paper layout as numbers: per column ``<key>``, ``<key>_std``, ``<key>_paper``, ``<key>_status``."""
    records = []
    for row in result.rows:
        record: dict[str, Any] = {"row": row.key, "label": row.label}
        for column in result.columns:
            cell = result.cells[(row.key, column.key)]
            record[column.key] = cell.mean
            record[f"{column.key}_std"] = cell.std
            record[f"{column.key}_paper"] = cell.paper
            record[f"{column.key}_status"] = cell.status
            record[f"{column.key}_scale"] = ",".join(cell.scales)
        records.append(record)
    return pd.DataFrame.from_records(records)


def to_cells_frame(result: TableResult) -> pd.DataFrame:
    """One line per cell, with its count, paper number, status, message and job directories."""
    records = []
    for row in result.rows:
        for column in result.columns:
            cell = result.cells[(row.key, column.key)]
            records.append(
                {
                    "table": result.table.name,
                    "row": row.key,
                    "row_label": row.label,
                    "column": column.key,
                    "column_label": column.header,
                    "mean": cell.mean,
                    "std": cell.std,
                    "n": cell.n,
                    "paper": cell.paper,
                    "paper_std": cell.paper_std,
                    "difference": None if cell.mean is None or cell.paper is None else cell.mean - cell.paper,
                    "status": cell.status,
                    "scale": ",".join(cell.scales),
                    "message": cell.message,
                    "jobs": ";".join(cell.jobs),
                }
            )
    return pd.DataFrame.from_records(records)


def _csv_text(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def write_outputs(result: TableResult, out_dir: Path) -> list[Path]:
    """``<table>.md``, ``<table>.csv`` and ``<table>_cells.csv`` in ``out_dir``, atomically."""
    name = result.table.name
    return [
        atomic_write_text(out_dir / f"{name}.md", to_markdown(result)),
        atomic_write_text(out_dir / f"{name}.csv", _csv_text(to_frame(result))),
        atomic_write_text(out_dir / f"{name}_cells.csv", _csv_text(to_cells_frame(result))),
    ]


def log_to_wandb(
    results: Sequence[TableResult], jobs: Sequence[Job], out_dir: Path, project: str | None = None,
    extra: Mapping[str, pd.DataFrame] | None = None,
) -> str:
    """Log each table's cells as a W&B table in one run, grouped with the sweep's jobs.

    Offline unless an API key is configured (``engine.resolvers.wandb_offline``); returns the
    run's local directory.
    """
    import os

    import wandb

    from engine.resolvers import wandb_offline

    groups = Counter(
        str(value)
        for job in jobs
        if (value := job.value("logger.wandb.group")) is not _MISSING and value is not None
    )
    group = (
        groups.most_common(1)[0][0]
        if groups
        else Path(os.path.commonpath([str(j.directory) for j in jobs])).name
    )
    run = wandb.init(
        project=project or os.environ.get("WANDB_PROJECT", "facemoe"),
        group=group,
        job_type="aggregate",
        name=f"tables_{group.replace('/', '_')}",
        config={"paths": [str(p) for p in sorted({str(j.directory.parent) for j in jobs})]},
        dir=str(out_dir),
        mode="offline" if wandb_offline() else "online",
        reinit="finish_previous",
    )
    try:
        frames = {result.table.name: to_cells_frame(result).drop(columns=["jobs"]) for result in results}
        frames.update(extra or {})
        for name, frame in frames.items():
            run.log({name: wandb.Table(dataframe=frame.astype(object).where(frame.notna(), None))})
        return str(Path(run.dir).parent)
    finally:
        run.finish()


# --------------------------------------------------------------------------- command line


def sweep_tables(jobs: Sequence[Job]) -> list[PaperTable]:
    """The registered tables filled by the sweeps the jobs belong to (their ``sweep_name``)."""
    names = sorted(
        {str(v) for job in jobs if (v := job.value("sweep_name")) is not _MISSING and v is not None}
    )
    found: dict[str, PaperTable] = {}
    for name in names:
        for table in tables_for_sweep(name):
            found.setdefault(table.name, table)
    return list(found.values())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sweeps.aggregate",
        description="Print paper tables (sweeps/tables/) from sweep job directories, measured beside published numbers.",
    )
    parser.add_argument("paths", nargs="+", help="sweep directories (multiruns/<id>) or job directories")
    parser.add_argument(
        "--table", action="append", default=[], help="table name (repeatable); default: the sweep's tables"
    )
    parser.add_argument(
        "--format", choices=("markdown", "csv"), default="markdown", help="what to print on stdout"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="where to write the files (default: <first path>/tables)"
    )
    parser.add_argument("--no-write", action="store_true", help="print only, write no files")
    parser.add_argument(
        "--only-measured", action="store_true", help="drop rows / columns that no job matched"
    )
    parser.add_argument(
        "--wandb", action="store_true", help="also log the tables as a W&B run (offline without a key)"
    )
    parser.add_argument("--wandb-project", default=None)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        jobs = discover_jobs(args.paths)
    except AggregateError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    tables = [get_table(name) for name in args.table] if args.table else sweep_tables(jobs)
    statuses = Counter(job.status for job in jobs)
    print(
        f"{len(jobs)} job(s): "
        + ", ".join(f"{count} {status}" for status, count in sorted(statuses.items())),
        file=sys.stderr,
    )
    results = [compute_table(table, jobs, only_measured=args.only_measured) for table in tables]
    out_dir = args.out or Path(args.paths[0]) / "tables"
    for result in results:
        print(to_markdown(result) if args.format == "markdown" else _csv_text(to_frame(result)))
        if not args.no_write:
            for path in write_outputs(result, out_dir):
                print(f"wrote {path}", file=sys.stderr)
    # Every multirun: mean and spread per varied knob (sweeps/summary.py), paper table or not.
    from sweeps.summary import summarise_jobs, write_summary
    from sweeps.summary import to_markdown as summary_markdown

    summary = summarise_jobs(jobs)
    title = f"Summary of {', '.join(str(p) for p in args.paths)}"
    print(summary_markdown(summary, title) if args.format == "markdown" else _csv_text(summary.groups))
    if not args.no_write:
        summary_dir = (args.out or Path(args.paths[0])) / "summary"
        for path in write_summary(summary, summary_dir, title):
            print(f"wrote {path}", file=sys.stderr)
    if args.wandb:
        extra = {"summary": summary.groups, "summary_jobs": summary.jobs}
        print(f"W&B run in {log_to_wandb(results, jobs, out_dir, args.wandb_project, extra)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
