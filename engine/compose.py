"""Compose ``conf/train.yaml`` outside ``run.py`` (tests, benchmarks) exactly as a run sees it."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict, read_write

from engine.resolvers import register_resolvers

CONF = Path(__file__).resolve().parent.parent / "conf"


def compose_run_config(overrides: list[str], output_dir: Path, config_name: str = "train") -> DictConfig:
    """The job config of ``python run.py <overrides>`` (``eval.py``, ``predict.py``: ``config_name``
    ``eval``, ``predict``) with its run directory at ``output_dir``:
    ``hydra:`` interpolations resolve against it, and (as in run.py's job config) there is no
    ``hydra`` node."""
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    with read_write(cfg.hydra.runtime), open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        HydraConfig.instance().set_config(cfg)
        cfg.paths.output_dir = str(output_dir)
        del cfg["hydra"]
    return cfg
