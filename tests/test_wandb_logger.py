"""The W&B logger survives the loss of W&B's service process (SLURM's SIGTERM reaches it too): the
attempt goes on to its preemption checkpoint, and the dropped calls are counted and reported."""

from __future__ import annotations

import logging

import pytest
from conftest import compose

from callbacks.wandb_logger import ResilientWandbLogger


class _DeadService:
    def __init__(self, error: Exception):
        self.error, self.calls = error, 0

    def log(self, *args, **kwargs):
        self.calls += 1
        raise self.error


def _logger(tmp_path, error: Exception) -> tuple[ResilientWandbLogger, _DeadService]:
    logger = ResilientWandbLogger(save_dir=str(tmp_path), offline=True, project="test")
    service = _DeadService(error)
    logger._experiment = service  # what .experiment returns once the run exists
    return logger, service


def test_a_lost_connection_is_reported_once_then_calls_are_dropped_and_counted(tmp_path, caplog):
    logger, service = _logger(tmp_path, ConnectionResetError("Connection lost"))
    with caplog.at_level(logging.WARNING, logger="callbacks.wandb_logger"):
        logger.log_metrics({"train/loss": 0.5}, step=1)  # does not raise into the training loop
        logger.log_metrics({"train/loss": 0.4}, step=2)
        logger.log_metrics({"train/loss": 0.3}, step=3)
        logger.finalize("success")
    assert service.calls == 1  # nothing more is sent to the dead service
    assert logger.dropped_calls == 3 and "Connection lost" in logger.connection_error
    messages = [r.getMessage() for r in caplog.records]
    assert sum("lost its service connection in log_metrics" in m for m in messages) == 1
    assert any("3 call(s) of this attempt were dropped" in m for m in messages)


def test_other_errors_are_raised_as_before(tmp_path):
    logger, _ = _logger(tmp_path, ValueError("bad metric"))
    with pytest.raises(ValueError, match="bad metric"):
        logger.log_metrics({"train/loss": 0.5}, step=1)
    assert logger.connection_error is None and logger.dropped_calls == 0


def test_the_wandb_logger_config_uses_it(tmp_path):
    cfg = compose(["experiment=baseline_multidomain", "scale=demo", "logger=wandb"], tmp_path)
    assert cfg.logger.wandb._target_ == "callbacks.wandb_logger.ResilientWandbLogger"


class _DeadRun(_DeadService):
    """A W&B run object whose service died: config, summary writes and file saves raise."""

    @property
    def summary(self):
        return self

    @property
    def config(self):
        return self

    def update(self, *args, **kwargs):
        self.log()

    def define_metric(self, *args, **kwargs):
        self.log()

    def __setitem__(self, key, value):
        self.log()

    def save(self, *args, **kwargs):
        self.log()


def test_the_run_summary_and_test_figures_go_through_the_same_guard(tmp_path, caplog):
    """Before training the pipeline gives W&B the config; after testing it writes W&B's summary and attaches the run's files
    (engine/run_logging.py), and figures are logged (callbacks/plots.py): on a dead service each is
    dropped and counted like a metric, so results.json and the CSV logger still end the run."""
    from callbacks.plots import log_figures
    from engine.run_logging import log_run_outcome

    logger = ResilientWandbLogger(save_dir=str(tmp_path), offline=True, project="test")
    service = _DeadRun(ConnectionResetError("Connection lost"))
    logger._experiment = service
    (tmp_path / "results.json").write_text("{}")
    from engine.run_logging import log_run_config

    log_run_config([logger], {"detector": {"num_experts": 4}})
    results = {"validation": {"objective": {"value": 0.9}, "checkpoint": "best.ckpt"}}
    with caplog.at_level(logging.WARNING, logger="callbacks.wandb_logger"):
        log_run_outcome([logger], tmp_path, results)
        log_figures([logger], [tmp_path / "roc.png", tmp_path / "scores.png"], prefix="plots/robustness")
        logger.finalize("success")
    assert service.calls == 1 and logger.dropped_calls == 4
    messages = [r.getMessage() for r in caplog.records]
    assert any("lost its service connection in the run config" in m for m in messages)


def test_a_plain_wandb_logger_still_raises(tmp_path):
    """``call_wandb`` guards only the suite's logger; a ``WandbLogger`` configured by hand behaves as Lightning's."""
    from lightning.pytorch.loggers import WandbLogger

    from callbacks.wandb_logger import call_wandb

    logger = WandbLogger(save_dir=str(tmp_path), offline=True, project="test")
    with pytest.raises(ConnectionResetError):
        call_wandb(logger, "a call", _DeadService(ConnectionResetError("Connection lost")).log)


def test_wandb_import_telemetry_goes_through_the_guard(tmp_path):
    """A W&B run hooks the import of libraries it watches; on a dead service the hook raised
    ConnectionResetError out of ``import sklearn`` (the test figures failed that way)."""
    import types

    from wandb.sdk.lib import import_hooks

    logger, service = _logger(tmp_path, ConnectionResetError("Connection lost"))
    service.id = "run1234"
    calls = []

    def telemetry_hook(module):  # what W&B registers per run and watched module
        calls.append(module.__name__)
        raise ConnectionResetError("Connection lost")

    import_hooks.register_post_import_hook(telemetry_hook, "run1234", "facemoe_fake_module")
    try:
        assert logger.experiment is service  # the run's hooks are guarded when the logger hands it out
        import_hooks.notify_module_loaded(types.ModuleType("facemoe_fake_module"))  # does not raise
    finally:
        import_hooks.unregister_post_import_hook("facemoe_fake_module", "run1234")
    assert calls == ["facemoe_fake_module"]
    assert logger.dropped_calls == 1 and "Connection lost" in logger.connection_error

