"""What one job of ``run.py`` runs, picked by ``cfg.pipeline``: ``standard`` (``engine.pipeline.run``:
one fit -> select -> test) or ``self_distill`` (DTN's generation chain, each generation a standard run).

The choice sits above both pipelines so that neither imports the other's caller (docs/ARCHITECTURE.md,
"Layers"): ``engine.self_distill`` runs ``engine.pipeline.run`` per generation, and this module picks.
"""

from __future__ import annotations

from omegaconf import DictConfig

from engine import pipeline, self_distill

PIPELINES = ("standard", "self_distill")


def run_job(cfg: DictConfig) -> float | None:
    """The job's validation objective, from the pipeline ``cfg.pipeline`` names."""
    name = str(cfg.get("pipeline", "standard"))
    if name == "standard":
        return pipeline.run(cfg)
    if name == "self_distill":
        return self_distill.run_self_distillation(cfg)
    raise ValueError(f"pipeline={name!r} unknown; expected one of {list(PIPELINES)}")
