"""DTN's deepfake self-distillation chain as one command (``python run.py experiment=dtn_self_distill``).

Generation 0 (the teacher) trains from scratch with CE + contrastive-centre loss; generation g >= 1 trains
a fresh student of the same architecture, taught by the frozen best checkpoint of generation g - 1
(``detector.teacher_checkpoint``; the detector adds the KD loss itself, see ``detectors/dtn.py``).
Each generation is one ordinary pipeline run (``engine.pipeline.run``: fit -> select on validation ->
test -> results) in its own directory::

    <run dir>/gen0/{results.json, predictions/, checkpoints/, csv/}
    <run dir>/gen1/...
    <run dir>/self_distill.json      every generation: checkpoint, teacher, validation and test metrics

``self_distill.json`` is rewritten (atomically) after every generation, so a chain cut short still lists
what finished. A generation whose ``results.json`` exists is reused (``self_distill.reuse_finished``), and
an unfinished one resumes from its own ``checkpoints/last.ckpt`` (``ckpt_path=auto``), so a requeued job
continues the chain where it stopped. Under DDP every rank runs the chain; rank 0 writes the files and the
other ranks wait for it (a barrier) before reading a generation's results.

Config (``conf/experiment/dtn_self_distill.yaml``)::

    pipeline: self_distill
    self_distill:
      generations: 3        # G students after the teacher: G + 1 runs
      reuse_finished: true
      seed_stride: 1        # generation g trains with seed + g * seed_stride (fresh student init)
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch.distributed as dist
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from evaluation.results import RESULTS_FILE_NAME, atomic_write_json, load_results

log = logging.getLogger(__name__)

SELF_DISTILL_FILE_NAME = "self_distill.json"
SELF_DISTILL_SCHEMA_VERSION = 1


def generation_dir(base_dir: str | Path, generation: int) -> Path:
    return Path(base_dir) / f"gen{generation}"


def generation_config(cfg: DictConfig, generation: int, teacher_checkpoint: str | None) -> DictConfig:
    """The run config of one generation: its own output directory, seed and teacher."""
    settings = cfg.self_distill
    base_dir = Path(cfg.paths.output_dir)
    generation_cfg = copy.deepcopy(cfg)
    with open_dict(generation_cfg):
        # Every path of the run (checkpoints, loggers, predictions) interpolates paths.output_dir.
        generation_cfg.paths.output_dir = str(generation_dir(base_dir, generation))
        generation_cfg.pipeline = "standard"
        generation_cfg.self_distill.generation = generation  # read by the sweep aggregator
        generation_cfg.seed = int(cfg.seed) + generation * int(settings.get("seed_stride", 1))
        generation_cfg.detector.teacher_checkpoint = teacher_checkpoint
        generation_cfg.tags = [*(cfg.get("tags") or []), f"gen{generation}"]
        if OmegaConf.select(cfg, "logger.wandb.name") is not None:
            generation_cfg.logger.wandb.name = f"{OmegaConf.select(cfg, 'logger.wandb.name')}_gen{generation}"
    return generation_cfg


def _check_config(cfg: DictConfig) -> int:
    settings = cfg.get("self_distill")
    if settings is None or "generations" not in settings:
        raise KeyError("pipeline=self_distill needs a self_distill block with 'generations' (see conf/experiment/dtn_self_distill.yaml)")
    generations = int(settings.generations)
    if generations < 0:
        raise ValueError(f"self_distill.generations must be >= 0 (number of student generations), got {generations}")
    if "teacher_checkpoint" not in cfg.detector:
        raise ValueError(
            f"self-distillation: detector {cfg.detector.get('_target_')!r} has no 'teacher_checkpoint' option; "
            "use a detector with SelfDistillationMixin (detectors.dtn.DTN, detectors.dtn.DistilledTimmDetector)"
        )
    if cfg.detector.get("teacher_checkpoint"):
        raise ValueError(
            f"self-distillation: detector.teacher_checkpoint={cfg.detector.teacher_checkpoint!r} must be null; "
            "the chain sets it for each generation"
        )
    if cfg.get("ckpt_path", "auto") not in (None, "auto", "null", "none", ""):
        raise ValueError(
            f"self-distillation: ckpt_path={cfg.ckpt_path!r}; each generation resumes from its own "
            "gen<g>/checkpoints/last.ckpt, so use ckpt_path=auto (or null)"
        )
    return generations


def _generation_entry(generation: int, results: dict, teacher_checkpoint: str | None, reused: bool) -> dict[str, Any]:
    validation = results["validation"]
    return {
        "generation": generation,
        "role": "teacher" if generation == 0 else f"student{generation}",
        "run_dir": f"gen{generation}",
        "results": f"gen{generation}/{RESULTS_FILE_NAME}",
        "checkpoint": validation.get("checkpoint"),
        "teacher_checkpoint": teacher_checkpoint,
        "seed": results["config"].get("seed"),
        "reused": reused,
        "objective": validation.get("objective"),
        "validation": validation.get("metrics"),
        "tests": results["tests"],
        "summary": results["summary"],
    }


def _best_generation(entries: list[dict[str, Any]], mode: str) -> int | None:
    """The generation with the best validation objective (the chain's model selection)."""
    scored = [
        (entry["objective"]["value"], entry["generation"])
        for entry in entries
        if entry.get("objective") and isinstance(entry["objective"].get("value"), float) and math.isfinite(entry["objective"]["value"])
    ]
    if not scored:
        return None
    chooser = max if mode == "max" else min
    return chooser(scored, key=lambda pair: pair[0])[1]


def _wait_for_rank_zero() -> None:
    """Under DDP only rank 0 writes results.json (at the end of the pipeline run): the other ranks wait
    for it before reading it."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def run_self_distillation(cfg: DictConfig, run_generation: Callable[[DictConfig], float | None] | None = None) -> float | None:
    """Train generation 0..G one after the other; returns the last generation's validation objective.

    ``run_generation`` runs one generation's config (default ``engine.pipeline.run``; tests pass a stub).
    """
    if run_generation is None:
        from engine.pipeline import run as run_generation
    generations = _check_config(cfg)
    settings = cfg.self_distill
    reuse_finished = bool(settings.get("reuse_finished", True))
    objective_mode = str(OmegaConf.select(cfg, "callbacks.model_checkpoint.mode", default="max") or "max")
    base_dir = Path(cfg.paths.output_dir)
    base_dir.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    teacher_checkpoint: str | None = None
    for generation in range(generations + 1):
        results_path = generation_dir(base_dir, generation) / RESULTS_FILE_NAME
        reused = reuse_finished and results_path.is_file()
        if reused:
            log.info("self-distillation: generation %d already finished (%s), reused", generation, results_path)
        else:
            log.info("self-distillation: training generation %d (teacher: %s)", generation, teacher_checkpoint or "none")
            run_generation(generation_config(cfg, generation, teacher_checkpoint))
            _wait_for_rank_zero()
        if not results_path.is_file():
            raise FileNotFoundError(f"self-distillation: generation {generation} wrote no {results_path}")
        results = load_results(results_path)
        recorded_teacher = OmegaConf.select(OmegaConf.create(results["config"]), "detector.teacher_checkpoint")
        if reused and recorded_teacher != teacher_checkpoint:
            raise ValueError(
                f"self-distillation: reused {results_path} was taught by {recorded_teacher!r}, but the chain's "
                f"generation {generation - 1} checkpoint is {teacher_checkpoint!r}; remove {results_path.parent} "
                "or set self_distill.reuse_finished=false"
            )
        entries.append(_generation_entry(generation, results, teacher_checkpoint, reused))
        if rank_zero_only.rank == 0:
            atomic_write_json(
                base_dir / SELF_DISTILL_FILE_NAME,
                {
                    "schema_version": SELF_DISTILL_SCHEMA_VERSION,
                    "experiment": cfg.get("experiment_name"),
                    "generations_planned": generations,
                    "generations_finished": len(entries),
                    "best_generation_on_validation": _best_generation(entries, objective_mode),
                    "entries": entries,
                },
            )
        checkpoint = results["validation"].get("checkpoint")
        if generation < generations and (not checkpoint or not Path(checkpoint).is_file()):
            raise FileNotFoundError(
                f"self-distillation: generation {generation} saved no checkpoint to teach generation "
                f"{generation + 1} (validation.checkpoint={checkpoint!r} in {results_path}); keep "
                "callbacks.model_checkpoint enabled"
            )
        teacher_checkpoint = checkpoint
    last_objective = entries[-1]["objective"]
    return None if not last_objective else last_objective.get("value")
