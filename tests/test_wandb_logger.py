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
    assert any("3 logging call(s) of this attempt were dropped" in m for m in messages)


def test_other_errors_are_raised_as_before(tmp_path):
    logger, _ = _logger(tmp_path, ValueError("bad metric"))
    with pytest.raises(ValueError, match="bad metric"):
        logger.log_metrics({"train/loss": 0.5}, step=1)
    assert logger.connection_error is None and logger.dropped_calls == 0


def test_the_wandb_logger_config_uses_it(tmp_path):
    cfg = compose(["experiment=baseline_multidomain", "scale=demo", "logger=wandb"], tmp_path)
    assert cfg.logger.wandb._target_ == "callbacks.wandb_logger.ResilientWandbLogger"
