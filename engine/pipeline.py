"""The run: build from config -> fit -> select the checkpoint on validation of the training
domains -> test every configured test set -> write results.json and predictions -> print a table.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from callbacks.csv_logger import AtomicCSVLogger
from callbacks.resume import Preempted, ResumeCheckpoints, received_stop_signal, stop_signal_behind
from callbacks.timings import PhaseClock, PhaseTimings
from common.choices import check_choice
from common.numerics import numerics_tag
from detectors.guards import GuardSettings
from engine import preflight
from engine.attempts import Attempts, own_wandb_service, wandb_run_id
from engine.checkpoint_io import AtomicCheckpointIO
from engine.compilation import maybe_compile
from engine.console import print_config_tree, print_results_table, single_lightning_log
from engine.resume import check_resume, resolve_resume, resumed_thread_count, run_signature
from engine.run_logging import log_run_config, log_run_outcome
from engine.synthetic_pretraining import resolve_synthetic_weights
from engine.threads import apply_threads
from evaluation.results import build_results, git_commit, predictions_path, write_predictions, write_results
from evaluation.run_dir import begin_attempt, superseded_attempts

log = logging.getLogger(__name__)


def _logger(config: DictConfig, output_dir: Path) -> Logger:
    # W&B: one run per run directory; a resumed attempt (requeue) continues it (engine/attempts.py).
    if str(config.get("_target_", "")).endswith("WandbLogger") and "id" not in config and _is_rank_zero():
        own_wandb_service()
        return instantiate(config, id=wandb_run_id(output_dir), resume="allow")
    return instantiate(config)


def build_loggers(cfg: DictConfig, output_dir: Path, attempt: int | None = None) -> list[Logger]:
    """Configured loggers, plus a CSV logger when none was configured: CSV is always written, and
    appended to across attempts (each row carries ``attempt``)."""
    loggers = [_logger(c, output_dir) for c in (cfg.get("logger") or {}).values() if c is not None and "_target_" in c]
    if not any(isinstance(lg, CSVLogger) for lg in loggers):
        loggers.append(AtomicCSVLogger(save_dir=str(output_dir), name="csv", version=""))
    for lg in loggers:
        if isinstance(lg, AtomicCSVLogger):
            lg.attempt = attempt
    return loggers


def build_callbacks(cfg: DictConfig) -> list[L.Callback]:
    return [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None and "_target_" in c]


# print_config: these branches of the config tree first.
PRINTED_FIRST = ("experiment_name", "detector", "protocol", "data", "trainer", "callbacks", "logger", "paths", "seed")
DDP_STRATEGIES = ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook")


def ddp_strategy(strategy: object, model: L.LightningModule) -> str | None:
    """``<ddp strategy>_find_unused_parameters_true`` in place of a plain DDP strategy name for a detector
    whose steps can leave parameters without gradients (``ddp_find_unused_parameters``); None: keep the
    configured strategy. A strategy given as an object or a config node is the user's to set up."""
    if not getattr(model, "ddp_find_unused_parameters", False):
        return None
    name = type(model).__name__
    if isinstance(strategy, str) and strategy in DDP_STRATEGIES:
        log.info("%s leaves some parameters without gradients in a step: DDP finds unused parameters", name)
        return f"{strategy}_find_unused_parameters_true"
    if strategy is not None and not isinstance(strategy, str):  # None: one process, no DDP to configure
        log.warning("%s needs DDP's find_unused_parameters=True; check that strategy %r sets it", name, strategy)
    return None


def _checkpoint_to_test(trainer: L.Trainer, which: str) -> tuple[str | None, str]:
    """The checkpoint the results describe, and how it was chosen."""
    check_choice("test_ckpt", which, {"best", "last"})
    callback = trainer.checkpoint_callback if isinstance(trainer.checkpoint_callback, ModelCheckpoint) else None
    if callback is not None and which == "best" and callback.best_model_path:
        return callback.best_model_path, f"best {callback.monitor} on validation of the training domains"
    last = next((c.last_path for c in trainer.callbacks if isinstance(c, ResumeCheckpoints)), None)
    if which == "last" and last is not None and last.is_file():
        return str(last), "last epoch"
    return None, "weights in memory at the end of training (no checkpoint was saved)"


def _finish_wandb(preempted: bool = False) -> None:
    """Close the W&B run; never fails the job. On a requeue SLURM's SIGTERM reaches W&B's service
    process too, and finishing then raises (ConnectionResetError): the run's files are complete,
    and the next attempt continues the same W&B run (``wandb_run_id``)."""
    try:
        import wandb
    except ImportError:
        return
    if wandb.run is None:
        return
    try:
        if preempted:
            wandb.run.mark_preempting()
        wandb.finish(exit_code=1 if preempted else 0)
    except Exception as error:  # a dying W&B service must not turn a finished or requeued job into a failure
        log.warning("W&B did not finish cleanly (%s: %s); results on disk are unaffected, "
                    "`wandb sync <run dir>/wandb/offline-run-*` uploads an offline run", type(error).__name__, error)


def run(cfg: DictConfig) -> float | None:
    """Run one job from its composed config; returns ``cfg.objective`` for sweepers."""
    started = time.time()
    output_dir = Path(cfg.paths.output_dir)
    preflight.check_config(cfg)  # every value, before anything is built (engine/preflight.py)
    single_lightning_log()
    if cfg.get("print_config"):
        rank_zero_only(print_config_tree)(cfg, fields=PRINTED_FIRST)
    L.seed_everything(int(cfg.seed), workers=True)
    if torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")

    # A resumed run trains with the thread count it began with: CPU results depend on it (common/numerics.py).
    resume = resolve_resume(cfg.get("ckpt_path", "auto"), output_dir)
    threads = apply_threads(OmegaConf.to_container(cfg.threads) if cfg.get("threads") else None, resumed_thread_count(resume))
    clock = PhaseClock()  # extra.timings of results.json (callbacks/timings.py)
    with clock.phase("data"):
        datamodule = instantiate(cfg.data, _convert_="all")
        datamodule.setup("fit")
    with clock.phase("synthetic_pretraining"):
        cfg = resolve_synthetic_weights(cfg)
    model = instantiate(cfg.detector, _convert_="all")
    maybe_compile(model, OmegaConf.to_container(cfg.compile) if cfg.get("compile") else None)
    preflight.check_model(model, int(cfg.detector.input_size))
    if hasattr(model, "configure_guards"):
        model.configure_guards(GuardSettings.from_config(OmegaConf.to_container(cfg.guards, resolve=True) if cfg.get("guards") else None))
    strategy = ddp_strategy(OmegaConf.select(cfg, "trainer.strategy"), model)
    if resume:
        check_resume(resume, cfg, model)  # a changed detector / shape / learning rate stops here
        log.info("resuming from %s", resume)
    attempts = Attempts(output_dir)
    attempt = attempts.next_number() if _is_rank_zero() else None
    callbacks = [*build_callbacks(cfg), ResumeCheckpoints(output_dir / "checkpoints", signature=run_signature(cfg))]
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=[*callbacks, PhaseTimings(clock)], logger=build_loggers(cfg, output_dir, attempt),
        plugins=_plugins(), **({"strategy": strategy} if strategy else {}),
    )
    if attempt is not None:
        attempts.start(resume, threads.intra_op)
    preempted = False
    try:
        # Files of every selected set and room for checkpoints, before the first training step.
        preflight.check_data(datamodule)
        if attempt is not None:
            preflight.check_output_dir(output_dir, preflight.checkpoint_bytes(model))
            begin_attempt(output_dir)  # an earlier attempt's results are moved aside (evaluation/run_dir.py)
        # Resolved once for the loggers and results.json (a resolve of the whole config: ~0.2-0.45 s a CPU core).
        resolved = OmegaConf.to_container(cfg, resolve=True) if trainer.is_global_zero else None
        if resolved is not None:
            log_run_config(trainer.loggers, resolved)
        with clock.phase("fit"):
            trainer.fit(model, datamodule=datamodule, ckpt_path=resume, weights_only=True)
        selected, how = _checkpoint_to_test(trainer, str(cfg.get("test_ckpt", "best")))
        log.info("evaluating %s (%s)", selected or "in-memory weights", how)
        with clock.phase("select"):
            trainer.validate(model, datamodule=datamodule, ckpt_path=selected, verbose=False)
        validation = model.eval_results["validate"]
        with clock.phase("test"):
            trainer.test(model, datamodule=datamodule, ckpt_path=selected, verbose=False)
        tests = model.eval_results["test"]
        objective_key = str(cfg.get("objective", "val/auc"))
        objective = _objective(validation, objective_key)
        if trainer.is_global_zero:
            cost = measure_model_cost(cfg, model, trainer) if cfg.get("evaluate_cost") else None
            results = _write_outputs(cfg, output_dir, validation, tests, selected, how, objective_key, objective, model, started, cost, clock,
                                     attempts, resolved)
            print_results_table(tests, f"{cfg.get('experiment_name') or cfg.task_name}: test metrics ({how})", results["summary"].get("m_eer"))
            if cfg.get("robustness"):
                # +robustness=default: the tested checkpoint under every corruption x severity.
                from engine.robustness import evaluate_run, load_settings

                settings = load_settings(OmegaConf.to_container(cfg.robustness, resolve=True))
                evaluate_run(output_dir, settings, checkpoint=selected or "in-memory", model=model, datamodule=datamodule,
                             loggers=trainer.loggers)
            log_run_outcome(trainer.loggers, output_dir, results)
        if attempt is not None:
            attempts.end("completed")
        return objective
    except Preempted:
        preempted = True
        if attempt is not None:
            attempts.end("preempted")
        raise
    except BaseException as error:
        signum = stop_signal_behind(error)
        stopped = isinstance(error, SystemExit | KeyboardInterrupt)
        # submitit's requeue exits with SystemExit; an error a stop signal explains ends as Preempted (engine/jobs.py)
        preempted = signum is not None or (stopped and received_stop_signal() is not None)
        if attempt is not None:
            if stopped:
                how = "stopped"
            elif signum is not None:
                how = f"stopped after {signal.Signals(signum).name}"
            else:
                how = "failed"
            attempts.end(f"{how} ({type(error).__name__}: {error})")
        raise
    finally:
        _finish_wandb(preempted)


def _is_rank_zero() -> bool:
    """Rank 0 of a job (before the trainer exists): SLURM's, else Lightning's, else the only one."""
    for name in ("SLURM_PROCID", "RANK", "LOCAL_RANK"):
        if os.environ.get(name):
            return int(os.environ[name]) == 0
    return True


def _plugins() -> list:
    """Atomic checkpoint files; under SLURM, Lightning's own requeue handler off: the suite's
    ResumeCheckpoints + submitit own preemption (callbacks/resume.py says why)."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    plugins: list = [AtomicCheckpointIO()]
    if SLURMEnvironment.detect():
        plugins.append(SLURMEnvironment(auto_requeue=False))
    return plugins


def _objective(validation: dict[str, dict], key: str) -> float | None:
    """``val/<metric>`` or ``val/video_<metric>`` from the validation of the tested checkpoint."""
    if not validation:
        return None
    if not key.startswith("val/"):
        raise ValueError(f"objective must be a validation metric such as val/auc, got {key!r} (never select on test sets)")
    name = key.removeprefix("val/")
    level, metric = ("video", name.removeprefix("video_")) if name.startswith("video_") else ("frame", name)
    metrics = next(iter(validation.values()))["metrics"][level]
    if metric not in metrics:
        raise KeyError(f"objective {key!r}: no metric {metric!r}; known: {sorted(metrics)}")
    return float(metrics[metric])


AUTOCAST_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def measure_model_cost(cfg: DictConfig, model: L.LightningModule, trainer: L.Trainer) -> dict[str, Any]:
    """``evaluation.cost.measure_cost`` of the tested model on the run's device (the trainer's root device:
    Lightning moves the module back to the CPU when testing ends), under the run's autocast dtype."""
    from evaluation.cost import measure_cost

    settings = cfg.get("cost") or {}
    cost = measure_cost(
        model,
        device=trainer.strategy.root_device,
        batch_size=int(settings.get("batch_size", 1)),
        warmup=int(settings.get("warmup", 3)),
        repeats=int(settings.get("repeats", 10)),
        dtype=AUTOCAST_DTYPES.get(str(trainer.precision), torch.float32),
    )
    log.info(
        "cost: %.2f M parameters (%.2f M trainable), %.3f GFLOPs and %.2f ms per image on %s",
        cost["params_total_m"], cost["params_trainable_m"], cost["gflops_per_image"], cost["latency_ms_per_image"], cost["device"],
    )
    return cost


def _write_outputs(cfg, output_dir: Path, validation, tests, selected, how, objective_key, objective, model, started, cost=None,
                   clock: PhaseClock | None = None, attempts: Attempts | None = None, resolved: dict | None = None) -> dict:
    """Predictions first, results.json last: a results.json only exists once everything is on disk."""
    for name, result in {**{f"val_{k}": v for k, v in validation.items()}, **tests}.items():
        write_predictions(predictions_path(output_dir, name), result["predictions"])
    val = next(iter(validation.values()), None)
    checkpoint = trainer_monitor = None
    if model.trainer.checkpoint_callback is not None:
        trainer_monitor = getattr(model.trainer.checkpoint_callback, "monitor", None)
        checkpoint = selected
    validation_block: dict[str, Any] = {
        "sets": sorted(validation),
        "threshold": float(model.val_threshold),
        "monitor": trainer_monitor,
        "checkpoint": checkpoint,
        "selection": how,
        "objective": {"key": objective_key, "value": objective},
    }
    if val is not None:
        validation_block["metrics"] = val["metrics"]
    extra: dict[str, Any] = {
        "experiment": cfg.get("experiment_name"),
        "scale": cfg.get("scale_name"),
        "protocol": cfg.protocol.name,
        "world_size": int(model.trainer.world_size),
        # What the numbers depend on besides config and seed: the CPU instruction set and thread count, the GPU model.
        "numerics": numerics_tag(model.trainer.strategy.root_device),
        "complete_evaluation": all(r["complete"] for r in [*validation.values(), *tests.values()]),
        # Frames whose score was NaN / inf, dropped and counted (guards.nonfinite_scores=skip).
        "nonfinite_scores": {name: int(r.get("nonfinite_scores", 0)) for name, r in {**validation, **tests}.items()},
        "superseded": superseded_attempts(output_dir),
        "frames": {name: len(r["predictions"]) for name, r in {**validation, **tests}.items()},
        "videos": {name: int(r["predictions"]["video_id"].nunique()) for name, r in {**validation, **tests}.items()},
    }
    if cost is not None:
        extra["cost"] = cost
    if clock is not None:
        extra["timings"] = clock.as_dict()
    history = attempts.summary() if attempts is not None and attempts.records else None
    if history is not None:
        extra["attempts"] = history  # count, resumed, total wall time, each attempt
    results = build_results(
        config=resolved if resolved is not None else OmegaConf.to_container(cfg, resolve=True),
        validation=validation_block,
        tests={k: v["metrics"] for k, v in tests.items()},
        git_commit=git_commit(Path(__file__).resolve().parent.parent),
        wall_time_s=history["total_wall_time_s"] if history else time.time() - started,
        extra=extra,
    )
    write_results(output_dir, results)
    log.info("wrote %s", output_dir / "results.json")
    return results
