"""The history of a run directory across attempts (a SLURM requeue, a rerun after a crash):
``attempts.json`` lists every attempt (start, end, how it ended, wall time, the checkpoint it
resumed from, the SLURM job, torch's intra-op thread count), ``csv/metrics.csv`` is appended to rather than rewritten
(callbacks/csv_logger.py), and the W&B
run id is kept in ``wandb_run_id`` so every attempt logs into the same W&B run."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import socket
import string
import time
from pathlib import Path
from typing import Any

from evaluation.results import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

ATTEMPTS_FILE = "attempts.json"
WANDB_ID_FILE = "wandb_run_id"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Attempts:
    """``<run dir>/attempts.json``: :meth:`start` appends this attempt, :meth:`end` closes it."""

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / ATTEMPTS_FILE
        self.records: list[dict[str, Any]] = []
        self._started = time.time()

    def _read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        try:
            records = json.loads(self.path.read_text(encoding="utf-8"))["attempts"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{self.path}: unreadable attempt history ({error}); expected {{'attempts': [...]}}") from error
        return list(records)

    def next_number(self) -> int:
        """The number the next :meth:`start` gives this attempt (1 for a new run directory)."""
        return len(self._read()) + 1

    def intra_op_threads(self) -> int | None:
        """The intra-op thread count the latest earlier attempt recorded (None: none recorded one)."""
        for record in reversed(self._read()):
            if isinstance(record.get("intra_op_threads"), int):
                return record["intra_op_threads"]
        return None

    def start(self, resumed_from: str | None, intra_op_threads: int | None = None) -> dict[str, Any]:
        self._started = time.time()
        self.records = self._read()
        for record in self.records:
            if record.get("end") is None:  # SIGKILL, OOM kill, node failure: no end was recorded
                record["end"] = "killed (no end recorded)"
        record = {
            "attempt": len(self.records) + 1,
            "started_utc": _now(),
            "resumed_from": resumed_from,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
            "slurm_restart_count": int(os.environ.get("SLURM_RESTART_COUNT", 0) or 0),
            "intra_op_threads": intra_op_threads,  # CPU results depend on it; a resume keeps it (engine/threads.py)
            "end": None,
            "wall_time_s": None,
        }
        self.records.append(record)
        self._write()
        return record

    def end(self, how: str) -> None:
        if not self.records:
            return
        self.records[-1].update(end=how, ended_utc=_now(), wall_time_s=round(time.time() - self._started, 3))
        self._write()

    def _write(self) -> None:
        atomic_write_json(self.path, {"attempts": self.records})

    def summary(self) -> dict[str, Any]:
        """For ``results.json``: how many attempts, whether the run was resumed, total wall time
        (this attempt up to now plus the recorded ones; killed attempts count as unknown)."""
        previous = self.records[:-1]
        known = [r["wall_time_s"] for r in previous if r.get("wall_time_s") is not None]
        return {
            "count": len(self.records),
            "resumed": any(r.get("resumed_from") for r in self.records),
            "total_wall_time_s": round(sum(known) + (time.time() - self._started), 3),
            "attempts_without_wall_time": len(previous) - len(known),
            "history": self.records,
        }


def wandb_service_owner(token: str) -> str | None:
    """The pid (as text) of the process that started the W&B service a ``WANDB_SERVICE`` token
    (``3-<pid>-...``) names; None for an empty or unknown token."""
    parts = token.split("-", 2)
    return parts[1] if len(parts) == 3 else None


def own_wandb_service() -> None:
    """Make this process start its own W&B service instead of joining one it inherited.

    wandb puts its service's address in ``WANDB_SERVICE`` (``3-<pid of the process that started it>-...``)
    and child processes join that service. When an attempt of a run is killed (SIGKILL, OOM) its
    stream stays open in the shared service, and the next attempt, continuing the same run id, is
    refused: ``run ID <id> is in use``. A token whose pid is not this process's is dropped here (with a
    log line); a service this process started itself (several runs in one process) is kept."""
    token = os.environ.get("WANDB_SERVICE", "")
    owner = wandb_service_owner(token)
    if token and owner != str(os.getpid()):
        log.info("W&B: not joining the W&B service inherited from process %s (WANDB_SERVICE); this run starts its own", owner or "?")
        os.environ.pop("WANDB_SERVICE")


def wandb_run_id(run_dir: str | os.PathLike) -> str:
    """The W&B run id of this run directory, created on the first attempt and read by later ones."""
    path = Path(run_dir) / WANDB_ID_FILE
    if path.is_file():
        value = path.read_text(encoding="utf-8").strip()
        if value:
            return value
    # W&B's own ids: 8 characters of [a-z0-9].
    value = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, value + "\n")
    return value
