"""conf/debug/ (fast_dev_run, overfit, limit_batches, profiler) and conf/hparams_search/optuna.yaml
compose to what they promise; the fast dev run and the profiler run end to end on the demo."""

from __future__ import annotations

import pytest
from conftest import CONF, NO_FIGURES, compose

from engine.pipeline import run
from evaluation.results import load_results

DEMO = ["experiment=baseline_multidomain", "scale=demo"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("fast_dev_run", {"trainer.fast_dev_run": True}),
        ("overfit", {"trainer.overfit_batches": 2, "trainer.max_epochs": 20}),
        ("limit_batches", {"trainer.limit_train_batches": 3, "trainer.limit_test_batches": 2, "trainer.max_epochs": 2}),
        ("profiler", {"trainer.profiler._target_": "lightning.pytorch.profilers.SimpleProfiler"}),
    ],
)
def test_debug_config_composes(name, expected, tmp_path):
    from omegaconf import OmegaConf

    cfg = compose([*DEMO, f"debug={name}"], tmp_path)
    for key, value in expected.items():
        assert OmegaConf.select(cfg, key) == value, key
    assert cfg.task_name == "debug" and cfg.trainer.accelerator == "cpu" and cfg.data.num_workers == 0
    assert cfg.logger.get("wandb") is None


def test_optuna_search_config_composes(tmp_path):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from engine.resolvers import register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = hydra_compose("train", overrides=[*DEMO, "hparams_search=optuna"], return_hydra_config=True)
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper")
    assert cfg.hydra.sweeper.direction == "maximize" and cfg.objective == "val/auc"
    assert set(cfg.hydra.sweeper.params) == {"detector.optimizer.lr", "detector.optimizer.weight_decay"}


def test_debug_fast_dev_run_and_profiler_run(tmp_path, synthetic_root):
    run(compose([*DEMO, "debug=fast_dev_run", *NO_FIGURES], tmp_path / "fdr", synthetic_root))
    assert load_results(tmp_path / "fdr" / "results.json")["extra"]["complete_evaluation"] is False
    run(compose([*DEMO, "debug=profiler", "trainer.limit_train_batches=2", *NO_FIGURES], tmp_path / "prof", synthetic_root))
    profiles = list((tmp_path / "prof").glob("*profile*.txt"))
    assert profiles and "run_training_epoch" in profiles[0].read_text()
