"""``eval.py``: a trained checkpoint tested on any protocol's test sets (or a prepared folder)
without training. The test itself, the predictions files, results.json and the table are the
training pipeline's own (``engine.pipeline``), so an eval run directory reads like a training run's.

The job config is the trained run's config with what eval changes: ``paths`` (the new run
directory), ``task_name: eval``, ``logger``, ``callbacks`` and ``plots`` of ``conf/eval.yaml``,
``data.protocol`` (the run's train/val items, which say which frames the checkpoint saw, and the
chosen test sets), the ``data`` keys given, and an ``eval`` node recording the source run and
checkpoint. results.json holds that config, so ``engine.robustness`` and a later ``eval.py`` read
an eval run directory as they read a training one.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from engine.console import print_results_table
from engine.pipeline import _finish_wandb, _write_outputs, build_callbacks, build_loggers
from engine.trained import load_detector, locate, trained_config

log = logging.getLogger(__name__)

TEST_SETS_DATAMODULE = "datamodules.test_sets.TestSetsDataModule"
TRAINING_ONLY_TRAINER_KEYS = ("fast_dev_run", "limit_train_batches", "limit_val_batches", "limit_test_batches", "overfit_batches")


class EvalConfigError(ValueError):
    """An eval setting that cannot be honoured; the message names the key and what is expected."""


def _safe_set_name(folder: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", folder.name).lstrip("._+-") or "prepared"


def eval_test_sets(cfg: DictConfig, run_cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any], str]:
    """``(test sets, extra dataset entries, protocol name)`` chosen by ``protocol`` /
    ``prepared`` / ``test_sets`` (default: the run's own protocol's test sets)."""
    datasets: dict[str, Any] = {}
    if cfg.get("prepared"):
        if cfg.get("protocol") is not None:
            raise EvalConfigError("give either protocol=<name> or prepared=<folder>, not both")
        folder = Path(str(cfg.prepared)).expanduser().resolve()
        if not (folder / "index.csv").is_file():
            raise EvalConfigError(
                f"prepared={cfg.prepared!r}: {folder / 'index.csv'} does not exist; expected a folder written by "
                f"python -m datamodules.preprocess"
            )
        name = str(cfg.get("prepared_name") or _safe_set_name(folder))
        datasets[name] = {"prepared": str(folder), "source": "prepared"}
        tests = {name: {"dataset": name, "split": str(cfg.prepared_split)}}
        protocol_name = f"prepared:{folder}"
    elif cfg.get("protocol") is not None:
        tests = OmegaConf.to_container(cfg.protocol.test, resolve=True)
        protocol_name = str(cfg.protocol.name)
    else:
        tests = OmegaConf.to_container(run_cfg.data.protocol.test, resolve=True)
        protocol_name = str(run_cfg.data.protocol.name)
    wanted = cfg.get("test_sets")
    if wanted is not None:
        wanted = [str(name) for name in wanted]
        unknown = [name for name in wanted if name not in tests]
        if unknown:
            raise EvalConfigError(f"test_sets={wanted}: {unknown} not in the chosen protocol's test sets {sorted(tests)}")
        tests = {name: tests[name] for name in wanted}
    return tests, datasets, protocol_name


def eval_job_config(cfg: DictConfig, run_cfg: DictConfig, run_dir: Path, checkpoint: Path) -> DictConfig:
    """The trained run's config turned into this eval job's config (module docstring)."""
    tests, extra_datasets, protocol_name = eval_test_sets(cfg, run_cfg)
    job = OmegaConf.create(OmegaConf.to_container(run_cfg, resolve=True))
    source_protocol = job.data.protocol
    protocol = {"name": protocol_name, "train": source_protocol.train, "val": source_protocol.val, "test": tests}
    data_overrides = {k: v for k, v in OmegaConf.to_container(cfg.data, resolve=True).items() if v is not None}
    trainer_overrides = {k: v for k, v in OmegaConf.to_container(cfg.trainer, resolve=True).items() if v is not None}
    with open_dict(cfg):  # before the logger config is resolved: it names the W&B group
        if cfg.get("experiment_name") is None:
            cfg.experiment_name = run_cfg.get("experiment_name")
    with open_dict(job):
        job.task_name = str(cfg.task_name)
        job.experiment_name = cfg.experiment_name
        job.tags = [*(job.get("tags") or []), *(t for t in cfg.get("tags") or [] if t not in (job.get("tags") or []))]
        job.seed = int(cfg.seed)
        job.paths = OmegaConf.to_container(cfg.paths, resolve=True)
        job.logger = OmegaConf.to_container(cfg.logger, resolve=True) if cfg.get("logger") else {}
        job.callbacks = OmegaConf.to_container(cfg.callbacks, resolve=True) if cfg.get("callbacks") else {}
        job.plots = OmegaConf.to_container(cfg.plots, resolve=True) if cfg.get("plots") else None
        job.protocol = protocol
        job.data.merge_with(data_overrides)
        job.data.protocol = protocol
        job.data.datasets.merge_with(extra_datasets)
        job.data._target_ = TEST_SETS_DATAMODULE
        job.data.check_overlap = bool(cfg.check_overlap)
        for key in TRAINING_ONLY_TRAINER_KEYS:  # a debug run's limits must not shorten this test
            job.trainer.pop(key, None)
        # _write_outputs records the tested checkpoint when the trainer has a checkpoint callback;
        # Lightning's default one is idle in a test.
        job.trainer.enable_checkpointing = True
        job.trainer.merge_with(trainer_overrides)
        job.trainer.default_root_dir = job.paths.output_dir
        job.eval = {
            "source_run_dir": str(run_dir),
            "checkpoint": str(checkpoint),
            "which": str(cfg.which),
            "source_protocol": str(source_protocol.name),
            "check_overlap": bool(cfg.check_overlap),
        }
    return job


def evaluate(cfg: DictConfig) -> dict[str, dict]:
    """Run one eval job (``conf/eval.yaml``); returns ``{test set: {"frame": .., "video": ..}}``."""
    started = time.time()
    output_dir = Path(cfg.paths.output_dir)
    run_dir, checkpoint = locate(cfg.ckpt, str(cfg.which))
    job = eval_job_config(cfg, trained_config(run_dir), run_dir, checkpoint)
    L.seed_everything(int(job.seed), workers=True)
    if torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")
    model = load_detector(job, checkpoint)
    datamodule = instantiate(job.data, _convert_="all")
    trainer: L.Trainer = instantiate(job.trainer, callbacks=build_callbacks(job), logger=build_loggers(job, output_dir))
    how = f"checkpoint {checkpoint} of {run_dir}, tested by eval.py (no training)"
    try:
        log.info("testing %s on %s", checkpoint, list(job.protocol.test))
        trainer.test(model, datamodule=datamodule, verbose=False)
        tests = model.eval_results["test"]
        if trainer.is_global_zero:
            results = _write_outputs(job, output_dir, {}, tests, str(checkpoint), how, None, None, model, started)
            print_results_table(tests, f"eval {run_dir.name}: test metrics ({checkpoint.name})", results["summary"].get("m_eer"))
        return {name: result["metrics"] for name, result in tests.items()}
    finally:
        _finish_wandb()
