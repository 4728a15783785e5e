"""Resuming a run: which checkpoint, and whether it may be resumed with this config.

A checkpoint written by this suite carries the run's *signature* (the detector config, seed and
batch size it trained with; ``callbacks.resume.CHECKPOINT_KEY``). Resuming with a different
detector, different parameter shapes, or a changed optimiser / scheduler / learning rate would
either fail deep inside ``load_state_dict`` or, worse, silently keep the checkpoint's optimiser
state (its learning rate) while ``results.json`` records the new value. So a mismatch stops the run
before training with one message naming the checkpoint, each differing key and both values.
Things that may change between attempts: ``trainer.max_epochs`` (train longer), devices, loggers,
paths, test sets.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from callbacks.resume import CHECKPOINT_KEY, LAST_NAME
from engine.attempts import Attempts

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"  # <run dir>/checkpoints/
# Detector keys that only matter when weights are first built: a resume overwrites them.
INIT_ONLY_KEYS = ("pretrained", "teacher_checkpoint")


class ResumeMismatchError(ValueError):
    """The checkpoint to resume was trained with something this run would do differently."""


def resolve_resume(ckpt_path: object, output_dir: Path) -> str | None:
    """``auto``: the run directory's ``checkpoints/last.ckpt`` when it exists; a path must exist."""
    if ckpt_path in (None, "", "null", "none"):
        return None
    if ckpt_path == "auto":
        last = output_dir / CHECKPOINT_DIR / LAST_NAME
        return str(last) if last.is_file() else None
    path = Path(str(ckpt_path)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path!r}: no such checkpoint file (expected auto, null or an existing .ckpt)")
    return str(path)


def resumed_thread_count(checkpoint: str | None) -> int | None:
    """The intra-op thread count the attempts of ``checkpoint``'s run directory trained with (the latest
    one recorded in its ``attempts.json``), or None: no checkpoint, a checkpoint outside a run directory
    (``<run dir>/checkpoints/``), or a history without it (older runs). An unreadable history is logged
    and ignored: it costs the pin (engine/threads.py), not the run."""
    if not checkpoint or Path(checkpoint).parent.name != CHECKPOINT_DIR:
        return None
    try:
        return Attempts(Path(checkpoint).parent.parent).intra_op_threads()
    except ValueError as error:
        log.warning("thread count of the resumed run unknown (%s): threads as configured", error)
        return None


def run_signature(cfg: DictConfig) -> dict[str, Any]:
    """What a resumed run must share with the run that wrote the checkpoint."""
    detector = OmegaConf.to_container(cfg.detector, resolve=True)
    for key in INIT_ONLY_KEYS:
        detector.pop(key, None)
    return {
        "detector": detector,
        "seed": int(cfg.seed),
        "batch_size": int(OmegaConf.select(cfg, "data.batch_size", default=0) or 0),
        "accumulate_grad_batches": int(OmegaConf.select(cfg, "trainer.accumulate_grad_batches", default=1) or 1),
    }


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out or {prefix: {}}
    return {prefix: value}


def signature_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``key: checkpoint value -> this run's value`` for every key that differs."""
    old, new = _flatten(saved), _flatten(current)
    missing = object()
    lines = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, missing), new.get(key, missing)
        if a != b:
            show = lambda v: "(absent)" if v is missing else repr(v)  # noqa: E731
            lines.append(f"{key}: {show(a)} -> {show(b)}")
    return lines


def check_resume(path: str, cfg: DictConfig, model: torch.nn.Module) -> None:
    """Refuse to resume ``path`` when its signature or parameter shapes differ from this run's."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    saved = (checkpoint.get(CHECKPOINT_KEY) or {}).get("signature")
    current = run_signature(cfg)
    if saved:
        differences = signature_differences(saved, current)
        if differences:
            old_target = saved.get("detector", {}).get("_target_")
            raise ResumeMismatchError(
                f"cannot resume {path}: it was trained as {old_target} with a different config than this run "
                f"({current['detector'].get('_target_')}). Differences (checkpoint -> this run):\n  "
                + "\n  ".join(differences)
                + "\nA resume keeps the checkpoint's weights and optimiser state (learning rate included), so these "
                "values would not apply. Start a new run directory, or set ckpt_path=null to train from scratch here."
            )
    weights = checkpoint.get("state_dict", {})
    expected = model.state_dict()
    problems = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
                for k, v in weights.items() if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
    problems += [f"{k}: in the checkpoint, not in the model" for k in weights if k not in expected]
    problems += [f"{k}: in the model, not in the checkpoint" for k in expected if k not in weights]
    if problems:
        shown = problems[:10] + ([f"... and {len(problems) - 10} more"] if len(problems) > 10 else [])
        raise ResumeMismatchError(
            f"cannot resume {path}: its weights do not fit {type(model).__name__} "
            f"({cfg.detector.get('_target_')}, input_size {cfg.detector.get('input_size')}):\n  " + "\n  ".join(shown)
        )
