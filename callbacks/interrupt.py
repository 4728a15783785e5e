"""Interrupt a run on purpose: send a signal to the training process at a given epoch and batch,
once per run directory. For checking preemption and resume (tests, CI, a cluster's debug
partition): ``+callbacks.interrupt={_target_: callbacks.interrupt.SignalAt, epoch: 1, batch: 2,
signal: SIGTERM}``. The marker file ``.signal_sent_<signal>_e<epoch>_b<batch>`` in the run
directory keeps a resumed attempt from being interrupted again at the same point.

``target: wandb_service`` sends the signal to W&B's service process (``wandb-core``, a child of
this process) instead: what SLURM's SIGTERM on a requeue does to it, without stopping the run
(tests/test_resume.py checks that such a run still completes)."""

from __future__ import annotations

import logging
import os
import signal as signals
from pathlib import Path

import lightning as L

log = logging.getLogger(__name__)


TARGETS = ("self", "wandb_service")


class SignalAt(L.Callback):
    def __init__(self, epoch: int, batch: int, signal: str = "SIGTERM", target: str = "self"):
        self.epoch, self.batch = int(epoch), int(batch)
        self.signal = getattr(signals, signal)
        if target not in TARGETS:
            raise ValueError(f"SignalAt target={target!r}; expected one of {TARGETS}")
        self.target = target

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) != (self.epoch, self.batch) or not trainer.is_global_zero:
            return
        suffix = "" if self.target == "self" else f"_{self.target}"
        marker = Path(trainer.default_root_dir) / f".signal_sent_{self.signal.name}{suffix}_e{self.epoch}_b{self.batch}"
        if marker.exists():
            return
        pids = [os.getpid()] if self.target == "self" else wandb_service_pids()
        if not pids:
            raise RuntimeError("SignalAt target=wandb_service: this process has no W&B service child (wandb-core); "
                               "is logger=wandb on?")
        marker.write_text(" ".join(map(str, pids)))
        log.warning("sending %s to %s (pid %s; epoch %d, batch %d)", self.signal.name,
                    "this process" if self.target == "self" else "W&B's service process",
                    ",".join(map(str, pids)), self.epoch, self.batch)
        for pid in pids:
            os.kill(pid, self.signal)


def wandb_service_pids() -> list[int]:
    """The pids of W&B service processes (``wandb-core``) started by this process (Linux: /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, rest = stat.read_text().split(" (", 1)
            name, fields = rest.rsplit(") ", 1)
        except (OSError, ValueError):
            continue  # the process ended meanwhile
        if name == "wandb-core" and int(fields.split()[1]) == os.getpid():
            found.append(int(pid))
    return found
