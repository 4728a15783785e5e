"""The CPUs this process may use: the smallest of its CPU affinity (``taskset``, SLURM's
``--cpu-bind``, ``cpuset`` cgroups), SLURM's ``SLURM_CPUS_PER_TASK`` and the CPU quota of its cgroup
(``cpu.max`` in cgroup v2, ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` in v1; what Docker's ``--cpus``
and Kubernetes limits set); the machine's core count only when none of them is known.

Every layer sizes its parallel work from :func:`cpu_budget`: torch's threads and the data-loader
workers (``engine/threads.py``), the embedded data generator's processes (``datamodules/synthetic.py``),
the test suite's xdist workers (``tests/conftest.py``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

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
    return int_at_least(raw, 1, f"SLURM_CPUS_PER_TASK={raw!r}: expected a positive integer")


def int_at_least(raw: int | str, minimum: int, message: str) -> int:
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
