"""What a run tells its loggers beyond the training curves: the resolved config (W&B config,
TensorBoard hparams, CSV ``csv/hparams.yaml``), W&B summary metrics, and the run's files.

- ``log_run_config`` (before fitting): every logger gets the resolved config. W&B and TensorBoard
  get it flattened to dotted keys (``detector.num_experts``, ``protocol.name``: the names of
  Hydra overrides, so a sweep's knob is a filter / group-by column), plus ``groups.<group>``, the
  config-group choices (``groups.detector=dfmoe``). CSV gets it nested, next to ``metrics.csv``.
  W&B's summary keeps the best (not the last) ``val/auc`` / ``val/ap`` and the lowest EERs.
- ``log_run_outcome`` (after testing): W&B summary of the tested checkpoint (``selected/*``,
  ``objective``, per-set test metrics, M_EER), TensorBoard's ``hp_metric`` = the objective, and
  every result file of the run directory attached to the W&B run (``ATTACHED``: results.json,
  predictions, robustness results, and everything under ``plots/``, where plotting callbacks
  write their PNGs).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from omegaconf import OmegaConf

from callbacks.wandb_logger import call_wandb

log = logging.getLogger(__name__)

# Run-directory files attached to the W&B run (globs relative to the run directory).
ATTACHED = ("results.json", "robustness.json", "predictions/*.csv",
            "plots/**/*", ".hydra/*.yaml")
# W&B summary: best value over epochs instead of the last one.
SUMMARY_MAX = ("val/auc", "val/ap", "val/video_auc", "val/video_ap")
SUMMARY_MIN = ("val/eer", "val/video_eer", "val/acer")


def _scalar(value: Any) -> Any:
    """A config leaf as a logger accepts it: numbers, strings, booleans and None as they are, lists
    as compact JSON (``[2, 4]``), so they stay one filterable value."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted keys; lists (and anything else) are leaves."""
    if isinstance(node, Mapping) and (node or not prefix):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: _scalar(node)}


def group_choices() -> dict[str, str]:
    """The config-group choices of the running Hydra job (``detector: dfmoe``), empty outside Hydra."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    choices = OmegaConf.to_container(HydraConfig.get().runtime.choices, resolve=True) or {}
    return {str(k): str(v) for k, v in choices.items() if v is not None and not str(k).startswith("hydra/")}


def flat_config(config: Mapping[str, Any], choices: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The resolved config (``OmegaConf.to_container(cfg, resolve=True)``) as dotted keys, plus
    ``groups.<group>`` for each config-group choice."""
    flat = flatten(config)
    choices = group_choices() if choices is None else choices
    flat.update({f"groups.{group}": choice for group, choice in choices.items()})
    return flat


def log_run_config(loggers: Iterable[Logger], config: Mapping[str, Any]) -> dict[str, Any]:
    """Give every logger the resolved config (resolved once by the run: a resolve of the whole config
    costs ~0.2-0.45 s on a CPU core); returns the flattened form."""
    flat = flat_config(config)
    for logger in loggers:
        if isinstance(logger, CSVLogger):
            logger.log_hyperparams({**config, "groups": group_choices()})
        elif isinstance(logger, WandbLogger):
            call_wandb(logger, "the run config", _wandb_config, logger.experiment, flat)
        else:  # TensorBoard and others: their own flattening / sanitising of the dotted dict
            logger.log_hyperparams(flat)
    return flat


def summary_metrics(results: Mapping[str, Any]) -> dict[str, float]:
    """Summary values of a results.json dict: the tested checkpoint's validation (``selected/...``),
    the objective, every test set's frame and video metrics and M_EER. Undefined metrics are left out."""
    out: dict[str, float] = {}

    def put(key: str, value: Any) -> None:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out[key] = float(value)

    validation = results.get("validation") or {}
    for level, metrics in (validation.get("metrics") or {}).items():
        for name, value in metrics.items():
            put(f"selected/val_{'' if level == 'frame' else 'video_'}{name}", value)
    objective = validation.get("objective") or {}
    put("objective", objective.get("value"))
    for test_set, levels in (results.get("tests") or {}).items():
        for level, metrics in levels.items():
            for name, value in metrics.items():
                put(f"test/{test_set}/{'' if level == 'frame' else 'video_'}{name}", value)
    for level, value in ((results.get("summary") or {}).get("m_eer") or {}).items():
        put(f"test/{'' if level == 'frame' else 'video_'}m_eer", value)
    return out


def attached_files(output_dir: Path) -> list[Path]:
    files = {p for pattern in ATTACHED for p in output_dir.glob(pattern) if p.is_file()}
    return sorted(files)


def save_patterns(files: list[Path], output_dir: Path) -> list[str]:
    """``<dir>/*`` for a sub-folder whose files are all attached (one W&B save, one notice), else the files."""
    chosen = set(files)
    patterns: list[str] = []
    for parent in sorted({p.parent for p in files}):
        members = [p for p in parent.iterdir() if p.is_file()]
        whole = parent != output_dir and all(p in chosen for p in members)
        if whole and not any(c in set("*?[") for c in str(parent)):
            patterns.append(str(parent / "*"))
        else:
            patterns.extend(str(p) for p in sorted(members) if p in chosen)
    return patterns


def log_run_outcome(loggers: Iterable[Logger], output_dir: Path, results: Mapping[str, Any]) -> None:
    """After testing (rank 0): W&B summary and files, TensorBoard's hp_metric."""
    summary = summary_metrics(results)
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            call_wandb(logger, "the run summary and files", _wandb_outcome, logger.experiment, output_dir, results, summary)
        elif isinstance(logger, TensorBoardLogger) and "objective" in summary:
            logger.log_metrics({"hp_metric": summary["objective"]})
            logger.save()


def _wandb_config(run: Any, flat: Mapping[str, Any]) -> None:
    run.config.update(dict(flat), allow_val_change=True)
    for key in SUMMARY_MAX:
        run.define_metric(key, summary="max")
    for key in SUMMARY_MIN:
        run.define_metric(key, summary="min")


def _wandb_outcome(run: Any, output_dir: Path, results: Mapping[str, Any], summary: Mapping[str, float]) -> None:
    for key, value in summary.items():
        run.summary[key] = value
    run.summary["selected/checkpoint"] = str((results.get("validation") or {}).get("checkpoint"))
    files = attached_files(output_dir)
    for pattern in save_patterns(files, output_dir):
        run.save(pattern, base_path=str(output_dir), policy="now", glob=pattern.endswith("/*"))
    log.info("attached %d run files to the W&B run (%s)", len(files), ", ".join(ATTACHED))
