"""OmegaConf resolvers the configs use: collision-free run ids, W&B offline mode and grouping, data-loader workers."""

from __future__ import annotations

import datetime as dt
import netrc
import os
from pathlib import Path

from omegaconf import OmegaConf

_RUN_ID: str | None = None


def run_id() -> str:
    """``YYYY-mm-dd_HH-MM-SS_ffffff`` + pid (+ SLURM job id): two runs started in the same second,
    on the same or different nodes, never share a directory. Fixed for the life of the process."""
    global _RUN_ID
    if _RUN_ID is None:
        stamp = dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")
        slurm = os.environ.get("SLURM_JOB_ID")
        _RUN_ID = f"{stamp}_p{os.getpid()}" + (f"_j{slurm}" if slurm else "")
    return _RUN_ID


def wandb_has_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        auth = netrc.netrc(os.environ.get("NETRC", str(Path.home() / ".netrc")))
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].rstrip("/")
    return auth.authenticators(host) is not None


def wandb_offline() -> bool:
    """Offline unless an API key is configured (or WANDB_MODE=online forces it)."""
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in {"offline", "disabled", "dryrun"}:
        return True
    if mode == "online":
        return False
    return not wandb_has_key()


def _hydra_value(key: str) -> object | None:
    """A value of the running Hydra config, or None outside Hydra or when it is not set."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    return OmegaConf.select(HydraConfig.get(), key, default=None, throw_on_missing=False)


def group_choice(group: str, *, _root_: object) -> object | None:
    """``${choice:experiment}``: the option chosen for a config group (None when none is), so a
    config says its own name once. Hydra's ``${hydra:runtime.choices.<group>}`` needs the running
    Hydra config, which a plain ``hydra.compose`` (tests, benchmarks) does not set; this reads the
    composed config's own ``hydra`` node when it has one (``return_hydra_config=True``), else the
    running Hydra config (run.py, engine/compose.py)."""
    own = OmegaConf.select(_root_, "hydra.runtime.choices", default=None)  # type: ignore[arg-type]
    if own is not None:
        return own.get(group)
    return _hydra_value(f"runtime.choices.{group}")


def wandb_group(experiment_name: str | None, task_name: str) -> str:
    """Runs are grouped by experiment, and by sweep inside a multirun (its sweep directory name)."""
    group = experiment_name or task_name
    sweep_dir = _hydra_value("sweep.dir")
    if sweep_dir is not None and str(_hydra_value("mode")) == "RunMode.MULTIRUN":
        group = f"{group}/{Path(str(sweep_dir)).name}"
    return group


def run_name() -> str:
    num = _hydra_value("job.num")
    if str(_hydra_value("mode")) == "RunMode.MULTIRUN" and num is not None:
        return f"{run_id()}_job{num}"
    return run_id()


def root_dir() -> str:
    """``FACEMOE_ROOT``, else the directory the command was started in.

    A resolver rather than ``${oc.env:FACEMOE_ROOT,${hydra:runtime.cwd}}``: OmegaConf evaluates that
    fallback even when the variable is set, and a multirun resolves ``hydra.sweep.dir`` (which
    depends on the paths) before Hydra's config is set, so ``${hydra:...}`` fails there. The working
    directory is the launching one in every job too: ``hydra.job.chdir`` is false, submitit's local
    jobs keep it and SLURM starts a batch job in the directory it was submitted from."""
    return os.environ.get("FACEMOE_ROOT") or os.getcwd()


def data_workers(most: object = 8) -> int:
    """``${data_workers:N}``: data-loader workers, at most N, within the CPUs this process may use."""
    from engine.threads import data_workers as workers

    return workers(most)


def register_resolvers() -> None:
    resolvers = {"choice": group_choice, "run_id": run_id, "wandb_offline": wandb_offline, "wandb_group": wandb_group,
                 "run_name": run_name, "facemoe_root": root_dir, "data_workers": data_workers}
    for name, fn in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn, use_cache=False)
