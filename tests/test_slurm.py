"""On a real SLURM cluster (``.ci/slurm_cluster.sh start``; skipped when none is reachable): the
README's CPU SLURM sweep and the aggregator on its directory, a USR2 preemption in the middle of an
epoch and an ``scontrol requeue`` (both: checkpoint, requeue, resume, complete results, never a
failed job), a time-limit requeue, and a 2-task DDP job that uses SLURM's tasks without relaunching.

Runs ``python run.py`` exactly as a user types it; where the run directories go comes from the
environment (``FACEMOE_LOGS``, ``FACEMOE_CACHE``), as on a cluster. Jobs run with OMP_NUM_THREADS=1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.slurm


def cluster_state() -> str | None:
    """None when a SLURM node is idle or mixed (usable), else why not."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "no SLURM client tools (sinfo, sbatch) on PATH"
    try:
        states = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return "sinfo timed out (no slurmctld answering)"
    if states.returncode != 0:
        return f"sinfo failed: {states.stderr.strip()[:200]}"
    if not {"idle", "mixed"} & set(states.stdout.split()):
        return f"no idle or mixed node (sinfo: {states.stdout.split()})"
    return None


@pytest.fixture(scope="module", autouse=True)
def cluster():
    why = cluster_state()
    if why is not None:
        pytest.skip(f"no SLURM cluster reachable: {why}. Start one with `.ci/slurm_cluster.sh start` (root)")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory, synthetic_root) -> Path:
    """A FACEMOE_CACHE whose synthetic data is the session's (``FACEMOE_TEST_CACHE`` in CI: built once
    for all suites), built before any job starts so no job spends its time (or time limit) on it."""
    from datamodules.synthetic import ensure_synthetic

    ensure_synthetic(synthetic_root, progress=False)
    cache = tmp_path_factory.mktemp("cache")
    (cache / "synthetic").symlink_to(synthetic_root, target_is_directory=True)
    return cache


def job_env(logs: Path, cache_dir: Path) -> dict:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "FACEMOE_LOGS": str(logs),
        "FACEMOE_CACHE": str(cache_dir),
        "PYTHONPATH": str(REPO),
    }


def start_sweep(args: list[str], env: dict) -> subprocess.Popen:
    """``python run.py -m <args>``; its output goes to ``sweep.out`` beside the logs (a pipe nobody
    reads while other checks run could fill up and stall it)."""
    out = Path(env["FACEMOE_LOGS"]).parent / "sweep.out"
    with open(out, "w") as handle:
        sweep = subprocess.Popen([sys.executable, "run.py", "-m", *args], cwd=REPO, env=env, text=True,
                                 stdout=handle, stderr=subprocess.STDOUT)
    sweep.output = out
    return sweep


def finish(sweep: subprocess.Popen, timeout: float) -> str:
    try:
        sweep.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        sweep.kill()
        sweep.wait()
        pytest.fail(f"sweep did not finish in {timeout} s:\n{sweep.output.read_text()[-3000:]}")
    out = sweep.output.read_text()
    assert sweep.returncode == 0, out[-3000:]
    return out


def sweep_dir(env: dict) -> Path:
    found = sorted(Path(env["FACEMOE_LOGS"]).glob("*/multiruns/*"))
    return found[-1] if found else None


def wait_for(what: str, check, timeout: float = 300, every: float = 0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def job_ids(env: dict) -> list[str]:
    root = sweep_dir(env)
    if root is None or not (root / ".submitit").is_dir():
        return []
    return sorted(p.name for p in (root / ".submitit").iterdir() if re.fullmatch(r"\d+(_\d+)?", p.name))


def release_requeued(stop: threading.Event) -> None:
    """SLURM holds a requeued job ~120 s (Reason=BeginTime); release every held job at once."""
    while not stop.is_set():
        queue = subprocess.run(["squeue", "-h", "-o", "%i %r"], capture_output=True, text=True).stdout
        for line in queue.splitlines():
            job, _, reason = line.partition(" ")
            if "BeginTime" in reason:
                subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], capture_output=True)
        stop.wait(1.0)


def log_has(run_dir: Path, pattern: str) -> bool:
    log = run_dir / "train.log"
    return log.is_file() and re.search(pattern, log.read_text(errors="replace")) is not None


def attempts(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "attempts.json").read_text())["attempts"]


# The README line, as written.
README_SWEEP = ["+sweep=gmdf_multidomain_baselines", "leave_out=wilddeepfake", "seed=0,1", "scale=demo",
                "launcher=submitit_slurm_cpu"]
# Long enough epochs that a signal sent just after an epoch ends lands inside the next one.
RESUME_JOB = ["experiment=baseline_multidomain", "scale=demo", "seed=3", "launcher=submitit_slurm_cpu",
              "trainer.max_epochs=3", "+trainer.limit_train_batches=30", "~callbacks.progress_bar",
              "trainer.enable_progress_bar=false"]
# A 2-minute limit: SLURM sends USR2 ``signal_delay_s`` (45 s) before it, i.e. 75-105 s into the job
# (slurmctld checks limits every 30 s), after start-up (seconds on an idle node; a USR2 during
# start-up is requeued by submitit without progress, and the next attempt tries again). Training
# lasts 110 s of training time in all (Lightning's ``max_time``, kept across attempts in the
# checkpoint), so the first attempt is always cut and a later one finishes it.
TIME_LIMIT_JOB = ["experiment=baseline_multidomain", "scale=demo", "seed=4", "launcher=submitit_slurm_cpu",
                  "hydra.launcher.timeout_min=2", "hydra.launcher.signal_delay_s=45",
                  "hydra.launcher.max_num_timeout=10", "trainer.max_epochs=1000", "+trainer.max_time='00:00:01:50'",
                  "~callbacks.progress_bar", "trainer.enable_progress_bar=false"]
# ``hydra.launcher.tasks_per_node=2``: two SLURM tasks are the two DDP ranks (gloo on CPU).
DDP_JOB = ["experiment=baseline_multidomain", "scale=demo", "seed=5", "launcher=submitit_slurm_cpu",
           "hydra.launcher.tasks_per_node=2", "trainer.max_epochs=1", "+trainer.limit_train_batches=4"]


@pytest.fixture(scope="module")
def launched(tmp_path_factory, cache_dir):
    """Every check's sweep submitted at once, so the cluster runs them side by side (the CI node
    oversubscribes its cores, .ci/slurm_cluster.sh) and the checks take about as long as the longest
    one, not their sum. Each test then waits for its own sweep. Held requeued jobs are released by
    one thread for all of them."""
    sweeps = {}
    for name, args in (("resume", RESUME_JOB), ("readme", README_SWEEP), ("time_limit", TIME_LIMIT_JOB),
                       ("ddp", DDP_JOB)):
        env = job_env(tmp_path_factory.mktemp(name) / "logs", cache_dir)
        sweeps[name] = (start_sweep(args, env), env)
    stop = threading.Event()
    threading.Thread(target=release_requeued, args=(stop,), daemon=True).start()
    yield sweeps
    stop.set()
    for sweep, _ in sweeps.values():
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()


def test_usr2_preemption_then_scontrol_requeue_resume_to_complete_results(launched):
    sweep, env = launched["resume"]
    job = wait_for("the job to be submitted", lambda: (job_ids(env) or [None])[0])
    run_dir = wait_for("the job's directory", lambda: sweep_dir(env)) / "0"
    # 1) USR2 (what submitit asks SLURM to send before the time limit) inside epoch 1.
    wait_for("epoch 0 to end", lambda: log_has(run_dir, r"end of epoch, epoch 0"))
    time.sleep(1.0)
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    wait_for("the second attempt", lambda: (run_dir / "attempts.json").is_file() and len(attempts(run_dir)) >= 2)
    # 2) scontrol requeue (SLURM sends SIGTERM) inside the second attempt's next epoch.
    epoch_done = len(re.findall(r"end of epoch", (run_dir / "train.log").read_text()))
    wait_for("an epoch of the second attempt",
             lambda: len(re.findall(r"end of epoch", (run_dir / "train.log").read_text())) > epoch_done)
    time.sleep(1.0)
    subprocess.run(["scontrol", "requeue", job], check=True)
    out = finish(sweep, timeout=600)
    history = attempts(run_dir)
    assert [a["end"] for a in history] == ["preempted", "preempted", "completed"], (history, out[-2000:])
    assert all(a["slurm_job_id"] == job for a in history)
    assert [a["slurm_restart_count"] for a in history] == [0, 1, 2]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["extra"]["attempts"]["count"] == 3 and results["extra"]["attempts"]["resumed"] is True
    assert results["extra"]["complete_evaluation"] is True
    assert not (run_dir / "failed.json").exists()
    log = (run_dir / "train.log").read_text()
    assert "stopped on SIGUSR2" in log and "stopped on SIGTERM" in log
    print("USR2 saved mid-epoch:", "preemption signal, epoch 1" in log)
    # One W&B run across the three attempts.
    run_id = (run_dir / "wandb_run_id").read_text().strip()
    assert all(p.name.endswith(run_id) for p in (run_dir / "wandb").glob("offline-run-*"))


def test_two_task_ddp_job_uses_slurm_tasks(launched):
    sweep, env = launched["ddp"]
    out = finish(sweep, timeout=600)
    run_dir = sweep_dir(env) / "0"
    results = json.loads((run_dir / "results.json").read_text())
    assert results["extra"]["world_size"] == 2 and results["extra"]["complete_evaluation"] is True
    # Nothing relaunched: the job's processes are exactly SLURM's two tasks (one log per task).
    job = job_ids(env)[0]
    logs = sorted((sweep_dir(env) / ".submitit" / job).glob(f"{job}_*_log.out"))
    assert len(logs) == 2, (logs, out[-2000:])


def test_readme_cpu_sweep_then_the_aggregator(launched):
    """The README line, as written, then ``python -m sweeps.aggregate <sweep dir>``."""
    sweep, env = launched["readme"]
    out = finish(sweep, timeout=900)
    root = sweep_dir(env)
    for job in ("0", "1"):
        results = json.loads((root / job / "results.json").read_text())
        assert results["extra"]["complete_evaluation"] is True, out[-2000:]
        assert results["extra"]["attempts"]["count"] == 1
    assert not list(root.rglob("failed.json"))
    table = subprocess.run([sys.executable, "-m", "sweeps.aggregate", str(root)], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=300)
    assert table.returncode == 0, table.stderr[-2000:]
    assert "Xception" in table.stdout and (root / "tables" / "gmdf_table4.md").is_file(), table.stdout[-2000:]


def test_time_limit_requeue(launched):
    """The job checkpoints on the time limit's USR2, submitit requeues it, the next attempt resumes."""
    sweep, env = launched["time_limit"]
    out = finish(sweep, timeout=1200)
    run_dir = sweep_dir(env) / "0"
    history = attempts(run_dir)
    assert len(history) >= 2 and history[-1]["end"] == "completed", (history, out[-2000:])
    assert "stopped on SIGUSR2" in (run_dir / "train.log").read_text()
    assert json.loads((run_dir / "results.json").read_text())["extra"]["complete_evaluation"] is True
    print("time-limit attempts:", [a["end"] for a in history])
