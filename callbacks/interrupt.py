"""Interrupt a run on purpose: send a signal to the training process at a given epoch and batch,
once per run directory. For checking preemption and resume (tests, CI, a cluster's debug
partition): ``+callbacks.interrupt={_target_: callbacks.interrupt.SignalAt, epoch: 1, batch: 2,
signal: SIGTERM}``. The marker file ``.signal_sent_<signal>_e<epoch>_b<batch>`` in the run
directory keeps a resumed attempt from being interrupted again at the same point."""

from __future__ import annotations

import logging
import os
import signal as signals
from pathlib import Path

import lightning as L

log = logging.getLogger(__name__)


class SignalAt(L.Callback):
    def __init__(self, epoch: int, batch: int, signal: str = "SIGTERM"):
        self.epoch, self.batch = int(epoch), int(batch)
        self.signal = getattr(signals, signal)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) != (self.epoch, self.batch) or not trainer.is_global_zero:
            return
        marker = Path(trainer.default_root_dir) / f".signal_sent_{self.signal.name}_e{self.epoch}_b{self.batch}"
        if marker.exists():
            return
        marker.write_text(str(os.getpid()))
        log.warning("sending %s to this process (epoch %d, batch %d)", self.signal.name, self.epoch, self.batch)
        os.kill(os.getpid(), self.signal)
