"""What one job of ``run.py`` runs, picked by ``cfg.pipeline``: ``standard`` (``engine.pipeline.run``:
one fit -> select -> test) or ``self_distill`` (DTN's generation chain, each generation a standard run).

The choice sits above both pipelines so that neither imports the other's caller (docs/ARCHITECTURE.md,
"Layers"): ``engine.self_distill`` runs ``engine.pipeline.run`` per generation, and this module picks.
"""

from __future__ import annotations

from omegaconf import DictConfig

from callbacks.resume import record_stop_signals, stopped_attempt
from engine import pipeline, self_distill

PIPELINES = ("standard", "self_distill")


def run_job(cfg: DictConfig) -> float | None:
    """The job's validation objective, from the pipeline ``cfg.pipeline`` names. After a stop signal
    (SIGTERM, SIGUSR2) an exception ends the attempt as :class:`~callbacks.resume.Preempted` instead
    of becoming the job's result (callbacks/resume.py says why)."""
    record_stop_signals()
    try:
        return _run_pipeline(cfg)
    except Exception as error:
        stopped = stopped_attempt(error)
        if stopped is None:
            raise
        raise stopped from error


def _run_pipeline(cfg: DictConfig) -> float | None:
    name = str(cfg.get("pipeline", "standard"))
    if name == "standard":
        return pipeline.run(cfg)
    if name == "self_distill":
        return self_distill.run_self_distillation(cfg)
    raise ValueError(f"pipeline={name!r} unknown; expected one of {list(PIPELINES)}")
