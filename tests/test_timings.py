"""callbacks/timings.py: each phase of a run is logged and written to results.json extra.timings."""

from __future__ import annotations

import logging
import time

import pytest
from conftest import NO_FIGURES, compose

from callbacks.timings import PhaseClock
from engine.pipeline import run
from evaluation.results import load_results


def test_phase_clock_records_blocks_also_when_they_raise():
    clock = PhaseClock()
    with clock.phase("data"):
        time.sleep(0.01)
    with pytest.raises(RuntimeError), clock.phase("fit"):
        raise RuntimeError("boom")
    with clock.phase("data"):  # a phase entered twice adds up
        time.sleep(0.01)
    timings = clock.as_dict()
    assert set(timings) == {"data_s", "fit_s"} and timings["data_s"] >= 0.02


def test_run_writes_phase_and_epoch_timings(tmp_path, synthetic_root, caplog):
    cfg = compose(
        ["experiment=baseline_multidomain", "scale=demo", "trainer.max_epochs=2", "+trainer.limit_train_batches=2",
         "+trainer.limit_val_batches=1", "+trainer.limit_test_batches=1", *NO_FIGURES],
        tmp_path, synthetic_root,
    )
    # Phases and epochs are logged by callbacks.timings, the thread plan by engine.threads.
    with caplog.at_level(logging.INFO, logger="engine"), caplog.at_level(logging.INFO, logger="callbacks"):
        run(cfg)
    timings = load_results(tmp_path / "results.json")["extra"]["timings"]
    phases = ("data_s", "synthetic_pretraining_s", "model_setup_s", "fit_s", "select_s", "test_s")
    assert set(phases) <= set(timings) and all(timings[p] >= 0 for p in phases)
    assert [e["epoch"] for e in timings["epochs"]] == [0, 1]
    assert all(e["train_s"] > 0 and e["val_s"] > 0 for e in timings["epochs"])
    # fit holds model setup and both epochs (training and validation)
    inside = timings["model_setup_s"] + sum(e["train_s"] + e["val_s"] for e in timings["epochs"])
    assert inside <= timings["fit_s"] + 1e-3
    logged = caplog.text
    assert "phase data:" in logged and "phase test:" in logged and "epoch 1: train" in logged
    assert "threads:" in logged and "intra-op" in logged
