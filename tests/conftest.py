"""Shared test fixtures: composing the Hydra config the way run.py does, and one embedded
synthetic dataset cache per test session (generated once, reused by every test)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """The session's synthetic data cache (FACEMOE_TEST_CACHE reuses one across sessions)."""
    shared = os.environ.get("FACEMOE_TEST_CACHE")
    return Path(shared) if shared else tmp_path_factory.mktemp("synthetic")


def compose(overrides: list[str], output_dir: Path, synthetic_root: Path | None = None):
    """Compose ``conf/train.yaml`` as run.py would, with the run directory at ``output_dir``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict, read_write

    from engine.resolvers import register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    extra = [f"paths.log_dir={output_dir / 'logs'}", "logger=csv"]
    if synthetic_root is not None:
        extra.append(f"data.synthetic.root={synthetic_root}")
        extra.append("data.synthetic.progress=false")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = hydra_compose("train", overrides=[*extra, *overrides], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with read_write(cfg.hydra.runtime), open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        HydraConfig.instance().set_config(cfg)
        cfg.paths.output_dir = str(output_dir)
        del cfg["hydra"]  # run.py's job config has no hydra node either
    return cfg
