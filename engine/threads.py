"""How many CPU threads and data-loader workers a run uses, chosen from the CPUs the process may use.

A process may use fewer CPUs than the machine has: its CPU affinity (``taskset``, SLURM's
``--cpu-bind``, ``cpuset`` cgroups), SLURM's ``SLURM_CPUS_PER_TASK``, or a CPU quota of its cgroup
(``cpu.max`` in cgroup v2, ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` in v1; what Docker's
``--cpus`` and Kubernetes limits set). PyTorch sizes its intra-op pool from the machine's cores, so
a job given 4 of a node's 64 cores starts 32 threads that fight over 4 CPUs: every parallel region
then waits at its barrier for threads the scheduler has parked. :func:`cpu_budget` is the smallest
of these limits, and :func:`plan_threads` turns it into torch's intra-op and inter-op thread counts
and a data-loader worker count (``${data_workers:N}`` in conf/data: at most N, within the budget).

``threads`` in conf/train.yaml overrides any of them (``threads.intra_op=4``); ``auto`` takes
``OMP_NUM_THREADS`` when the user set it, else the budget. :func:`apply_threads` is called first by every entry point that trains (``run.py``'s
pipeline, the synthetic CLIP pretraining and the dVAE tokenizer under it, ``python -m
engine.tokenizer``). Why this matters on a busy machine, measured: docs/BENCHMARKS.md, "Busy machine".
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.choices import check_known_keys

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")


@dataclass(frozen=True)
class CpuBudget:
    """``cpus`` this process may keep busy, and what set it (``{"affinity": 2, "cgroup": 1.5, ...}``)."""

    cpus: int
    limits: dict[str, float]

    def describe(self) -> str:
        return ", ".join(f"{k}={v:g}" for k, v in self.limits.items()) or "no limit found"


def affinity_cpus() -> int | None:
    """CPUs in this process's affinity mask (None where the OS does not report one, e.g. macOS)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def slurm_cpus(environ: Mapping[str, str]) -> int | None:
    """``SLURM_CPUS_PER_TASK`` (set by ``--cpus-per-task``); a malformed value stops with its text."""
    raw = environ.get("SLURM_CPUS_PER_TASK")
    if raw is None or raw.strip() == "":
        return None
    return _int_at_least(raw, 1, f"SLURM_CPUS_PER_TASK={raw!r}: expected a positive integer")


def _int_at_least(raw: int | str, minimum: int, message: str) -> int:
    """``int(raw)`` when it is a whole number of at least ``minimum``; otherwise ``ValueError(message)``."""
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(message) from None
    if value < minimum:
        raise ValueError(message)
    return value


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _quota_v2(directory: Path) -> float | None:
    """``cpu.max`` = ``"<quota> <period>"`` or ``"max <period>"`` (no limit)."""
    text = _read(directory / "cpu.max")
    if not text:
        return None
    parts = text.split()
    if parts[0] == "max" or len(parts) != 2:
        return None
    return int(parts[0]) / int(parts[1])


def _quota_v1(directory: Path) -> float | None:
    """``cpu.cfs_quota_us`` (-1: no limit) over ``cpu.cfs_period_us``."""
    quota, period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
    if quota is None or period is None or int(quota) <= 0 or int(period) <= 0:
        return None
    return int(quota) / int(period)


def _ancestors(root: Path, relative: str) -> list[Path]:
    """``root/relative`` and every directory above it up to ``root``: a parent's quota limits its children."""
    parts = [p for p in relative.strip("/").split("/") if p and p != ".."]
    return [root.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def cgroup_cpus(root: Path = CGROUP_ROOT, self_cgroup: Path = PROC_SELF_CGROUP) -> float | None:
    """The smallest CPU quota (in CPUs, may be fractional) of this process's cgroup and its ancestors,
    cgroup v2 (``0::<path>``) or v1 (the ``cpu`` controller's line); None when there is no quota."""
    text = _read(self_cgroup) or ""
    quotas: list[float] = []
    for line in text.splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        hierarchy, controllers, relative = fields
        if hierarchy == "0" and controllers == "":  # cgroup v2 (unified)
            directories, reader = _ancestors(root, relative), _quota_v2
        elif "cpu" in controllers.split(","):  # cgroup v1, mounted as cpu, cpu,cpuacct or cpuacct,cpu
            mounts = [root / name for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu", controllers)]
            directories = [d for mount in dict.fromkeys(mounts) if mount.is_dir() for d in _ancestors(mount, relative)]
            reader = _quota_v1
        else:
            continue
        # Inside a container the cgroup path is often that of the host while the mount shows the
        # container's own cgroup at the root: the root is always looked at (it is the last ancestor).
        quotas.extend(q for q in map(reader, directories) if q is not None)
    return min(quotas) if quotas else None


def cpu_budget(
    environ: Mapping[str, str] | None = None, affinity: int | None | str = "probe", cgroup: float | None | str = "probe"
) -> CpuBudget:
    """The CPUs this process may use: the smallest of its affinity, ``SLURM_CPUS_PER_TASK`` and its
    cgroup quota (rounded down, at least 1); the machine's core count only when none is known.
    ``affinity`` and ``cgroup`` are probed unless given (tests pass them)."""
    environ = os.environ if environ is None else environ
    limits: dict[str, float] = {}
    found_affinity = affinity_cpus() if affinity == "probe" else affinity
    if found_affinity is not None:
        limits["affinity"] = found_affinity
    found_slurm = slurm_cpus(environ)
    if found_slurm is not None:
        limits["slurm"] = found_slurm
    found_cgroup = cgroup_cpus() if cgroup == "probe" else cgroup
    if found_cgroup is not None:
        limits["cgroup"] = found_cgroup
    if not limits:
        limits["machine"] = os.cpu_count() or 1
    return CpuBudget(max(1, math.floor(min(limits.values()))), limits)


@dataclass(frozen=True)
class ThreadPlan:
    intra_op: int
    inter_op: int
    budget: CpuBudget


def _count(settings: Mapping, key: str, default: int) -> int:
    value = settings.get(key, "auto")
    if value is None or value == "auto":
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"threads.{key}={value!r}: expected auto or a positive integer")
    return value


def plan_threads(
    settings: Mapping | None = None, budget: CpuBudget | None = None, environ: Mapping[str, str] | None = None
) -> ThreadPlan:
    """Torch's thread counts from the ``threads`` config (``auto`` or a positive integer per key).

    ``auto``: intra-op = ``OMP_NUM_THREADS`` when the user set it (the usual way to ask for a count),
    else the CPU budget; inter-op = 1 (the suite runs no inter-op parallel work on the CPU, and each
    inter-op thread would start its own intra-op pool)."""
    settings = dict(settings or {})
    check_known_keys("threads", settings, ("intra_op", "inter_op"))
    budget = budget or cpu_budget()
    environ = os.environ if environ is None else environ
    intra = budget.cpus
    raw = environ.get("OMP_NUM_THREADS", "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"OMP_NUM_THREADS={raw!r}: expected a positive integer")
        intra = int(raw)
    return ThreadPlan(_count(settings, "intra_op", intra), _count(settings, "inter_op", 1), budget)


def data_workers(most: int | str = 8, budget: CpuBudget | None = None) -> int:
    """Data-loader workers: at most ``most``, and one CPU left to the training process (0 with one CPU).
    The ``${data_workers:N}`` resolver of conf/data."""
    most = _int_at_least(most, 0, f"${{data_workers:{most}}}: expected a non-negative integer")
    budget = budget or cpu_budget()
    return max(0, min(most, budget.cpus - 1))


def prefer_passive_waiting(environ: dict | None = None) -> bool:
    """``OMP_WAIT_POLICY=PASSIVE`` unless the user set a policy: idle OpenMP threads sleep at once instead
    of spinning. Spinning threads burn the CPU time that the thread they wait for (and every other
    process) needs; on a loaded machine this is what makes a demo run collapse (docs/BENCHMARKS.md,
    "Busy machine"). OpenMP reads the variable when torch loads it, so this must run before
    ``import torch``: entry points call it first (run.py, tests/conftest.py). True when it was set."""
    environ = os.environ if environ is None else environ
    if "OMP_WAIT_POLICY" in environ:
        return False
    environ["OMP_WAIT_POLICY"] = "PASSIVE"
    if "torch" in sys.modules:
        log.warning("OMP_WAIT_POLICY=PASSIVE was set after torch was imported: it applies to subprocesses only")
    return True


_APPLIED: ThreadPlan | None = None


def apply_threads(settings: Mapping | None = None) -> ThreadPlan:
    """Set torch's intra-op and inter-op threads from :func:`plan_threads` and log why. Torch allows the
    inter-op count to be set once per process, before any inter-op work: a later call that asks for
    another count keeps the first one and says so."""
    import torch

    global _APPLIED
    plan = plan_threads(settings)
    torch.set_num_threads(plan.intra_op)
    inter_op = plan.inter_op
    if torch.get_num_interop_threads() != inter_op:
        try:
            torch.set_num_interop_threads(inter_op)
        except RuntimeError:  # already started in this process (a second run in one process, tests)
            inter_op = torch.get_num_interop_threads()
            log.info("inter-op threads stay %d (torch sets them once per process)", inter_op)
    _APPLIED = plan
    log.info(
        "threads: %d intra-op, %d inter-op; CPU budget %d (%s; the machine has %s cores)",
        plan.intra_op, inter_op, plan.budget.cpus, plan.budget.describe(), os.cpu_count(),
    )
    return plan
