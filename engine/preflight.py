"""Checks that run before the first training step, so a mistake costs seconds, not a training run.

* :func:`check_config`: config values (types, ranges, names), all problems in one message;
* :func:`check_model`: the input size fits the detector (a ViT / patchify stem drops the pixels
  past the last whole patch, silently, when the size is not a multiple of its patch size);
* :func:`check_data`: every file of every selected set exists (one directory listing per folder,
  not one stat per file), and one sample of each set decodes;
* :func:`check_output_dir`: the run directory is writable and has room for the checkpoints.

Each raises :class:`UserConfigError`, a user mistake: ``run.py`` prints its message alone
(``engine.user_errors``), without a traceback.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from datamodules.face_datamodule import NORMALIZE_ON
from detectors.guards import GuardSettings
from evaluation.metrics import METRIC_NAMES

log = logging.getLogger(__name__)

TEST_CKPT_CHOICES = ("best", "last")
PIPELINE_CHOICES = ("standard", "self_distill")
# Copies of the parameters one checkpoint holds with Adam-style optimisers (weights + 2 moments),
# and the checkpoints a run keeps at once (best, last, and the temporary file of an atomic save).
_CHECKPOINT_COPIES = 3
_CHECKPOINTS_AT_ONCE = 3
_SPACE_MARGIN_BYTES = 64 * 2**20


class UserConfigError(ValueError):
    """A config value, file or directory the user must fix; the message says which and what is expected."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _learning_rates(node: Any, where: str) -> Iterable[tuple[str, Any]]:
    """Every ``lr`` / ``*_lr`` value in a detector config (optimiser and per-group rates)."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            here = f"{where}.{key}"
            if isinstance(key, str) and (key == "lr" or key.endswith("_lr")) and not isinstance(value, Mapping | list):
                yield here, value
            else:
                yield from _learning_rates(value, here)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _learning_rates(value, f"{where}[{index}]")


def config_problems(cfg: DictConfig) -> list[str]:
    """Every problem of the run config, one readable line each (empty: fine)."""
    problems: list[str] = []
    seed = cfg.get("seed")
    if not _is_int(seed):
        problems.append(f"seed={seed!r}: expected an integer, e.g. seed=0")
    if str(cfg.get("test_ckpt", "best")) not in TEST_CKPT_CHOICES:
        problems.append(f"test_ckpt={cfg.get('test_ckpt')!r}: expected one of {list(TEST_CKPT_CHOICES)}")
    if str(cfg.get("pipeline", "standard")) not in PIPELINE_CHOICES:
        problems.append(f"pipeline={cfg.get('pipeline')!r}: expected one of {list(PIPELINE_CHOICES)}")
    objective = str(cfg.get("objective", "val/auc"))
    metric = objective.removeprefix("val/").removeprefix("video_")
    if not objective.startswith("val/"):
        problems.append(
            f"objective={objective!r}: expected a validation metric such as val/auc or val/video_eer "
            "(a checkpoint is never selected on a test set)"
        )
    elif metric not in METRIC_NAMES:
        problems.append(f"objective={objective!r}: no metric {metric!r}; expected val/<metric> or val/video_<metric> with <metric> in {list(METRIC_NAMES)}")
    trainer = cfg.get("trainer") or {}
    max_epochs, max_steps = trainer.get("max_epochs"), trainer.get("max_steps", -1)
    if max_epochs is not None and (not _is_int(max_epochs) or max_epochs == 0 or max_epochs < -1):
        problems.append(
            f"trainer.max_epochs={max_epochs!r}: expected an integer >= 1 (0 would write results of an untrained model)"
        )
    if max_steps is not None and (not _is_int(max_steps) or max_steps == 0 or max_steps < -1):
        problems.append(f"trainer.max_steps={max_steps!r}: expected -1 (no limit) or an integer >= 1")
    for key in ("limit_train_batches", "limit_val_batches"):
        limit = trainer.get(key)
        if limit is not None and (not _is_number(limit) or limit <= 0):
            problems.append(f"trainer.{key}={limit!r}: expected a fraction in (0, 1] or a number of batches >= 1")
    detector = OmegaConf.to_container(cfg.detector, resolve=True) if cfg.get("detector") is not None else {}
    for where, lr in _learning_rates(detector, "detector"):
        floor = "min" in where.rsplit(".", 1)[-1]  # a schedule's floor (min_lr) may be 0
        if lr is not None and (not _is_number(lr) or not math.isfinite(lr) or lr < 0 or (lr == 0 and not floor)):
            problems.append(f"{where}={lr!r}: expected a learning rate {'>= 0' if floor else '> 0'} (a finite number)")
    for name, weight in (detector.get("aux_loss_weights") or {}).items():
        if not _is_number(weight) or not math.isfinite(weight) or weight < 0:
            problems.append(f"detector.aux_loss_weights.{name}={weight!r}: expected a finite weight >= 0 (0 only logs the loss)")
    input_size = detector.get("input_size")
    if input_size is not None and (not _is_int(input_size) or input_size < 8):
        problems.append(f"detector.input_size={input_size!r}: expected an integer number of pixels >= 8")
    data = cfg.get("data") or {}
    for key in ("batch_size", "eval_batch_size"):
        value = data.get(key)
        if value is not None and (not _is_int(value) or value < 1):
            problems.append(f"data.{key}={value!r}: expected an integer >= 1")
    workers = data.get("num_workers")
    if workers is not None and (not _is_int(workers) or workers < 0):
        problems.append(f"data.num_workers={workers!r}: expected an integer >= 0")
    place = data.get("normalize_on")
    if place is not None and place not in NORMALIZE_ON:
        problems.append(f"data.normalize_on={place!r}: expected one of {list(NORMALIZE_ON)}")
    for split, value in (data.get("frames_per_video") or {}).items():
        if not _is_int(value) or value < 1:
            problems.append(f"data.frames_per_video.{split}={value!r}: expected an integer >= 1")
    try:
        GuardSettings.from_config(OmegaConf.to_container(cfg.guards, resolve=True) if cfg.get("guards") is not None else None)
    except (TypeError, ValueError) as error:
        problems.append(str(error))
    return problems


def check_config(cfg: DictConfig) -> None:
    """Raise :class:`UserConfigError` listing every problem of the config (see :func:`config_problems`)."""
    problems = config_problems(cfg)
    if problems:
        raise UserConfigError("invalid config:\n  " + "\n  ".join(problems))


def patch_strides(model: torch.nn.Module) -> list[tuple[str, int]]:
    """Convolutions applied to the image whose kernel equals their stride (ViT patch embeddings,
    ConvNeXt stems): they ignore the pixels past the last whole patch."""
    found = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Conv2d) and module.in_channels == 3 and module.padding in ((0, 0), "valid"):
            if module.kernel_size == module.stride and module.stride[0] > 1:
                found.append((name, int(module.stride[0])))
    return found


def check_model(model: torch.nn.Module, input_size: int) -> None:
    """``input_size`` must be a multiple of every patch size of the model's image stems."""
    for name, patch in patch_strides(model):
        if input_size % patch:
            lower, upper = input_size - input_size % patch, input_size - input_size % patch + patch
            raise UserConfigError(
                f"detector.input_size={input_size} is not a multiple of the patch size {patch} of {type(model).__name__}"
                f".{name}: the last {input_size % patch} pixel rows and columns would be ignored; use {lower} or {upper}"
            )


def _missing_files(files: Iterable[str]) -> list[str]:
    """Files that do not exist, found with one directory listing per folder."""
    by_folder: dict[str, list[str]] = defaultdict(list)
    for file in files:
        by_folder[os.path.dirname(file)].append(file)
    missing = []
    for folder, wanted in by_folder.items():
        try:
            present = set(os.listdir(folder))
        except OSError:
            missing.extend(wanted)
            continue
        missing.extend(f for f in wanted if os.path.basename(f) not in present)
    return missing


def check_data(datamodule: Any) -> None:
    """After ``datamodule.setup``: every frame file of train, validation and each test set exists,
    and the first frame of each set decodes."""
    from datamodules.frame_dataset import load_rgb

    tables = {"train": datamodule.train_table, "val": datamodule.val_set.frames}
    tables.update({f"test.{s.name}": s.frames for s in datamodule.test_sets})
    checked: set[str] = set()
    for name, table in tables.items():
        files = [f for f in table["file"].astype(str).unique() if f not in checked]
        missing = _missing_files(files)
        if missing:
            raise UserConfigError(
                f"set {name!r}: {len(missing)} of {len(files)} frame file(s) do not exist (e.g. {missing[:3]}); expected "
                "every file the index lists. Re-run the preparation (docs/DATASETS.md) or delete the synthetic cache to regenerate it"
            )
        checked.update(files)
        if len(table):
            load_rgb(str(table["file"].iloc[0]))  # UnreadableImageError names the file


def checkpoint_bytes(model: torch.nn.Module) -> int:
    """Room the run's checkpoints need at once (estimate: weights + Adam moments, best + last + temp)."""
    parameters = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    return (_CHECKPOINT_COPIES * parameters + buffers) * _CHECKPOINTS_AT_ONCE + _SPACE_MARGIN_BYTES


def check_output_dir(output_dir: Path, needed_bytes: int) -> None:
    """The run directory can be written and holds ``needed_bytes`` free."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        probe = output_dir / f".write_probe_{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as error:
        raise UserConfigError(
            f"run directory {str(output_dir)!r} is not writable ({error.strerror or error}); expected a directory this "
            "user can write (set paths.log_dir or hydra.run.dir)"
        ) from error
    free = shutil.disk_usage(output_dir).free
    if free < needed_bytes:
        raise UserConfigError(
            f"run directory {str(output_dir)!r}: {free / 2**20:.0f} MiB free, the checkpoints need about "
            f"{needed_bytes / 2**20:.0f} MiB; free space or set paths.log_dir to a larger disk"
        )
