"""Fail-soft sweep jobs: a job that raises records ``failed.json`` in its directory and returns NaN,
so the other jobs of a sweep finish and the aggregator marks exactly that cell.

Why it is needed (Hydra 1.3.8, hydra-submitit-launcher 1.2.0, measured): with the basic launcher
and with submitit every job of a batch runs, but the sweeper then re-raises the first failed
job's exception, so ``python run.py -m`` exits with an error and never starts later batches
(``hydra.sweeper.max_batch_size``); a submitit job whose process dies (OOM kill, segfault)
raises ``UncompletedJobError`` in the submitting process while the other jobs keep running.
With ``fail_soft: true`` an exception inside the job becomes a record plus a NaN objective
(which Optuna-style sweepers treat as a failed trial), and the sweep exits normally.

Only ``Exception`` is caught: ``KeyboardInterrupt`` and ``SystemExit`` (Lightning's
``SIGTERMException`` on a SLURM time-out / pre-emption is a ``SystemExit``) pass through, so
requeueing keeps working. A job that later succeeds (rerun, requeued and resumed) removes its
stale ``failed.json``. Under DDP every rank records the same failure into the same file
(atomically); a failure on one rank only leaves the others waiting for the collective timeout.

Wiring (run.py)::

    from engine.failures import run_fail_soft
    ...
    return run_fail_soft(run, cfg)      # instead of ``return run(cfg)``

and ``fail_soft: false`` in ``conf/train.yaml`` (``conf/sweep/base.yaml``, shared by every sweep, sets it to true).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import socket
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from evaluation.results import atomic_write_json

log = logging.getLogger(__name__)

FAILED_FILE_NAME = "failed.json"
FAILURE_SCHEMA_VERSION = 1


def run_fail_soft(task: Callable[[DictConfig], float | None], cfg: DictConfig) -> float | None:
    """``task(cfg)``; with ``cfg.fail_soft`` true an ``Exception`` is recorded and NaN returned.

    The record goes to ``<cfg.paths.output_dir>/failed.json`` (see :func:`write_failure`).
    Without ``fail_soft`` (or false) the exception propagates unchanged.
    """
    if not bool(OmegaConf.select(cfg, "fail_soft", default=False)):
        return task(cfg)
    where = OmegaConf.select(cfg, "paths.output_dir", default=None)
    if where is None:
        raise ValueError(
            "fail_soft=true needs paths.output_dir (the job directory that receives failed.json)"
        )
    output_dir = Path(str(where))
    try:
        objective = task(cfg)
    except Exception as error:  # any failure inside the job becomes a marked cell
        path = write_failure(output_dir, error, hydra_job_info(), resolved_config(cfg))
        log.exception("job failed; recorded in %s and returning NaN (fail_soft=true)", path)
        return math.nan
    stale = output_dir / FAILED_FILE_NAME
    if stale.exists():
        stale.unlink()
        log.info("removed %s left by an earlier failed attempt of this job", stale)
    return objective


def write_failure(
    output_dir: str | os.PathLike,
    error: BaseException,
    job: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``failed.json`` atomically: exception type, message, traceback, host, time, the
    Hydra job info and the resolved ``config`` (so the aggregator can place the failed cell)."""
    record = {
        "schema_version": FAILURE_SCHEMA_VERSION,
        "status": "failed",
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "exception_type": f"{type(error).__module__}.{type(error).__qualname__}",
        "message": str(error),
        "traceback": "".join(traceback.format_exception(type(error), error, error.__traceback__)),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "job": dict(job or {}),
        "config": dict(config or {}),
    }
    return atomic_write_json(Path(output_dir) / FAILED_FILE_NAME, record)


def read_failure(job_dir: str | os.PathLike) -> dict | None:
    """The ``failed.json`` of a job directory, or None when there is none.

    An unreadable file still counts as a failure: it is returned with its parse error as message.
    """
    path = Path(job_dir) / FAILED_FILE_NAME
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        return {"status": "failed", "exception_type": "unreadable failed.json", "message": f"{path}: {error}"}
    if not isinstance(record, dict):
        return {
            "status": "failed",
            "exception_type": "unreadable failed.json",
            "message": f"{path}: not a JSON object",
        }
    return record


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """``cfg`` as plain containers, resolved where possible (a failing interpolation may be
    what made the job fail; then the unresolved config is recorded)."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # the record must be written whatever broke
        return OmegaConf.to_container(cfg, resolve=False)


def hydra_job_info() -> dict[str, Any]:
    """Job number, id and task overrides of the running Hydra job ({} outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    hydra_cfg = HydraConfig.get()
    return {
        "num": OmegaConf.select(hydra_cfg, "job.num", default=None),
        "id": OmegaConf.select(hydra_cfg, "job.id", default=None),
        "overrides": list(OmegaConf.select(hydra_cfg, "overrides.task", default=[]) or []),
        "mode": str(OmegaConf.select(hydra_cfg, "mode", default=None)),
    }
