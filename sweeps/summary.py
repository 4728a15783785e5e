"""Summary of any multirun: mean and spread of the headline metrics per combination of the knobs
the sweep varied, without a registered paper table.

The knobs are the command-line overrides (``.hydra/overrides.yaml``) whose value differs between
jobs; ``seed`` is the replicate, never a knob. A job without ``.hydra/`` (a nested run) falls back
on its resolved config: the dotted keys whose values differ between jobs, minus run-specific keys
(paths, names, ids). Metrics per job (``results.json``): the validation objective of the tested
checkpoint, frame AUC and EER of every test set, and M_EER (frame and video). Per group: mean,
sample std (ddof 1), min, max and n over the jobs that finished; failed and unfinished jobs are
counted, never dropped. Jobs at ``scale=demo`` are marked: synthetic data and tiny models, numbers
not comparable with papers.

Written by ``python -m sweeps.aggregate`` into ``<first path>/summary/``: ``summary.md``,
``summary.csv`` (one line per group and metric) and ``summary_jobs.csv`` (one line per job).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from omegaconf import OmegaConf

from sweeps.jobs import HYDRA_DIR, JOB_CHAIN, JOB_DONE, JOB_FAILED, Job, canonical

REPLICATE_KEYS = ("seed",)
# Config keys that differ between jobs without being a knob (fallback without overrides.yaml).
RUN_SPECIFIC_PREFIXES = ("paths.", "logger.", "hydra", "callbacks.model_checkpoint.dirpath", "trainer.default_root_dir",
                         "synthetic_pretraining.cache_dir", "data.synthetic.root", "task_name", "tags")
DEMO_NOTE = ("demo = scale=demo: tiny models on the embedded synthetic data, a few CPU epochs; these numbers check that "
             "the pipeline runs and learns, they are not comparable with the papers' numbers.")


def job_overrides(job: Job) -> dict[str, str] | None:
    """``key -> value`` of the job's command-line overrides, or None without ``.hydra/overrides.yaml``."""
    path = job.directory / HYDRA_DIR / "overrides.yaml"
    if not path.is_file():
        return None
    items = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    out: dict[str, str] = {}
    for item in items:
        key, _, value = str(item).partition("=")
        out[key.lstrip("+~")] = value
    return out


def _flat(node: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(node, Mapping):
        out: dict[str, str] = {}
        for key, value in node.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: canonical(node)}


def varied_knobs(jobs: Sequence[Job]) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The knobs that differ between jobs, and each job's value of them (``"-"`` where unset)."""
    values: dict[str, dict[str, str]] = {}
    for job in jobs:
        overrides = job_overrides(job)
        if overrides is None:
            config = OmegaConf.to_container(job.config, resolve=False) if job.config is not None else {}
            overrides = {k: v for k, v in _flat(config).items() if not k.startswith(RUN_SPECIFIC_PREFIXES)}
        values[str(job.directory)] = overrides
    keys = sorted({k for v in values.values() for k in v} - set(REPLICATE_KEYS))
    knobs = [k for k in keys if len({v.get(k, "-") for v in values.values()}) > 1]
    return knobs, {d: {k: v.get(k, "-") for k in knobs} for d, v in values.items()}


def job_metrics(results: Mapping[str, Any]) -> dict[str, float]:
    """Headline numbers of one results.json (rates as fractions, as in results.json)."""
    out: dict[str, float] = {}
    objective = (results.get("validation") or {}).get("objective") or {}
    if objective.get("value") is not None:
        out[str(objective.get("key", "objective"))] = float(objective["value"])
    for name, levels in sorted((results.get("tests") or {}).items()):
        frame = levels.get("frame") or {}
        for metric in ("auc", "eer"):
            if frame.get(metric) is not None:
                out[f"{name}/{metric}"] = float(frame[metric])
    for level, value in ((results.get("summary") or {}).get("m_eer") or {}).items():
        if value is not None:
            out["m_eer" if level == "frame" else f"m_eer_{level}"] = float(value)
    return {k: v for k, v in out.items() if not math.isnan(v)}


def _scale(job: Job) -> str:
    value = job.value("scale_name")
    return value if isinstance(value, str) else "?"


@dataclass
class Summary:
    knobs: list[str]
    jobs: pd.DataFrame  # one line per job
    groups: pd.DataFrame  # one line per group and metric
    metrics: list[str] = field(default_factory=list)

    @property
    def demo(self) -> bool:
        return bool((self.jobs["scale"] == "demo").any()) if len(self.jobs) else False


def summarise_jobs(jobs: Sequence[Job]) -> Summary:
    jobs = [job for job in jobs if job.status != JOB_CHAIN]
    knobs, knob_values = varied_knobs(jobs)
    records = []
    for job in jobs:
        record: dict[str, Any] = {k: knob_values[str(job.directory)][k] for k in knobs}
        record.update(seed=job.seed, scale=_scale(job), status=job.status, directory=str(job.directory))
        if job.status == JOB_DONE:
            record.update(job_metrics(job.results))
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    fixed = {"seed", "scale", "status", "directory", *knobs}
    metrics = [c for c in frame.columns if c not in fixed]
    groups = []
    by = [*knobs, "scale"]
    for key, part in frame.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        done = part[part["status"] == JOB_DONE]
        base = dict(zip(by, key))
        base.update(jobs=len(part), done=len(done), failed=int((part["status"] == JOB_FAILED).sum()),
                    seeds=",".join(sorted(done["seed"].astype(str))))
        for metric in metrics:
            values = done[metric].dropna().to_numpy(dtype=np.float64)
            groups.append({**base, "metric": metric, "n": len(values),
                           "mean": float(values.mean()) if len(values) else None,
                           "std": float(values.std(ddof=1)) if len(values) > 1 else None,
                           "min": float(values.min()) if len(values) else None,
                           "max": float(values.max()) if len(values) else None})
        if not metrics:
            groups.append({**base, "metric": None, "n": 0, "mean": None, "std": None, "min": None, "max": None})
    return Summary(knobs, frame, pd.DataFrame.from_records(groups), metrics)


def _cell(mean: float | None, std: float | None, n: int) -> str:
    if mean is None:
        return "no result"
    text = f"{mean:.4f}"
    if std is not None:
        text += f" ± {std:.4f}"
    return text + ("" if n > 1 else " (1 job)")


def to_markdown(summary: Summary, title: str) -> str:
    by = [*summary.knobs, "scale"]
    lines = [f"### {title}", "",
             f"Varied knobs: {', '.join(summary.knobs) if summary.knobs else 'none besides the seed'}. "
             "Cells: mean ± sample std over the finished jobs (seeds); rates are fractions.", ""]
    if summary.demo:
        lines += [f"**{DEMO_NOTE}**", ""]
    header = [*by, "jobs (done/failed)", *summary.metrics]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(by) + ["---:"] * (1 + len(summary.metrics))) + "|"]
    groups = summary.groups
    for key, part in groups.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        first = part.iloc[0]
        cells = {row["metric"]: _cell(row["mean"], row["std"], int(row["n"])) for _, row in part.iterrows() if row["metric"]}
        labels = [str(v) for v in key]
        counts = f"{int(first['jobs'])} ({int(first['done'])}/{int(first['failed'])})"
        lines.append("| " + " | ".join([*labels, counts, *(cells.get(m, "-") for m in summary.metrics)]) + " |")
    unfinished = summary.jobs[summary.jobs["status"] != JOB_DONE]
    if len(unfinished):
        lines += ["", "Jobs without results:", *(f"- {row['directory']}: {row['status']}" for _, row in unfinished.iterrows())]
    return "\n".join(lines) + "\n"


def write_summary(summary: Summary, out_dir: Path, title: str) -> list[Path]:
    from evaluation.results import atomic_write_text

    def csv(frame: pd.DataFrame) -> str:
        return frame.to_csv(index=False, lineterminator="\n")

    return [
        atomic_write_text(out_dir / "summary.md", to_markdown(summary, title)),
        atomic_write_text(out_dir / "summary.csv", csv(summary.groups)),
        atomic_write_text(out_dir / "summary_jobs.csv", csv(summary.jobs)),
    ]
