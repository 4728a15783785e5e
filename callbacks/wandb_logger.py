"""Lightning's W&B logger, kept from failing a job when W&B's service process dies mid-run.

On a SLURM requeue or preemption, SLURM sends SIGTERM to every process of the job step, W&B's
service process included. The suite's own handler (callbacks/resume.py) stops training at the next
batch boundary after writing ``last.ckpt``. But the next ``log_metrics`` before that boundary
raises ``ConnectionResetError: Connection lost`` in the training loop. The attempt then ends in an
error instead of a checkpoint and a requeue (seen in the SLURM checks, tests/test_slurm.py).

Here the first lost connection is reported once, W&B logging stops for the rest of the attempt, and
every dropped call is counted and reported when the logger is finalised. The CSV logger still has
every metric, and the next attempt continues the same W&B run (``engine.attempts.wandb_run_id``).
Only connection errors are caught; any other error from W&B is raised as before.
"""

from __future__ import annotations

import functools
import logging

from lightning.pytorch.loggers import WandbLogger

log = logging.getLogger(__name__)

_GUARDED = ("log_metrics", "log_hyperparams", "log_table", "log_text", "log_image", "log_audio", "log_video",
            "after_save_checkpoint")


class ResilientWandbLogger(WandbLogger):
    """:class:`WandbLogger` that survives the loss of W&B's service process (see the module docstring).
    ``dropped_calls`` counts the logging calls it skipped after the connection was lost."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.connection_error: str | None = None
        self.dropped_calls = 0

    def finalize(self, status: str) -> None:
        if self.connection_error is None:
            super().finalize(status)
            return
        log.warning("W&B: %d logging call(s) of this attempt were dropped after W&B's service connection was lost "
                    "(%s); the CSV logger has every metric", self.dropped_calls, self.connection_error)


def _guarded(name: str):
    method = getattr(WandbLogger, name)

    @functools.wraps(method)
    def call(self: ResilientWandbLogger, *args, **kwargs):
        if self.connection_error is not None:
            self.dropped_calls += 1
            return None
        try:
            return method(self, *args, **kwargs)
        except ConnectionError as error:  # ConnectionResetError / BrokenPipeError from W&B's service socket
            self.connection_error = f"{type(error).__name__}: {error}"
            self.dropped_calls += 1
            log.warning("W&B lost its service connection in %s (%s), most likely because a SIGTERM (SLURM requeue "
                        "or preemption) reached its service process; W&B logging stops for this attempt, "
                        "training goes on, the CSV logger keeps every metric", name, self.connection_error)
            return None

    return call


for _name in _GUARDED:
    setattr(ResilientWandbLogger, _name, _guarded(_name))
