"""Launcher profiles: every one composes with the README's command (no ``paths.*`` override), the
CPU SLURM profile never asks Lightning for 0 devices, and the README's submitit_local sweep runs
from a fresh directory (slow). The SLURM profiles on a real cluster: tests/test_slurm.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import CONF, REPO
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from engine.resolvers import register_resolvers

LAUNCHERS = sorted(p.stem for p in (CONF / "launcher").glob("*.yaml"))


def compose_launcher(overrides: list[str]):
    """The job config of ``python run.py -m <overrides>`` (Hydra's config included)."""
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_every_launcher_resolves_its_sweep_dir_without_path_overrides(launcher, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a fresh directory
    for name in ("FACEMOE_ROOT", "FACEMOE_LOGS"):
        monkeypatch.delenv(name, raising=False)
    cfg = compose_launcher(["experiment=baseline_multidomain", "scale=demo", f"launcher={launcher}"])
    sweep_dir = OmegaConf.select(cfg, "hydra.sweep.dir")
    assert sweep_dir.startswith(str(tmp_path / "logs" / "train" / "multiruns")), sweep_dir
    launcher_cfg = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher_cfg["submitit_folder"].startswith(sweep_dir)


def test_cpu_slurm_profile_uses_one_device_per_task_never_zero():
    from hydra.core.hydra_config import HydraConfig

    cfg = compose_launcher(["experiment=baseline_multidomain", "scale=demo", "launcher=submitit_slurm_cpu"])
    HydraConfig.instance().set_config(cfg)
    assert cfg.hydra.launcher.gpus_per_node is None  # no --gpus-per-node on a CPU partition
    assert cfg.trainer.accelerator == "cpu" and cfg.trainer.devices == 1
    cfg = compose_launcher(["experiment=baseline_multidomain", "launcher=submitit_slurm_cpu", "hydra.launcher.tasks_per_node=2"])
    HydraConfig.instance().set_config(cfg)
    assert cfg.trainer.devices == 2 and cfg.trainer.strategy == "ddp"


@pytest.mark.slow
def test_readme_submitit_local_sweep_from_a_fresh_directory(tmp_path, synthetic_root):
    """``python run.py -m experiment=baseline_multidomain scale=demo seed=1,2 launcher=submitit_local``
    started in an empty directory; only the data cache is shared (FACEMOE_CACHE, as a user would)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "synthetic").symlink_to(synthetic_root, target_is_directory=True)
    work = tmp_path / "fresh"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("FACEMOE_ROOT", "FACEMOE_LOGS")}
    env.update(OMP_NUM_THREADS="1", WANDB_MODE="offline", WANDB_SILENT="true", FACEMOE_CACHE=str(cache), PYTHONPATH=str(REPO))
    args = [sys.executable, str(REPO / "run.py"), "-m", "experiment=baseline_multidomain", "scale=demo", "seed=1,2",
            "launcher=submitit_local"]
    done = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    sweeps = list((work / "logs" / "train" / "multiruns").iterdir())
    assert len(sweeps) == 1
    for job in ("0", "1"):
        results = json.loads((sweeps[0] / job / "results.json").read_text())
        assert results["extra"]["complete_evaluation"] is True and results["config"]["seed"] == int(job) + 1
