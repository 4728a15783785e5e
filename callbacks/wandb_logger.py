"""Lightning's W&B logger, kept from failing a job when W&B's service process dies mid-run.

On a SLURM requeue or preemption, SLURM sends SIGTERM to every process of the job step, W&B's
service process included. The suite's own handler (callbacks/resume.py) stops training at the next
batch boundary after writing ``last.ckpt``. But the next call to W&B before that boundary raises
``ConnectionResetError: Connection lost``; the attempt would then end in an error instead of a
checkpoint and a requeue (seen in the SLURM checks, tests/test_slurm.py).

Here the first lost connection is reported once, W&B stops for the rest of the attempt, and every
dropped call is counted and reported when the logger is finalised. Once its W&B run exists, every
W&B call of a run goes through :meth:`ResilientWandbLogger.call`: Lightning's logging methods
(wrapped below), the suite's own (the config, the run summary and files, engine/run_logging.py;
test and robustness figures, callbacks/plots.py), and W&B's import telemetry. That last one is the
hidden one: a W&B run hooks the import of about a hundred libraries (sklearn, joblib, ...) to tell
its service which were imported, so once the service was dead the first ``import sklearn`` anywhere
in the run raised ``ConnectionResetError`` (measured: the test figures failed that way). Creating
the W&B run is not guarded (a W&B that cannot start is the job's error), nor are ``watch`` and the
model upload of ``log_model``, which the suite does not use.

The CSV logger still has every metric, ``results.json`` every result, and the next attempt
continues the same W&B run (``engine.attempts.wandb_run_id``). Only the errors of a lost service
are caught (:func:`service_lost_errors`); any other error from W&B is raised as before.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from lightning.pytorch.loggers import WandbLogger

log = logging.getLogger(__name__)

_GUARDED = ("log_metrics", "log_hyperparams", "log_table", "log_text", "log_image", "log_audio", "log_video",
            "after_save_checkpoint")


class ResilientWandbLogger(WandbLogger):
    """:class:`WandbLogger` that survives the loss of W&B's service process (see the module docstring).
    ``dropped_calls`` counts the W&B calls it skipped after the connection was lost."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.connection_error: str | None = None
        self.dropped_calls = 0
        self._guarded_imports_of: str | None = None  # the run whose import hooks go through call()

    def call(self, what: str, fn: Callable[..., Any], *args, **kwargs) -> Any:
        """``fn(*args, **kwargs)``, a call to W&B described by ``what``; None (and counted) once the
        connection to W&B's service is lost, the first loss reported with ``what``."""
        if self.connection_error is not None:
            self.dropped_calls += 1
            return None
        try:
            return fn(*args, **kwargs)
        except service_lost_errors() as error:
            self.connection_error = f"{type(error).__name__}: {error}"
            self.dropped_calls += 1
            log.warning("W&B lost its service connection in %s (%s), most likely because a SIGTERM (SLURM requeue "
                        "or preemption) reached its service process; W&B logging stops for this attempt, "
                        "the run goes on, the CSV logger and results.json keep everything", what, self.connection_error)
            return None

    @property
    def experiment(self) -> Any:
        experiment = super().experiment
        run_id = getattr(experiment, "id", None)  # not a str on ranks > 0 (Lightning's dummy experiment)
        if isinstance(run_id, str) and run_id != getattr(self, "_guarded_imports_of", None):
            self._guarded_imports_of = run_id
            self._guard_import_telemetry(run_id)
        return experiment

    def _guard_import_telemetry(self, run_id: str) -> None:
        """Route W&B's post-import hooks of run ``run_id`` through :meth:`call` (module docstring)."""
        try:
            from wandb.sdk.lib import import_hooks

            lock, hooks = import_hooks._post_import_hooks_lock, import_hooks._post_import_hooks
        except (ImportError, AttributeError) as error:  # a wandb whose internals moved
            log.warning("W&B: could not guard W&B's import telemetry (%s); if W&B's service dies, a later "
                        "import of a library W&B watches can raise ConnectionResetError", error)
            return
        with lock:
            for name, by_id in hooks.items():
                hook = by_id.get(run_id)
                if hook is not None:
                    by_id[run_id] = functools.partial(self.call, f"W&B's telemetry on importing {name}", hook)

    def finalize(self, status: str) -> None:
        if self.connection_error is None:
            super().finalize(status)
            return
        log.warning("W&B: %d call(s) of this attempt were dropped after W&B's service connection was lost "
                    "(%s); the CSV logger has every metric", self.dropped_calls, self.connection_error)


@functools.cache
def service_lost_errors() -> tuple[type[BaseException], ...]:
    """What W&B raises once its service process is gone: ``ConnectionError`` (``ConnectionResetError``,
    ``BrokenPipeError``) from its socket, and its mailbox errors for a call that waited for a reply."""
    errors: list[type[BaseException]] = [ConnectionError]
    try:
        from wandb.sdk.mailbox.mailbox import MailboxClosedError
        from wandb.sdk.mailbox.mailbox_handle import HandleAbandonedError

        errors += [MailboxClosedError, HandleAbandonedError]
    except ImportError:  # another wandb layout: its socket errors are still caught
        pass
    return tuple(errors)


def call_wandb(logger: WandbLogger, what: str, fn: Callable[..., Any], *args, **kwargs) -> Any:
    """``fn(*args, **kwargs)`` through ``logger``'s guard when it has one (a plain ``WandbLogger``
    configured by hand calls W&B directly, as Lightning does)."""
    if isinstance(logger, ResilientWandbLogger):
        return logger.call(what, fn, *args, **kwargs)
    return fn(*args, **kwargs)


def _guarded(name: str):
    method = getattr(WandbLogger, name)

    @functools.wraps(method)
    def guarded(self: ResilientWandbLogger, *args, **kwargs):
        return self.call(name, method, self, *args, **kwargs)

    return guarded


for _name in _GUARDED:
    setattr(ResilientWandbLogger, _name, _guarded(_name))
