"""Exact resume: a run interrupted (SIGTERM in the middle of an epoch, SIGKILL) and resumed ends with
the same weights and metrics, to the last digit, as the run that was never interrupted; last.ckpt
after every epoch; atomic checkpoint files; the attempt history; resume with a changed config
refused; a dying W&B service never fails a job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import NO_FIGURES, REPO, compose

from callbacks.resume import Preempted, ResumeCheckpoints
from engine.pipeline import run
from engine.resume import ResumeMismatchError

# Short: 2 epochs of 4 batches; the signal lands after batch 1 of epoch 1 (mid-epoch).
SHORT = ["scale=demo", "trainer.max_epochs=2", "+trainer.limit_train_batches=4", "trainer.enable_progress_bar=false",
         "~callbacks.progress_bar"]


def interrupt(epoch: int, batch: int, sig: str, target: str = "self") -> str:
    return (f"+callbacks.interrupt={{_target_:callbacks.interrupt.SignalAt,epoch:{epoch},batch:{batch},signal:{sig},"
            f"target:{target}}}")


def final_state(run_dir: Path) -> tuple[dict, dict]:
    results = json.loads((run_dir / "results.json").read_text())
    weights = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    return results, weights


def assert_identical(reference: Path, resumed: Path) -> None:
    (ref_results, ref_weights), (res_results, res_weights) = final_state(reference), final_state(resumed)
    assert ref_weights.keys() == res_weights.keys()
    for key, value in ref_weights.items():
        assert torch.equal(value, res_weights[key]), key  # bit for bit
    assert res_results["tests"] == ref_results["tests"]  # every metric, every digit
    assert res_results["validation"]["metrics"] == ref_results["validation"]["metrics"]
    assert res_results["validation"]["threshold"] == ref_results["validation"]["threshold"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, synthetic_root) -> Path:
    out = tmp_path_factory.mktemp("reference")
    run(compose(["experiment=baseline_multidomain", *SHORT, *NO_FIGURES], out, synthetic_root))
    return out


def test_last_ckpt_is_the_last_epoch_even_without_a_new_best(reference):
    checkpoint = torch.load(reference / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["epoch"] == 1  # written after every epoch (Lightning's save_last: only on a new best)
    assert not list((reference / "checkpoints").glob(".*tmp*"))  # atomic saves leave no temporary file
    # the full training state a resume needs (callbacks/resume.py asks save_checkpoint for it by name)
    assert {"optimizer_states", "loops", "callbacks"} <= checkpoint.keys()


def test_sigterm_mid_epoch_then_resume_is_exact(reference, tmp_path, synthetic_root, monkeypatch):
    overrides = ["experiment=baseline_multidomain", *SHORT, *NO_FIGURES]
    before = torch.get_num_threads()
    with pytest.raises(Preempted) as stopped:
        run(compose([*overrides, interrupt(1, 1, "SIGTERM")], tmp_path, synthetic_root))
    assert stopped.value.code == 128 + signal.SIGTERM and "last.ckpt" in str(stopped.value)
    handler = signal.getsignal(signal.SIGTERM)  # the run's handler is gone once it stopped
    assert not isinstance(getattr(handler, "__self__", None), ResumeCheckpoints)
    assert not (tmp_path / "results.json").exists()
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["FaceDataModule"]["epoch"] == 1 and saved["FaceDataModule"]["batches"] == 2  # mid-epoch
    # Requeued where threads.intra_op=auto gives another count (another node, SLURM_CPUS_PER_TASK): CPU
    # results depend on it (common/numerics.py; this run's weights differ in 66 of 93 tensors between 1 and 2
    # threads), so the resumed attempt trains at the count the first one began with.
    began = json.loads((tmp_path / "attempts.json").read_text())["attempts"][0]["intra_op_threads"]  # the reference's too
    monkeypatch.setenv("OMP_NUM_THREADS", str(began + 1))  # what auto takes here
    try:
        run(compose(overrides, tmp_path, synthetic_root))
        resumed_at = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert_identical(reference, tmp_path)  # at began + 1 threads: 'backbone.conv1.0.weight' differs
    assert resumed_at == began

    results = json.loads((tmp_path / "results.json").read_text())
    history = results["extra"]["attempts"]
    assert history["count"] == 2 and history["resumed"] is True
    assert [a["end"] for a in history["history"]][:1] == ["preempted"]
    assert [a["intra_op_threads"] for a in history["history"]] == [began, began]
    assert results["extra"]["numerics"] == f"cpu/{torch.backends.cpu.get_cpu_capability()}/{began} threads"
    assert results["wall_time_s"] == pytest.approx(history["total_wall_time_s"])
    assert results["wall_time_s"] >= history["history"][0]["wall_time_s"]
    metrics = pd.read_csv(tmp_path / "csv" / "metrics.csv")
    assert set(metrics["attempt"].dropna().astype(int)) == {1, 2}  # appended, not rewritten
    first = metrics[metrics["attempt"] == 1]
    assert first["epoch"].dropna().astype(int).eq(0).any()  # the first attempt's epoch 0 rows survived


def test_the_resumed_thread_count_is_read_from_the_checkpoints_run_directory(tmp_path, caplog):
    from engine.resume import resumed_thread_count

    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    checkpoint = str(run_dir / "checkpoints" / "last.ckpt")
    assert resumed_thread_count(None) is None and resumed_thread_count(checkpoint) is None  # no history yet
    (run_dir / "attempts.json").write_text(json.dumps({"attempts": [{"intra_op_threads": 2}, {"intra_op_threads": 3}, {"end": "x"}]}))
    assert resumed_thread_count(checkpoint) == 3  # the latest recorded
    (tmp_path / "attempts.json").write_text(json.dumps({"attempts": [{"intra_op_threads": 5}]}))
    assert resumed_thread_count(str(tmp_path / "model.ckpt")) is None  # not in <run dir>/checkpoints/: no history read
    (run_dir / "attempts.json").write_text("{not json")
    with caplog.at_level("WARNING", logger="engine.resume"):
        assert resumed_thread_count(checkpoint) is None  # costs the pin, not the run
    assert "unreadable attempt history" in caplog.text


def test_resume_with_a_changed_learning_rate_or_detector_is_refused(reference, tmp_path, synthetic_root):
    import shutil

    shutil.copytree(reference / "checkpoints", tmp_path / "checkpoints")
    with pytest.raises(ResumeMismatchError, match=r"optimizer\.lr: 0\.002 -> 0\.001"):
        run(compose(["experiment=baseline_multidomain", *SHORT, "detector.optimizer.lr=1e-3"], tmp_path, synthetic_root))
    with pytest.raises(ResumeMismatchError) as error:
        run(compose(["experiment=baseline_multidomain", *SHORT, "detector=resnet50"], tmp_path, synthetic_root))
    assert "detector._target_" in str(error.value) or "backbone: 'resnet34' -> 'resnet50'" in str(error.value)
    assert not (tmp_path / "results.json").exists()  # stopped before training


def test_checkpoint_save_is_atomic(tmp_path, monkeypatch):
    from engine.checkpoint_io import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    io.save_checkpoint({"x": torch.ones(3)}, target)

    def disk_full(obj, handle):
        handle.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space"):
        io.save_checkpoint({"x": torch.zeros(3)}, target)
    assert torch.equal(torch.load(target, weights_only=True)["x"], torch.ones(3))  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_sampler_resumes_inside_an_epoch_and_seeds_each_sample():
    from datamodules.frame_dataset import TrainFrameSampler
    from datamodules.resumable import SeededSample

    table = pd.DataFrame({"video_id": [f"v{i // 4}" for i in range(40)], "path": [f"{i}.png" for i in range(40)],
                          "label": [i // 4 % 2 for i in range(40)]})
    sampler = TrainFrameSampler(table, 2, seed=3)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.start_at(6)
    assert list(sampler) == full[6:]
    assert list(sampler) == full  # the skip applies once
    seeded = TrainFrameSampler(table, 2, seed=3, seeded=True)
    seeded.set_epoch(2)
    samples = list(seeded)
    assert all(isinstance(s, SeededSample) for s in samples) and [s.row for s in samples] == full
    seeded.start_at(6)
    assert list(seeded) == samples[6:]  # same rows and the same augmentation seeds after a resume


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    import random

    import numpy as np

    from datamodules.resumable import capture_rng, restore_rng

    state = capture_rng()
    expected = (random.random(), np.random.rand(), torch.rand(2))
    torch.save(state, tmp_path / "rng.pt")
    restore_rng(torch.load(tmp_path / "rng.pt", weights_only=True))
    again = (random.random(), np.random.rand(), torch.rand(2))
    assert expected[:2] == again[:2] and torch.equal(expected[2], again[2])


def test_dying_wandb_service_does_not_fail_the_job(monkeypatch):
    import wandb

    from engine.pipeline import _finish_wandb

    class DeadRun:
        def mark_preempting(self):
            raise ConnectionResetError(104, "Connection reset by peer")

    monkeypatch.setattr(wandb, "run", DeadRun())
    monkeypatch.setattr(wandb, "finish", lambda **_: (_ for _ in ()).throw(ConnectionResetError(104, "reset")))
    _finish_wandb(preempted=False)
    _finish_wandb(preempted=True)


def test_preempted_job_is_never_recorded_as_failed(tmp_path):
    from omegaconf import OmegaConf

    from engine.failures import FAILED_FILE_NAME, run_fail_soft

    def preempted(_):
        raise Preempted(signal.SIGTERM, "stopped on SIGTERM")

    with pytest.raises(Preempted):
        run_fail_soft(preempted, OmegaConf.create({"fail_soft": True, "paths": {"output_dir": str(tmp_path)}}))
    assert not (tmp_path / FAILED_FILE_NAME).exists()


@pytest.fixture
def submitit_like_usr2():
    """A Python SIGUSR2 handler installed before the job starts, as submitit installs its own."""
    seen: list[int] = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: seen.append(signum))
    yield seen
    signal.signal(signal.SIGUSR2, previous)


def test_an_error_after_a_stop_signal_ends_the_attempt_as_stopped(submitit_like_usr2, caplog):
    """SLURM's SIGTERM on a requeue also kills W&B's service: a W&B call after it raises. Reported as
    the job's result, that error ended the sweep while SLURM already ran the next attempt."""
    from callbacks.resume import received_stop_signal, record_stop_signals, stopped_attempt

    record_stop_signals()
    assert stopped_attempt(ConnectionResetError("Connection lost")) is None  # no signal: the job's own error
    os.kill(os.getpid(), signal.SIGUSR2)
    assert submitit_like_usr2 == [signal.SIGUSR2]  # the installed handler still runs
    assert received_stop_signal() == signal.SIGUSR2
    error = ConnectionResetError("Connection lost")
    with caplog.at_level("ERROR", logger="callbacks.resume"):
        stopped = stopped_attempt(error)
    assert isinstance(stopped, Preempted) and stopped.code == 128 + signal.SIGUSR2
    assert "ConnectionResetError after SIGUSR2: Connection lost" in str(stopped)
    assert any(r.exc_info and r.exc_info[1] is error for r in caplog.records)  # the traceback is logged
    record_stop_signals()  # the next job of the process starts with an empty record
    assert received_stop_signal() is None
    os.kill(os.getpid(), signal.SIGUSR2)
    assert submitit_like_usr2 == [signal.SIGUSR2] * 2  # wrapped once, not twice
    # A bug after the signal is not something the stop explains: it stays the job's failure.
    assert stopped_attempt(KeyError("val/auc")) is None
    wrapped = RuntimeError("while saving")
    wrapped.__cause__ = BrokenPipeError("pipe")  # raised from a stop-caused error: explained
    assert isinstance(stopped_attempt(wrapped), Preempted)


def test_a_stop_submitit_refuses_stays_the_jobs_failure(tmp_path):
    """After max_num_timeout requeues, submitit's SIGUSR2 handler raises UncompletedJobError instead
    of requeueing: that must still be recorded (failed.json), not turned into a stop."""
    from omegaconf import OmegaConf
    from submitit.core.utils import UncompletedJobError

    from callbacks.resume import record_stop_signals, stopped_attempt
    from engine.failures import FAILED_FILE_NAME, run_fail_soft

    def refuse(signum, frame):
        raise UncompletedJobError("Job not requeued because: timed-out too many times.")

    previous = signal.signal(signal.SIGUSR2, refuse)
    try:
        def job(cfg):
            record_stop_signals()
            try:
                os.kill(os.getpid(), signal.SIGUSR2)
            except UncompletedJobError as error:
                stopped = stopped_attempt(error)
                assert stopped is None
                raise
        cfg = OmegaConf.create({"fail_soft": True, "paths": {"output_dir": str(tmp_path)}})
        run_fail_soft(job, cfg)
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert "UncompletedJobError" in (tmp_path / FAILED_FILE_NAME).read_text()


@pytest.mark.parametrize("signalled", [True, False])
def test_a_job_failing_after_a_stop_signal_is_stopped_not_failed(submitit_like_usr2, signalled, tmp_path, monkeypatch):
    """Through the job's entry (engine.jobs.run_job inside fail-soft, as run.py calls it): after a
    stop signal the error becomes Preempted (a SystemExit, no failed.json); without one it is the job's
    failure, recorded as before."""
    from omegaconf import OmegaConf

    from engine import jobs
    from engine.failures import FAILED_FILE_NAME, run_fail_soft

    def pipeline(cfg):
        if signalled:
            os.kill(os.getpid(), signal.SIGUSR2)
        raise ConnectionResetError("Connection lost")

    monkeypatch.setattr(jobs, "_run_pipeline", pipeline)
    cfg = OmegaConf.create({"fail_soft": True, "paths": {"output_dir": str(tmp_path)}})
    if signalled:
        with pytest.raises(Preempted) as stopped:
            run_fail_soft(jobs.run_job, cfg)
        assert isinstance(stopped.value.__cause__, ConnectionResetError)
        assert not (tmp_path / FAILED_FILE_NAME).exists()
    else:
        assert run_fail_soft(jobs.run_job, cfg) != run_fail_soft(jobs.run_job, cfg)  # NaN
        assert "ConnectionResetError" in (tmp_path / FAILED_FILE_NAME).read_text()


# --------------------------------------------------------------------------- through run.py (slow)

def test_a_run_starts_its_own_wandb_service_rather_than_an_inherited_one(monkeypatch):
    """A killed attempt's stream stays open in a W&B service its parent started, and the resumed attempt
    (same run id) would be refused there: 'run ID <id> is in use'. The slow run.py test below has it
    happen; here the rule: a token of another process is dropped, this process's own is kept."""
    from engine.attempts import own_wandb_service

    monkeypatch.setenv("WANDB_SERVICE", f"3-{os.getppid()}-unix-/tmp/wandb-x/socket")
    own_wandb_service()
    assert "WANDB_SERVICE" not in os.environ
    mine = f"3-{os.getpid()}-unix-/tmp/wandb-y/socket"
    monkeypatch.setenv("WANDB_SERVICE", mine)
    own_wandb_service()
    assert os.environ["WANDB_SERVICE"] == mine


@pytest.fixture
def inherited_wandb_service():
    """A W&B service started by this (the parent) process, as a driver script that uses W&B and then runs
    run.py has one: the children inherit its address (WANDB_SERVICE)."""
    import wandb

    from engine.attempts import wandb_service_owner

    def own(token: str | None) -> bool:
        return bool(token) and wandb_service_owner(token) == str(os.getpid())

    before = os.environ.get("WANDB_SERVICE")
    # An earlier in-process W&B run of this worker (tests/test_inference.py's figures) leaves this process's
    # service up and its address set, and another process's address may be inherited: shut this process's down and
    # set neither, so that the run.py calls below join a service this fixture started.
    wandb.teardown()
    os.environ.pop("WANDB_SERVICE", None)
    wandb.setup()
    token = os.environ["WANDB_SERVICE"]
    assert own(token), token
    yield token
    # Shut the service down: a later use of this fixture in the same worker (another parameter) must start
    # its own. Its address is now stale: drop it, and restore only another process's (it still lives).
    wandb.teardown()
    if before is None or own(before):
        os.environ.pop("WANDB_SERVICE", None)
    else:
        os.environ["WANDB_SERVICE"] = before


def run_py(run_dir: Path, synthetic_root: Path, overrides: list[str], logger: str = "csv",
           wandb_service: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    if wandb_service:
        env["WANDB_SERVICE"] = wandb_service
    args = [sys.executable, "run.py", *overrides, f"logger={logger}", f"data.synthetic.root={synthetic_root}",
            "data.synthetic.progress=false", f"paths.log_dir={run_dir.parent}", f"hydra.run.dir={run_dir}"]
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)


@pytest.mark.slow
def test_a_run_whose_wandb_service_dies_still_completes(tmp_path, synthetic_root):
    """Through run.py: W&B's service process gets SLURM's SIGTERM in the middle of training (the run
    itself does not). Every later W&B call of the run (metrics, test figures, the run's summary and
    files) is dropped and counted; the run completes with its results, CSV metrics and exit code 0."""
    run_dir = tmp_path / "run"
    overrides = ["experiment=baseline_multidomain", *SHORT, interrupt(0, 2, "SIGTERM", target="wandb_service")]
    done = run_py(run_dir, synthetic_root, overrides, logger="default")
    log_text = (run_dir / "train.log").read_text()
    assert done.returncode == 0, (done.stderr[-3000:], log_text[-3000:])
    assert "sending SIGTERM to W&B's service process" in log_text  # the kill happened
    assert log_text.count("W&B lost its service connection") == 1
    dropped = [line for line in log_text.splitlines() if "call(s) of this attempt were dropped" in line]
    assert dropped and int(dropped[0].split("W&B: ")[1].split()[0]) >= 2, dropped
    results = json.loads((run_dir / "results.json").read_text())
    assert results["extra"]["complete_evaluation"] is True
    assert json.loads((run_dir / "attempts.json").read_text())["attempts"][-1]["end"] == "completed"
    # The test figures import sklearn after the service died: W&B's import hook must not fail them.
    assert not (run_dir / "plots" / "failed.json").exists(), (run_dir / "plots" / "failed.json").read_text()
    assert (run_dir / "plots" / "roc_det_frame.png").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["baseline_multidomain", "dtn_ffpp"])
def test_sigkill_and_sigterm_resumes_are_exact_through_run_py(experiment, tmp_path, synthetic_root, inherited_wandb_service):
    """run.py as a user runs it; DTN routes with Gaussian noise (its MoE perturbation), so its
    training draws from the generators every step. Epochs of 5 batches, 3 epochs; SIGKILL in epoch 2
    (resume from the end of epoch 1), SIGTERM in the middle of epoch 1 (resume from that batch).
    Every run.py inherits a W&B service of this process (WANDB_SERVICE): the SIGKILLed attempt's stream
    stays open there, and the resumed attempt must still continue the W&B run."""
    overrides = [f"experiment={experiment}", "scale=demo", "trainer.max_epochs=3", "+trainer.limit_train_batches=5"]
    done = run_py(tmp_path / "reference", synthetic_root, overrides, logger="default", wandb_service=inherited_wandb_service)
    assert done.returncode == 0, done.stderr[-3000:]
    for sig, epoch, batch in (("SIGKILL", 2, 1), ("SIGTERM", 1, 2)):
        run_dir = tmp_path / sig
        killed = run_py(run_dir, synthetic_root, [*overrides, interrupt(epoch, batch, sig)], logger="default",
                        wandb_service=inherited_wandb_service)
        assert killed.returncode == (-9 if sig == "SIGKILL" else 143), killed.stderr[-3000:]
        if sig == "SIGTERM":
            assert "stopped on SIGTERM" in killed.stderr + killed.stdout
        resumed = run_py(run_dir, synthetic_root, overrides, logger="default", wandb_service=inherited_wandb_service)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert_identical(tmp_path / "reference", run_dir)
        attempts = json.loads((run_dir / "attempts.json").read_text())["attempts"]
        assert [a["end"] for a in attempts] == ["killed (no end recorded)" if sig == "SIGKILL" else "preempted", "completed"]
        # Both attempts logged into the same W&B run (offline: one directory per attempt, one id).
        run_id = (run_dir / "wandb_run_id").read_text().strip()
        offline = sorted((run_dir / "wandb").glob("offline-run-*"))
        assert len(offline) == 2 and all(p.name.endswith(run_id) for p in offline), offline


def test_seeded_samples_are_the_same_in_worker_processes_and_in_this_one(tmp_path):
    """Workers do not put the generators back after a sample (each sample seeds them afresh): the
    augmented images still equal those made in this process, which does put them back."""
    import numpy as np
    from PIL import Image
    from torch.utils.data import DataLoader

    from datamodules.frame_dataset import FrameTable, TrainFrameSampler
    from datamodules.transforms import build_transform

    rows = []
    for i in range(8):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        rows.append({"file": str(tmp_path / f"{i}.png"), "path": f"{i}.png", "label": i % 2, "domain": "d", "type": "t",
                     "video_id": f"v{i // 2}"})
    table = pd.DataFrame(rows)
    augment = {"hflip": 0.5, "color_jitter": 0.4, "rotate": {"p": 0.5}, "jpeg": {"p": 0.5}}
    dataset = FrameTable(table, build_transform(16, "half", train=True, augment=augment), {"d": 0}, {"t": 0})
    sampler = TrainFrameSampler(table, 2, seed=5, seeded=True)
    sampler.set_epoch(1)
    here = [dataset[sample]["image"] for sample in sampler]
    loader = DataLoader(dataset, batch_size=3, sampler=sampler, num_workers=2)
    in_workers = [image for batch in loader for image in batch["image"]]
    assert len(here) == len(in_workers) == 8
    assert all(torch.equal(a, b) for a, b in zip(here, in_workers))
    plain = build_transform(16, "half", train=False)
    unaugmented = [plain(Image.open(f).convert("RGB")) for f in table["file"].iloc[[s.row for s in sampler]]]
    assert sum(not torch.equal(a, b) for a, b in zip(here, unaugmented)) >= 4  # the seeds did augment


def test_seeded_sample_augmentation_ignores_the_process_generators(tmp_path):
    """With worker processes each training sample's augmentation comes from its own seed, so a
    worker restarted at a resume (fresh generators) draws the same flips and jitter."""
    import numpy as np
    from PIL import Image

    from datamodules.frame_dataset import FrameTable
    from datamodules.resumable import SeededSample
    from datamodules.transforms import build_transform

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    table = pd.DataFrame({"file": [str(tmp_path / "a.png")], "label": [1], "domain": ["d"], "type": ["t"], "video_id": ["v"]})
    dataset = FrameTable(table, build_transform(16, "half", train=True, augment={"hflip": 0.5, "color_jitter": 0.4}), {"d": 0}, {"t": 0})
    images = []
    for process_seed in (1, 2):
        torch.manual_seed(process_seed)
        images.append([dataset[SeededSample(0, seed)]["image"] for seed in range(6)])
    assert all(torch.equal(a, b) for a, b in zip(*images))
    assert not all(torch.equal(images[0][0], image) for image in images[0][1:])  # the seeds do differ
    before = torch.get_rng_state()
    dataset[SeededSample(0, 7)]
    assert torch.equal(before, torch.get_rng_state())  # the process generator is left alone
