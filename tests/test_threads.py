"""common/cpus.py: the CPU budget from affinity, SLURM and cgroup quotas (faked); engine/threads.py: the
thread plan."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from common import cpus
from common.cpus import CpuBudget, cgroup_cpus, cpu_budget, slurm_cpus
from engine import threads
from engine.threads import data_workers, plan_threads


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_of_own_cgroup_and_ancestors(tmp_path):
    root = tmp_path / "cg"
    _write(root / "cpu.max", "max 100000\n")
    _write(root / "job" / "cpu.max", "300000 100000\n")  # 3 CPUs for the job
    _write(root / "job" / "step" / "cpu.max", "max 100000\n")
    proc = tmp_path / "self_cgroup"
    _write(proc, "0::/job/step\n")
    assert cgroup_cpus(root, proc) == 3.0


def test_cgroup_v2_without_quota(tmp_path):
    root = tmp_path / "cg"
    _write(root / "cpu.max", "max 100000\n")
    proc = tmp_path / "self_cgroup"
    _write(proc, "0::/\n")
    assert cgroup_cpus(root, proc) is None


def test_cgroup_v1_quota(tmp_path):
    root = tmp_path / "cg"
    _write(root / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us", "150000\n")
    _write(root / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_period_us", "100000\n")
    _write(root / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1\n")
    _write(root / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    proc = tmp_path / "self_cgroup"
    _write(proc, "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n")
    assert cgroup_cpus(root, proc) == 1.5


def test_cgroup_v1_without_quota_and_missing_files(tmp_path):
    proc = tmp_path / "self_cgroup"
    _write(proc, "4:cpu,cpuacct:/\n")
    _write(tmp_path / "cg" / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1\n")
    _write(tmp_path / "cg" / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    assert cgroup_cpus(tmp_path / "cg", proc) is None
    assert cgroup_cpus(tmp_path / "nothing", tmp_path / "no_proc_file") is None


def test_slurm_cpus_parsing():
    assert slurm_cpus({}) is None
    assert slurm_cpus({"SLURM_CPUS_PER_TASK": "6"}) == 6
    with pytest.raises(ValueError, match="SLURM_CPUS_PER_TASK='six'"):
        slurm_cpus({"SLURM_CPUS_PER_TASK": "six"})
    with pytest.raises(ValueError, match="positive integer"):
        slurm_cpus({"SLURM_CPUS_PER_TASK": "0"})


def test_budget_is_the_smallest_limit_never_the_core_count_when_a_limit_is_known(monkeypatch):
    monkeypatch.setattr(cpus.os, "cpu_count", lambda: 64)
    budget = cpu_budget({"SLURM_CPUS_PER_TASK": "8"}, affinity=64, cgroup=None)
    assert budget.cpus == 8 and budget.limits == {"affinity": 64, "slurm": 8}
    assert cpu_budget({}, affinity=16, cgroup=2.5).cpus == 2  # a fractional quota rounds down
    assert cpu_budget({}, affinity=16, cgroup=0.5).cpus == 1  # never 0
    assert cpu_budget({"SLURM_CPUS_PER_TASK": "4"}, affinity=2, cgroup=None).cpus == 2
    assert cpu_budget({}, affinity=None, cgroup=None) == CpuBudget(64, {"machine": 64})


def test_budget_of_this_process_matches_its_affinity():
    budget = cpu_budget()
    assert 1 <= budget.cpus <= len(cpus.os.sched_getaffinity(0))


def test_plan_auto_and_overrides():
    budget = CpuBudget(6, {"slurm": 6})
    assert (plan_threads(None, budget, {}).intra_op, plan_threads(None, budget, {}).inter_op) == (6, 1)
    assert plan_threads(None, budget, {"OMP_NUM_THREADS": "1"}).intra_op == 1  # the user's explicit count
    assert plan_threads({"intra_op": 3}, budget, {"OMP_NUM_THREADS": "1"}).intra_op == 3  # config wins
    with pytest.raises(ValueError, match="OMP_NUM_THREADS='x'"):
        plan_threads(None, budget, {"OMP_NUM_THREADS": "x"})
    plan = plan_threads({"intra_op": 2, "inter_op": "auto"}, budget, {})
    assert (plan.intra_op, plan.inter_op) == (2, 1)
    with pytest.raises(ValueError, match=r"threads.intra_op=0: expected auto or a positive integer"):
        plan_threads({"intra_op": 0}, budget)
    with pytest.raises(ValueError, match=r"threads: unknown key\(s\) \['workers'\]"):
        plan_threads({"workers": 2}, budget)


def test_data_workers_leave_a_cpu_to_training():
    assert data_workers(8, CpuBudget(32, {})) == 8
    assert data_workers(8, CpuBudget(4, {})) == 3
    assert data_workers(8, CpuBudget(1, {})) == 0
    assert data_workers("2", CpuBudget(16, {})) == 2
    with pytest.raises(ValueError, match="non-negative integer"):
        data_workers(-1, CpuBudget(4, {}))


def test_apply_threads_sets_torch(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "cpu_budget", lambda: CpuBudget(3, {"cgroup": 3.0}))
    try:
        plan = threads.apply_threads({"intra_op": "auto"})
        assert plan.intra_op == 3 and torch.get_num_threads() == 3
        threads.apply_threads({"intra_op": 1})
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_resumed_run_keeps_its_thread_count_unless_the_user_sets_one(monkeypatch, caplog):
    """engine/threads.py: ``auto`` takes the count of the attempts being resumed (CPU results depend on it);
    a count the user sets wins, with a warning that the resumed run will not match an uninterrupted one."""
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "cpu_budget", lambda: CpuBudget(3, {"cgroup": 3.0}))
    try:
        assert threads.apply_threads({"intra_op": "auto"}, resumed_intra_op=2).intra_op == 2
        assert torch.get_num_threads() == 2
        with caplog.at_level("WARNING", logger="engine.threads"):
            assert threads.apply_threads({"intra_op": 1}, resumed_intra_op=2).intra_op == 1
            assert "trained with 2" in caplog.text and torch.get_num_threads() == 1
            caplog.clear()
            assert threads.apply_threads({"intra_op": "auto"}, resumed_intra_op=2).intra_op == 2
            assert not caplog.text  # within the budget: logged at INFO
            monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a cluster's setting is "auto" too
            assert threads.apply_threads({"intra_op": "auto"}, resumed_intra_op=4).intra_op == 4
        assert "OMP_NUM_THREADS=1 would give 1" in caplog.text and "more than the 3 CPU(s)" in caplog.text
    finally:
        torch.set_num_threads(before)


def test_data_config_resolves_workers_within_the_budget(tmp_path):
    from engine.compose import compose_run_config

    cfg = compose_run_config(["experiment=dfmoe_ffpp"], tmp_path)
    assert cfg.data.num_workers == data_workers(8)
    assert compose_run_config(["experiment=dfmoe_ffpp", "scale=demo"], tmp_path).data.num_workers == 0


def test_passive_waiting_unless_the_user_chose_a_policy():
    environ: dict[str, str] = {}
    assert threads.prefer_passive_waiting(environ) is True and environ["OMP_WAIT_POLICY"] == "PASSIVE"
    environ = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert threads.prefer_passive_waiting(environ) is False and environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_run_py_sets_the_wait_policy_before_torch_loads():
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = str(repo)
    code = "import sys, os; sys.argv = ['run.py']; import run; print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["PASSIVE", "False"]
