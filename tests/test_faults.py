"""Fault injection: each case injects one fault a hostile but realistic user (or a full disk, or a
diverging run) produces, and asserts the clear error (naming the file / value / key and what was
expected) or the counted, reported skip. docs/RELIABILITY.md lists every case with its test.

Add a case: a row in one of the tables (CONFIG_FAULTS, WEIGHT_FILE_FAULTS, ...) where it fits, or a
test of its own. Keep each fast: the tiny config below trains 2 steps of batch 4 on the embedded
synthetic data, and only the ``finished_run`` fixture runs to completion (once per module).
"""

from __future__ import annotations

import csv
import errno
import os
import pickle
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, compose
from hydra.utils import instantiate

import callbacks.csv_logger as csv_logger
import evaluation.results as results_module
from callbacks.csv_logger import AtomicExperimentWriter
from datamodules.frame_dataset import UnreadableImageError
from datamodules.protocol import ProtocolError
from detectors.base import BaseDetector
from detectors.guards import (
    GuardSettings,
    LossGuard,
    NonFiniteScoresError,
    TrainingDivergedError,
    check_saturated,
)
from detectors.weights_file import IDENTITY_KEY, WeightsFileError, load_checkpoint_into
from engine import preflight
from engine.pipeline import run
from engine.preflight import UserConfigError
from engine.user_errors import USER_ERROR_EXIT_CODE, exit_on_user_error
from evaluation.results import OutputWriteError, load_results, write_results
from evaluation.run_dir import SUPERSEDED_DIR_NAME, begin_attempt

# One tiny run: FF++ train/val, one test set, 1 frame per video, 2 training steps of 4 images.
TINY = [
    "experiment=baseline_ffpp", "scale=demo", "detector=resnet34", "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2", "data.batch_size=4", "data.eval_batch_size=32",
    "data.frames_per_video.train=1", "data.frames_per_video.eval=1",
    "~protocol.test", "+protocol.test={celebdf:{dataset:celebdf_v2,split:test}}", "callbacks.progress_bar=null", "~callbacks.plots",
]


def tiny(tmp_path: Path, synthetic_root: Path, *overrides: str):
    return compose([*TINY, *overrides], tmp_path, synthetic_root)


def inject_nan_scores(monkeypatch, every: int = 7) -> None:
    """Every ``every``-th evaluation row (by row index) is scored NaN: an overflowing model."""
    original = BaseDetector._eval_step

    def nan_eval_step(self, batch, dataloader_idx):
        original(self, batch, dataloader_idx)
        index, scores = self._eval_buffers[dataloader_idx][-1]
        scores = scores.clone()
        scores[index % every == 0] = float("nan")
        self._eval_buffers[dataloader_idx][-1] = (index, scores)

    monkeypatch.setattr(BaseDetector, "_eval_step", nan_eval_step)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, synthetic_root):
    """One completed tiny run whose evaluation met NaN scores under ``guards.nonfinite_scores=skip``."""
    run_dir = tmp_path_factory.mktemp("finished")
    with pytest.MonkeyPatch.context() as monkeypatch:
        inject_nan_scores(monkeypatch)
        run(tiny(run_dir, synthetic_root, "guards.nonfinite_scores=skip"))
    return run_dir


# --------------------------------------------------------------------------- 1. non-finite, divergence


def test_nonfinite_loss_stops_at_that_step_naming_components(tmp_path, synthetic_root, monkeypatch):
    original = BaseDetector.task_loss

    def nan_from_step_one(self, logits, labels):
        loss = original(self, logits, labels)
        return loss * float("nan") if self.global_step >= 1 else loss

    monkeypatch.setattr(BaseDetector, "task_loss", nan_from_step_one)
    with pytest.raises(TrainingDivergedError) as error:
        run(tiny(tmp_path, synthetic_root))
    message = str(error.value)
    assert "training step 1 (epoch 0)" in message and "the loss is nan" in message
    assert "non-finite components: ['task']" in message
    assert not (tmp_path / "results.json").exists()


def test_exploding_learning_rate_is_divergence(tmp_path, synthetic_root):
    # The lr 1e6: losses of 8.8e4 and every score 1.0 used to end in a normal results.json.
    with pytest.raises(TrainingDivergedError, match=r"training step 1 \(epoch 0\): training diverged: loss .*\(components: task="):
        run(tiny(tmp_path, synthetic_root, "detector.optimizer.lr=1e6"))
    assert not (tmp_path / "results.json").exists()


@pytest.mark.parametrize(
    "losses, expected",
    [
        ([0.7, 5e3], r"more than guards.divergence_factor=1000 x max\(first loss 0.7, 1\)"),
        ([6.8e37], r"above guards.max_loss=1e\+06"),  # aux weights 1e38: refused at the first step
        ([0.7, float("inf")], r"the loss is inf"),
    ],
)
def test_loss_guard_table(losses, expected):
    guard = LossGuard(GuardSettings())
    with pytest.raises(TrainingDivergedError, match=expected):
        for step, value in enumerate(losses):
            guard.check(torch.tensor(value), {"task": torch.tensor(0.69), "aux": torch.tensor(value)}, step, 0, "Detector")


def test_loss_guard_accepts_a_normal_run_and_can_be_switched_off():
    guard = LossGuard(GuardSettings())
    for step, value in enumerate([0.7, 0.9, 3.0, 0.2]):
        guard.check(torch.tensor(value), {"task": torch.tensor(value)}, step, 0, "Detector")
    off = LossGuard(GuardSettings(divergence_factor=None, max_loss=None))
    for step, value in enumerate([0.7, 1e30]):
        off.check(torch.tensor(value), {"task": torch.tensor(value)}, step, 0, "Detector")


def test_saturated_validation_scores_are_divergence():
    with pytest.raises(TrainingDivergedError, match=r"every one of the 5 scores of set 'val' is exactly 1"):
        check_saturated(np.ones(5), "val", "Detector")
    check_saturated(np.array([1.0, 1.0, 0.0]), "val", "Detector")  # confident, not constant: fine
    check_saturated(np.full(5, 0.5), "val", "Detector")


def test_nonfinite_scores_are_an_error(tmp_path, synthetic_root, monkeypatch):
    inject_nan_scores(monkeypatch)
    with pytest.raises(NonFiniteScoresError, match=r"set 'val': \d+ of \d+ scored frame\(s\) got a non-finite score"):
        run(tiny(tmp_path, synthetic_root, "+trainer.limit_val_batches=1", "trainer.limit_train_batches=1"))


def test_nonfinite_scores_skipped_only_when_asked_are_counted_and_reported(finished_run):
    results = load_results(finished_run / "results.json")
    extra = results["extra"]
    assert extra["complete_evaluation"] is False
    counts = extra["nonfinite_scores"]
    assert counts["val"] > 0 and counts["celebdf"] > 0
    # the dropped frames are counted, not silently lost: scored + dropped = the set's rows
    predictions = results_module.read_predictions(finished_run / "predictions" / "celebdf.csv")
    assert len(predictions) == extra["frames"]["celebdf"]
    assert np.isfinite(predictions["score"]).all()


def test_zero_epochs_is_refused_before_anything_runs(tmp_path, synthetic_root):
    with pytest.raises(UserConfigError, match=r"trainer.max_epochs=0: expected an integer >= 1"):
        run(tiny(tmp_path, synthetic_root, "trainer.max_epochs=0"))
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "results.json").exists()


# --------------------------------------------------------------------------- 2. unsafe and wrong loads


class _Payload:
    """A pickle that runs a shell command when unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _crafted(tmp_path: Path) -> Path:
    path = tmp_path / "crafted.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": _Payload(tmp_path / "PWNED")}, path)
    return path


def _random_bytes(tmp_path: Path) -> Path:
    path = tmp_path / "random.pth"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    return path


def _text(tmp_path: Path) -> Path:
    path = tmp_path / "weights.pt"
    path.write_text("these are not weights\n" * 20)
    return path


def _timm(path: Path):
    from detectors.backbones.timm_backbone import create_timm_backbone

    return create_timm_backbone("resnet34", pretrained=str(path), size="tiny")


def _clip(path: Path):
    from detectors.backbones.clip import build_clip

    return build_clip("ViT-B-16", pretrained=str(path), size="tiny", image_size=64)


def _teacher(path: Path):
    from detectors.dtn import load_state_dict_from_checkpoint

    return load_state_dict_from_checkpoint(path)


def _robustness(path: Path):
    from engine.robustness import load_model

    return load_model(compose(["experiment=baseline_ffpp", "scale=demo", "detector=resnet34"], path.parent), path)


WEIGHT_FILE_FAULTS = [
    ("crafted pickle as robustness ckpt", _crafted, _robustness, "was refused: it is not a plain weights file"),
    ("crafted pickle as DTN teacher", _crafted, _teacher, "was refused: it is not a plain weights file"),
    ("crafted pickle as timm weights", _crafted, _timm, "was refused: it is not a plain weights file"),
    ("random bytes as timm weights", _random_bytes, _timm, "pretrained weights of timm model resnet34"),
    ("text file as CLIP weights", _text, _clip, "is not a PyTorch weights file"),
]


@pytest.mark.parametrize("make, load, expected", [c[1:] for c in WEIGHT_FILE_FAULTS], ids=[c[0] for c in WEIGHT_FILE_FAULTS])
def test_weight_file_faults(tmp_path, make, load, expected):
    path = make(tmp_path)
    with pytest.raises(WeightsFileError) as error:
        load(path)
    message = str(error.value)
    assert str(path) in message and expected in message
    assert "weights_only=False" not in message  # never the advice to load unsafely
    assert not (tmp_path / "PWNED").exists()  # the crafted pickle's command never ran


def _enclosing_callee(text: str, position: int) -> str:
    """The name of the call whose parentheses enclose ``position`` ('' when none)."""
    depth = 0
    for index in range(position - 1, -1, -1):
        if text[index] == ")":
            depth += 1
        elif text[index] == "(":
            if depth == 0:
                name = re.search(r"([\w.]+)\s*$", text[:index])
                return name.group(1) if name else ""
            depth -= 1
    return ""


def test_every_torch_load_in_the_repo_is_weights_only():
    # Loading with weights_only=False would unpickle arbitrary objects. Saving the full training state
    # (Lightning's save_checkpoint(..., weights_only=False)) is not loading and is allowed.
    sources = [p for p in REPO.rglob("*.py") if ".venv" not in p.parts and p.name != "test_faults.py"]
    unsafe = []
    for path in sources:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"weights_only\s*=\s*False", text):
            if not _enclosing_callee(text, match.start()).endswith("save_checkpoint"):
                unsafe.append(f"{path.relative_to(REPO)}:{text.count(chr(10), 0, match.start()) + 1}")
    assert unsafe == []
    assert _enclosing_callee("torch.load(str(p), weights_only=False)", 24) == "torch.load"


def _checkpoint(finished_run: Path) -> dict:
    return torch.load(finished_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def test_checkpoints_carry_the_detector_identity(finished_run):
    assert _checkpoint(finished_run)[IDENTITY_KEY]["detector"] == "detectors.baselines.TimmDetector"


def test_checkpoint_of_another_detector_with_matching_shapes_is_refused(finished_run, tmp_path):
    forged = _checkpoint(finished_run)
    forged[IDENTITY_KEY]["detector"] = "detectors.dfmoe.DFMoE"  # same tensors, another detector
    path = tmp_path / "other.ckpt"
    torch.save(forged, path)
    model = instantiate(compose(TINY, tmp_path).detector, _convert_="all")
    with pytest.raises(WeightsFileError, match=r"written by detector 'detectors.dfmoe.DFMoE', but the model being loaded is 'detectors.baselines.TimmDetector'"):
        load_checkpoint_into(model, path)
    with pytest.raises(WeightsFileError, match="detectors.dfmoe.DFMoE"):  # Lightning loads (resume, test ckpt) too
        model.on_load_checkpoint(forged)


def test_checkpoint_of_another_architecture_names_both(finished_run, tmp_path):
    model = instantiate(compose([*TINY, "detector=vit_b16"], tmp_path).detector, _convert_="all")
    path = finished_run / "checkpoints" / "last.ckpt"
    with pytest.raises(WeightsFileError) as error:
        load_checkpoint_into(model, path)
    assert "detectors.baselines.TimmDetector" in str(error.value) and str(path) in str(error.value)
    # a plain state dict without identity: one message with the differing keys, not Error(s) in loading state_dict
    plain = tmp_path / "plain.pt"
    torch.save(_checkpoint(finished_run)["state_dict"], plain)
    with pytest.raises(WeightsFileError, match=r"does not fit detector .*TimmDetector: \d+ parameter\(s\) of the model are not in the file"):
        load_checkpoint_into(model, plain)


def test_robustness_command_refuses_a_crafted_checkpoint_in_one_line(finished_run, tmp_path, capsys):
    from engine.robustness import main

    crafted = _crafted(tmp_path)
    assert main([f"run_dir={finished_run}", f"ckpt={crafted}", "corruptions=[jpeg]", "severities=[0,1]"]) == 2
    assert f"error: robustness checkpoint {str(crafted)!r} was refused" in capsys.readouterr().err
    assert not (tmp_path / "PWNED").exists()


def test_robustness_loads_the_runs_own_checkpoint(finished_run):
    from engine.robustness import load_model, run_config

    model = load_model(run_config(finished_run), finished_run / "checkpoints" / "last.ckpt")
    assert torch.isfinite(model.val_threshold)


# --------------------------------------------------------------------------- 3. validation before training


CONFIG_FAULTS = [
    ("seed=abc", "seed='abc': expected an integer"),
    ("detector.optimizer.lr=-1", "detector.optimizer.lr=-1: expected a learning rate > 0"),
    ("test_ckpt=worst", "test_ckpt='worst': expected one of ['best', 'last']"),
    ("objective=test/celebdf/auc", "objective='test/celebdf/auc': expected a validation metric"),
    ("objective=val/accuracy", "no metric 'accuracy'"),
    ("trainer.max_epochs=0", "trainer.max_epochs=0: expected an integer >= 1"),
    ("+trainer.max_steps=0", "trainer.max_steps=0"),
    ("+trainer.limit_train_batches=0", "trainer.limit_train_batches=0"),
    ("+detector.aux_loss_weights.kd=nan", "detector.aux_loss_weights.kd=nan: expected a finite weight >= 0"),
    ("data.batch_size=0", "data.batch_size=0: expected an integer >= 1"),
    ("data.normalize_on=gpu", "data.normalize_on='gpu': expected one of ['auto', 'device', 'loader']"),
    ("guards.nonfinite_scores=ignore", "guards.nonfinite_scores='ignore': expected one of ['error', 'skip']"),
]


@pytest.mark.parametrize("override, expected", CONFIG_FAULTS, ids=[c[0] for c in CONFIG_FAULTS])
def test_config_faults(tmp_path, override, expected):
    # TINY's own limit_train_batches is dropped so the table's value is the only one
    base = [o for o in TINY if not o.startswith("+trainer.limit_train_batches")]
    with pytest.raises(UserConfigError) as error:
        preflight.check_config(compose([*base, override], tmp_path))
    assert expected in str(error.value)


def test_all_config_problems_come_in_one_message(tmp_path):
    with pytest.raises(UserConfigError) as error:
        preflight.check_config(compose([*TINY, "seed=abc", "detector.optimizer.lr=-1"], tmp_path))
    assert "seed='abc'" in str(error.value) and "lr=-1" in str(error.value)


def test_input_size_not_a_multiple_of_the_patch_size(tmp_path):
    cfg = compose([*TINY, "detector=clip_finetune", "detector.input_size=70"], tmp_path)
    model = instantiate(cfg.detector, _convert_="all")
    with pytest.raises(UserConfigError, match=r"detector.input_size=70 is not a multiple of the patch size 4 .* use 68 or 72"):
        preflight.check_model(model, 70)


def _datamodule(tmp_path, synthetic_root, *overrides):
    datamodule = instantiate(tiny(tmp_path, synthetic_root, *overrides).data, _convert_="all")
    datamodule.setup("fit")
    return datamodule


LEAKS = [
    ("val", r"frame\(s\) of test set 'leak' are also validation frames .*; a test set must not contain the frames that select"),
    ("train", r"frame\(s\) of set 'leak' are also training frames .*; evaluation data must not be trained on"),
]


@pytest.mark.parametrize("split, expected", LEAKS, ids=[f"test set made of {s} frames" for s, _ in LEAKS])
def test_test_set_sharing_frames_with_train_or_validation_is_refused(tmp_path, synthetic_root, split, expected):
    leak = f"+protocol.test.leak={{dataset:ffpp_c23,split:{split},domain:ffpp,exclude_types:[FaceShifter]}}"
    with pytest.raises(ProtocolError, match=expected):
        _datamodule(tmp_path, synthetic_root, leak)


def test_missing_frame_is_found_before_training(tmp_path, synthetic_root):
    datamodule = _datamodule(tmp_path, synthetic_root)
    gone = str(Path(datamodule.test_sets[0].frames["file"].iloc[3]).with_name("deleted.png"))
    datamodule.test_sets[0].frames.loc[datamodule.test_sets[0].frames.index[3], "file"] = gone
    with pytest.raises(UserConfigError, match=rf"set 'test.celebdf': 1 of \d+ frame file\(s\) do not exist \(e.g. \['{gone}'\]\)"):
        preflight.check_data(datamodule)


def test_undecodable_sample_is_found_before_training(tmp_path, synthetic_root):
    datamodule = _datamodule(tmp_path, synthetic_root)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    datamodule.val_set.frames.loc[datamodule.val_set.frames.index[0], "file"] = str(broken)
    with pytest.raises(UnreadableImageError, match=str(broken)):
        preflight.check_data(datamodule)


def test_output_dir_must_be_writable_and_have_room(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(UserConfigError, match=rf"run directory '{blocker / 'run'}' is not writable"):
        preflight.check_output_dir(blocker / "run", 1)
    with pytest.raises(UserConfigError, match=r"MiB free, the checkpoints need about \d+ MiB"):
        preflight.check_output_dir(tmp_path, 2**62)


def test_user_mistake_is_one_line_without_traceback(tmp_path, monkeypatch, capfd):
    # run.py's main in this process (a subprocess would spend most of the test importing torch)
    import logging
    import runpy

    run_dir = tmp_path / "run"
    monkeypatch.setattr(sys, "argv", ["run.py", "experiment=baseline_ffpp", "scale=demo", "seed=abc", f"hydra.run.dir={run_dir}", "logger=csv"])
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        with pytest.raises(SystemExit) as stop:
            runpy.run_path(str(REPO / "run.py"), run_name="__main__")
    finally:  # Hydra configured the job's logging: give pytest its own back
        root.handlers[:] = handlers
        root.setLevel(level)
    captured = capfd.readouterr()
    output = captured.out + captured.err + (run_dir / "train.log").read_text()
    assert stop.value.code == USER_ERROR_EXIT_CODE
    assert "seed='abc': expected an integer" in output and "Traceback" not in output


def test_user_error_inside_hydra_instantiate_is_still_one_line(tmp_path):
    from hydra.errors import InstantiationException

    def build():
        try:
            raise WeightsFileError(f"pretrained weights {tmp_path}/w.pt is not a PyTorch weights file")
        except WeightsFileError as error:
            raise InstantiationException("Error in call to target 'detectors.baselines.TimmDetector'") from error

    with pytest.raises(SystemExit) as stop:
        exit_on_user_error(build)
    assert stop.value.code == USER_ERROR_EXIT_CODE


def test_bugs_keep_their_traceback():
    def bug():
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        exit_on_user_error(bug)


# --------------------------------------------------------------------------- 4. output writes


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_while_writing_results_names_the_file_and_keeps_the_old_one(finished_run, tmp_path, monkeypatch):
    old = (finished_run / "results.json").read_text()
    results = load_results(finished_run / "results.json")

    def chunks_then_full(obj):
        yield '{\n  "schema_version": 1,'
        _enospc()

    monkeypatch.setattr(results_module, "_json_chunks", chunks_then_full)
    shutil.copy(finished_run / "results.json", tmp_path / "results.json")
    with pytest.raises(OutputWriteError) as error:
        write_results(tmp_path, results)
    assert error.value.errno == errno.ENOSPC
    assert f"cannot write '{tmp_path / 'results.json'}': No space left on device" in str(error.value)
    assert (tmp_path / "results.json").read_text() == old and sorted(os.listdir(tmp_path)) == ["results.json"]


class _FullDiskFile:
    """A file handle that writes half of what it is given, then fails as a full disk does."""

    def __init__(self, handle):
        self.handle = handle

    def write(self, text):
        self.handle.write(text[: len(text) // 2])
        self.handle.flush()
        _enospc()

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


@pytest.mark.parametrize("new_column", [False, True], ids=["append", "rewrite with a new column"])
def test_full_disk_never_leaves_metrics_csv_cut_mid_row(tmp_path, monkeypatch, new_column):
    import builtins

    writer = AtomicExperimentWriter(str(tmp_path))
    writer.log_metrics({"train/loss": 0.5}, step=0)
    writer.save()
    before = Path(writer.metrics_file_path).read_text()
    writer.log_metrics({"train/loss": 0.25, **({"val/auc": 0.9} if new_column else {})}, step=1)

    def full_disk_open(path, mode="r", *args, **kwargs):
        handle = builtins.open(path, mode, *args, **kwargs)
        return _FullDiskFile(handle) if "a" in mode else handle

    monkeypatch.setattr(csv_logger, "open", full_disk_open, raising=False)  # appends fail half-way
    monkeypatch.setattr(os, "fsync", _enospc)  # the atomic rewrite fails on its way to disk
    with pytest.raises(OutputWriteError, match=rf"cannot write '{writer.metrics_file_path}': No space left on device"):
        writer.save()
    monkeypatch.undo()
    assert Path(writer.metrics_file_path).read_text() == before  # complete rows only, as before the failure
    assert list(csv.reader(open(writer.metrics_file_path)))[-1] == ["0", "0.5"]
    assert sorted(os.listdir(tmp_path)) == ["metrics.csv"]
    writer.save()  # space is back: the kept rows are written with a consistent header
    rows = list(csv.DictReader(open(writer.metrics_file_path)))
    assert [row["train/loss"] for row in rows] == ["0.5", "0.25"] and len({len(r) for r in rows}) == 1


def test_rerun_into_a_finished_directory_never_mixes_attempts(finished_run, tmp_path, synthetic_root, monkeypatch):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    old = (run_dir / "results.json").read_text()
    monkeypatch.setattr("engine.pipeline.write_results", lambda *a, **k: _enospc())
    with pytest.raises(OSError):
        run(tiny(run_dir, synthetic_root))  # resumes from last.ckpt, re-tests, then the disk is full
    assert not (run_dir / "results.json").exists()  # no old results.json beside new predictions
    (superseded,) = (run_dir / SUPERSEDED_DIR_NAME).iterdir()
    assert (superseded / "results.json").read_text() == old
    assert (superseded / "predictions" / "celebdf.csv").is_file()
    assert (run_dir / "predictions" / "celebdf.csv").is_file()  # this attempt's, without a results.json


def test_begin_attempt_moves_outputs_and_results_say_so(tmp_path):
    assert begin_attempt(tmp_path) is None
    (tmp_path / "results.json").write_text("{}")
    (tmp_path / "predictions").mkdir()
    (tmp_path / "checkpoints").mkdir()
    target = begin_attempt(tmp_path)
    assert sorted(os.listdir(target)) == ["predictions", "results.json"]
    assert sorted(os.listdir(tmp_path)) == [SUPERSEDED_DIR_NAME, "checkpoints"]  # checkpoints stay: resume needs them


def test_pickle_module_is_not_used_to_load(tmp_path):
    # A plain pickle (not torch.save) is refused as well, naming the file.
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(_Payload(tmp_path / "PWNED")))
    from detectors.weights_file import load_weights_file

    with pytest.raises(WeightsFileError, match=str(path)):
        load_weights_file(path, "pretrained weights")
    assert not (tmp_path / "PWNED").exists()
