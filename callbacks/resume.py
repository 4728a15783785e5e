"""The checkpoints a run resumes from: ``last.ckpt`` at the end of every training epoch, and one at
the next batch boundary after a preemption signal, after which the job stops.

Preemption has one owner. Under a submitit launcher, submitit decides whether a job is requeued
(it counts time-outs against ``max_num_timeout`` and calls ``scontrol requeue``); Lightning's own
SLURM handler (SIGUSR1, ``hpc_ckpt_*.ckpt``, a second ``scontrol requeue``) is switched off by the
pipeline (``SLURMEnvironment(auto_requeue=False)``). What neither can do is save at a consistent
point: a signal arrives in the middle of an optimiser step. So this callback catches the signals
itself (SIGTERM: ``scontrol requeue``, preemption, a time limit, ``kill``; SIGUSR2: submitit's
warning ``signal_delay_s`` before the time limit), writes ``last.ckpt`` once the step is done, and
then hands over: SIGUSR2 goes to submitit's handler (which requeues the job and exits), SIGTERM
ends the run with :class:`Preempted` (exit code 128 + signal, a message saying where the
checkpoint is). SLURM requeues a job itself after ``scontrol requeue`` or a requeue preemption,
whatever the exit code. Under DDP the ranks agree on the batch to stop at (one all-reduce per step).

A stop signal also ends the attempt when it arrives outside training (validation selection, testing,
writing results): :func:`record_stop_signals` makes the job remember every stop signal it received,
whoever handles it, and the job (engine/jobs.py) then turns an error of the rest of the attempt that
such a stop causes into :class:`Preempted` (:func:`stopped_attempt`). Such errors are expected:
SLURM's SIGTERM reaches every process of the job step, W&B's service process too, so a later W&B
call raises ``ConnectionResetError``; a write may be cut short. Reported as the job's result, the
error would end the sweep with a failure while SLURM already runs the job's next attempt (seen in
tests/test_slurm.py). Other errors (bugs) and a stop that submitit refuses stay the job's failure.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint

log = logging.getLogger(__name__)

LAST_NAME = "last.ckpt"
CHECKPOINT_KEY = "facemoe_resume"  # top-level checkpoint entry: what the run was, for resume checks


class Preempted(SystemExit):
    """The run stopped on a signal after writing its checkpoint. A ``SystemExit``: fail-soft sweeps
    never record it as a failed job, and the process exits non-zero (128 + signal number)."""

    def __init__(self, signum: int, message: str):
        super().__init__(128 + int(signum))
        self.signum = int(signum)
        self.message = message

    def __str__(self) -> str:
        return self.message


_received: list[int] = []  # the stop signals this job received, in order (record_stop_signals)
_refused: list[BaseException] = []  # what the stop handlers raised: submitit refusing to requeue


class _Recording:
    """A signal handler that records the signal, then runs the handler it replaced. An exception
    (not a SystemExit) from that handler is a refused stop (submitit after ``max_num_timeout``
    requeues: ``UncompletedJobError``): it stays the job's failure (:func:`stop_signal_behind`)."""

    def __init__(self, handler: Any):
        self.handler = handler

    def __call__(self, signum: int, frame) -> Any:
        _received.append(int(signum))
        try:
            return self.handler(signum, frame)
        except Exception as error:
            _refused.append(error)
            raise


def record_stop_signals(names: tuple[str, ...] = ("SIGTERM", "SIGUSR2")) -> None:
    """Start a job's record of stop signals (see the module docstring): forget earlier jobs' signals
    (several jobs may run in one process) and wrap the Python handlers installed now (submitit's),
    so each of these signals is recorded before its handler runs. A default or ignored handler is
    left alone (a default SIGTERM ends the process anyway); :class:`ResumeCheckpoints` records the
    signals it catches itself."""
    _received.clear()
    _refused.clear()
    if threading.current_thread() is not threading.main_thread():
        return
    for name in names:
        signum = getattr(signal, name)
        handler = signal.getsignal(signum)
        if callable(handler) and not isinstance(handler, _Recording):
            signal.signal(signum, _Recording(handler))


def received_stop_signal() -> int | None:
    """The first stop signal this job received (:func:`record_stop_signals`), else None."""
    return _received[0] if _received else None


def stop_errors() -> tuple[type[BaseException], ...]:
    """The errors a stop signal can cause in the rest of an attempt: OS errors (W&B's socket to its
    killed service, a write cut short, a broken pipe), end of file, torch.distributed's errors (a
    peer that stopped first) and W&B's errors of a lost service. Anything else (a KeyError, a wrong
    shape, an assertion) is a bug, and stays the job's failure even after a stop signal."""
    import torch.distributed as dist

    from callbacks.wandb_logger import service_lost_errors

    dist_errors = (dist.DistError,) if hasattr(dist, "DistError") else ()
    return (OSError, EOFError, *dist_errors, *service_lost_errors())


def stop_signal_behind(error: BaseException) -> int | None:
    """The stop signal that explains ``error``, raised in the rest of an attempt after it: the first
    recorded signal when ``error`` (or what it was raised from) is one of :func:`stop_errors` and
    no stop handler raised it; else None (``error`` is the job's to report)."""
    signum = received_stop_signal()
    if signum is None:
        return None
    chain, seen = [], set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        chain.append(cause)
        cause = cause.__cause__
    if any(link is refused for link in chain for refused in _refused):
        return None
    caused = stop_errors()
    return signum if any(isinstance(link, caused) for link in chain) else None


def stopped_attempt(error: Exception) -> Preempted | None:
    """The :class:`Preempted` that ``error`` becomes when a stop signal explains it
    (:func:`stop_signal_behind`), chained to it by the caller; else None. The error and its
    traceback are logged first."""
    signum = stop_signal_behind(error)
    if signum is None:
        return None
    name = signal.Signals(signum).name
    message = (f"{type(error).__name__} after {name}: {error}. The attempt was ending on {name} "
               "(preemption, requeue or time limit), so this ends it as stopped, not as the job's result; "
               "a requeued job resumes from its last checkpoint")
    log.error("%s", message, exc_info=error)
    return Preempted(signum, message)


class ResumeCheckpoints(Checkpoint):
    """``<dirpath>/last.ckpt`` after every training epoch and at the first batch boundary after one of
    ``signals``; ``signature`` (what the run trains) goes into every checkpoint it writes.

    A ``Checkpoint`` so that Lightning runs it after the other callbacks, the configured
    ``ModelCheckpoint`` (placed before it) included: ``last.ckpt`` then records the epoch's new best."""

    def __init__(self, dirpath: str | Path, signals: tuple[str, ...] = ("SIGTERM", "SIGUSR2"), signature: dict | None = None):
        self.dirpath = Path(dirpath)
        self.signals = tuple(getattr(signal, name) for name in signals)
        self.signature = dict(signature or {})
        self.pending: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def last_path(self) -> Path:
        return self.dirpath / LAST_NAME

    # -- signals -----------------------------------------------------------------------------
    def _on_signal(self, signum: int, frame) -> None:
        _received.append(int(signum))
        if self.pending is None:
            log.warning("received %s: writing %s at the next batch boundary, then stopping", signal.Signals(signum).name, self.last_path)
            self.pending = signum

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if threading.current_thread() is not threading.main_thread():
            log.warning("training runs outside the main thread: preemption signals are not handled")
            return
        # Installed after Lightning's own handlers (registered when fit starts), replacing them
        # while training runs: Lightning's SIGTERM handling would stop without a consistent save.
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore_handlers()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore_handlers()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore_handlers()

    def _stop_requested(self, trainer: L.Trainer) -> bool:
        stop = self.pending is not None
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
            if stop and self.pending is None:
                self.pending = signal.SIGTERM  # another rank was signalled
        return stop

    # -- checkpoints ---------------------------------------------------------------------------
    def _save(self, trainer: L.Trainer, why: str) -> None:
        # The full training state (optimiser, schedulers, loops, callbacks) that a resume needs; saying it
        # keeps Lightning from logging a "defaulting" line. Loading stays weights_only=True.
        trainer.save_checkpoint(str(self.last_path), weights_only=False)
        log.info("saved %s (%s, epoch %d, global step %d)", self.last_path, why, trainer.current_epoch, trainer.global_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._stop_requested(trainer):
            self._save(trainer, "preemption signal")
            self._stop(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer, "end of epoch")
        if self._stop_requested(trainer):
            self._stop(trainer)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = {"signature": self.signature}

    def _stop(self, trainer: L.Trainer) -> None:
        signum = int(self.pending)
        name = signal.Signals(signum).name
        previous = self._previous.get(signum)
        self._restore_handlers()
        message = (
            f"stopped on {name} at epoch {trainer.current_epoch}, global step {trainer.global_step}: checkpoint "
            f"{self.last_path} written; the run resumes from it when started again in the same run directory "
            "(ckpt_path=auto; a requeued SLURM job does this by itself)"
        )
        log.error(message)
        if signum != signal.SIGTERM and callable(previous):
            # submitit's USR2 handler: requeues the job and exits (SystemExit), or raises
            # UncompletedJobError when it may not (max_num_timeout reached: a real failure, which
            # propagates); on ranks other than 0 it returns.
            try:
                previous(signum, None)
            except SystemExit:
                message += "; submitit requeued the job"
        raise Preempted(signum, message)
