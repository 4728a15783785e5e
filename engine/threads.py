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
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from common.choices import check_known_keys
from common.cpus import CpuBudget, cpu_budget, int_at_least

log = logging.getLogger(__name__)


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
    most = int_at_least(most, 0, f"${{data_workers:{most}}}: expected a non-negative integer")
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


def apply_threads(settings: Mapping | None = None, resumed_intra_op: int | None = None) -> ThreadPlan:
    """Set torch's intra-op and inter-op threads from :func:`plan_threads` and log why. Torch allows the
    inter-op count to be set once per process, before any inter-op work: a later call that asks for
    another count keeps the first one and says so.

    ``resumed_intra_op``: the intra-op count the run's earlier attempts trained with, when this attempt
    resumes them. CPU results depend on that count (common/numerics.py), so ``auto`` keeps it, also
    over ``OMP_NUM_THREADS`` (which clusters set from the allocation): a job requeued onto a node with
    other CPUs trains on as it began and ends as it would have (with a warning when that is more
    threads than its CPUs). ``threads.intra_op=N`` is taken, with a warning that the resumed run will
    not match an uninterrupted one."""
    import torch

    plan = plan_threads(settings)
    if resumed_intra_op is not None and resumed_intra_op != plan.intra_op:
        if dict(settings or {}).get("intra_op", "auto") in (None, "auto"):
            given = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}" if os.environ.get("OMP_NUM_THREADS") else "auto"
            oversubscribed = resumed_intra_op > plan.budget.cpus
            (log.warning if oversubscribed else log.info)(
                "threads: %d intra-op as the attempts this one resumes (%s would give %d here)%s: CPU results depend on "
                "the count (docs/CLUSTER.md, \"Resume on other CPUs\"; threads.intra_op=N overrides)", resumed_intra_op, given,
                plan.intra_op, f", more than the {plan.budget.cpus} CPU(s) this process may use: slower" if oversubscribed else "")
            plan = ThreadPlan(resumed_intra_op, plan.inter_op, plan.budget)
        else:
            log.warning("threads.intra_op=%d, but the attempts this one resumes trained with %d: on the CPU the resumed "
                        "run will not end as an uninterrupted one would (common/numerics.py)", plan.intra_op, resumed_intra_op)
    torch.set_num_threads(plan.intra_op)
    inter_op = plan.inter_op
    if torch.get_num_interop_threads() != inter_op:
        try:
            torch.set_num_interop_threads(inter_op)
        except RuntimeError:  # already started in this process (a second run in one process, tests)
            inter_op = torch.get_num_interop_threads()
            log.info("inter-op threads stay %d (torch sets them once per process)", inter_op)
    log.info(
        "threads: %d intra-op, %d inter-op; CPU budget %d (%s; the machine has %s cores)",
        plan.intra_op, inter_op, plan.budget.cpus, plan.budget.describe(), os.cpu_count(),
    )
    return plan
