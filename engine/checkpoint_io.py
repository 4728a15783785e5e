"""Atomic checkpoint files: every checkpoint the trainer writes goes to a temporary file in the same
directory, is flushed to disk, then renamed over the target. A full disk, a crash or a SIGKILL in
the middle of a save leaves the previous ``last.ckpt`` intact, never a truncated one that would
block every later resume. (Lightning's own save writes the target in place.)"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from evaluation.results import atomic_open

log = logging.getLogger(__name__)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)`` through a temporary file + fsync + rename (``evaluation.results.atomic_open``)."""
    with atomic_open(path, binary=True) as handle:
        torch.save(obj, handle)
    return Path(path)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO whose saves are atomic (:func:`atomic_torch_save`)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        atomic_torch_save(checkpoint, path)
