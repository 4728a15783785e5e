"""Deepfake self-distillation: the student's KD term is computed against a frozen teacher loaded from the
previous generation's checkpoint (whose weights never change), and the chain runs G + 1 generations in
their own directories, each taught by the one before, listed in self_distill.json."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import compose
from omegaconf import OmegaConf

from detectors.dtn import DTN, DistilledTimmDetector
from engine.self_distill import SELF_DISTILL_FILE_NAME, generation_config, run_self_distillation
from evaluation.metrics import all_metrics
from evaluation.results import build_results, write_results
from losses.distillation import as_two_class_logits, knowledge_distillation_loss

OPTIMIZER = functools.partial(torch.optim.Adam, lr=1e-2)
WEIGHTS = {"contrastive_center": 0.6, "kd": 0.4}


def tiny_dtn(**overrides) -> DTN:
    kwargs = dict(size="tiny", input_size=64, optimizer=OPTIMIZER, aux_loss_weights=WEIGHTS, task_loss_weight=4.0)
    return DTN(**{**kwargs, **overrides})


def save_lightning_like_checkpoint(model: torch.nn.Module, path: Path) -> Path:
    torch.save({"state_dict": model.state_dict(), "epoch": 0}, path)
    return path


def test_knowledge_distillation_loss():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    assert knowledge_distillation_loss(logits, logits).item() == pytest.approx(0.0, abs=1e-7)
    teacher = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    temperature = 3.0
    p = torch.softmax(teacher / temperature, 1)
    q = torch.log_softmax(logits / temperature, 1)
    expected = (p * (p.log() - q)).sum(1).mean() * temperature**2
    torch.testing.assert_close(knowledge_distillation_loss(logits, teacher, temperature), expected)
    one_logit = torch.tensor([0.7, -2.0])
    torch.testing.assert_close(torch.softmax(as_two_class_logits(one_logit), 1)[:, 1], torch.sigmoid(one_logit))
    student = logits.clone().requires_grad_(True)
    frozen = teacher.clone().requires_grad_(True)
    knowledge_distillation_loss(student, frozen).backward()
    assert frozen.grad is None and student.grad is not None  # the teacher side is detached


def test_student_kd_term_is_computed_against_the_frozen_teacher(tmp_path):
    torch.manual_seed(0)
    teacher_source = tiny_dtn()
    checkpoint = save_lightning_like_checkpoint(teacher_source, tmp_path / "gen0.ckpt")
    torch.manual_seed(1)
    student = tiny_dtn(teacher_checkpoint=str(checkpoint))
    teacher = student.teacher
    assert teacher is not None and teacher is not teacher_source and not teacher.training
    for name, value in teacher_source.state_dict().items():
        torch.testing.assert_close(teacher.state_dict()[name], value, equal_nan=True)  # val_threshold: NaN
    teacher_ids = {id(p) for p in teacher.parameters()}
    assert not teacher_ids & {id(p) for p in student.parameters()}  # not optimised, not checkpointed
    assert set(student.state_dict()) == set(teacher_source.state_dict())
    frozen = {n: v.clone() for n, v in teacher.state_dict().items()}

    images = torch.randn(6, 3, 64, 64)
    batch = {"label": torch.tensor([0, 1, 0, 1, 1, 0])}
    optimizer = torch.optim.Adam(student.parameter_groups(), lr=1e-2)
    student.train()
    for _ in range(3):
        output = student(images, batch)
        with torch.no_grad():
            teacher_logits = teacher_source.eval()(images).logits
        assert set(output.aux_losses) == {"contrastive_center", "kd"}
        torch.testing.assert_close(output.aux_losses["kd"], knowledge_distillation_loss(output.logits, teacher_logits, 4.0))
        total, components = student.combine_losses(output, batch)
        torch.testing.assert_close(total, components["task"] + 0.6 * components["contrastive_center"] + 0.4 * components["kd"])
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert not teacher.training and all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    for name, value in teacher.state_dict().items():
        torch.testing.assert_close(value, frozen[name], rtol=0, atol=0, equal_nan=True, msg=f"teacher {name} changed")
    assert any(not torch.equal(a, b) for a, b in zip(student.parameters(), teacher.parameters()))


@pytest.mark.parametrize("student_init", ["fresh", "teacher"])
def test_student_starts_fresh_by_default_or_from_the_teachers_weights(tmp_path, student_init):
    torch.manual_seed(0)
    teacher_source = tiny_dtn()
    checkpoint = save_lightning_like_checkpoint(teacher_source, tmp_path / "gen0.ckpt")
    torch.manual_seed(1)
    student = tiny_dtn(teacher_checkpoint=str(checkpoint), student_init=student_init)
    same = [torch.equal(a, b) for a, b in zip(student.parameters(), teacher_source.parameters())]
    assert all(same) if student_init == "teacher" else not all(same)
    images = torch.randn(4, 3, 64, 64)
    if student_init == "teacher":  # a copy: identical outputs, separate parameters
        torch.testing.assert_close(student.eval()(images).logits, student.teacher(images).logits)
        assert not {id(p) for p in student.parameters()} & {id(p) for p in student.teacher.parameters()}
    with pytest.raises(ValueError, match="student_init='copy'"):
        tiny_dtn(student_init="copy")


def test_a_distilled_timm_baseline_gets_the_same_losses(tmp_path):
    torch.manual_seed(2)
    kwargs = dict(backbone="legacy_xception", size="tiny", input_size=64, optimizer=OPTIMIZER, aux_loss_weights=WEIGHTS)
    checkpoint = save_lightning_like_checkpoint(DistilledTimmDetector(**kwargs), tmp_path / "xception.ckpt")
    student = DistilledTimmDetector(**kwargs, teacher_checkpoint=str(checkpoint)).train()
    output = student(torch.randn(4, 3, 64, 64), {"label": torch.tensor([0, 1, 1, 0])})
    assert output.logits.shape == (4,) and set(output.aux_losses) == {"contrastive_center", "kd"}


def fake_generation_run(calls: list, with_checkpoint: bool = True):
    """Stands in for engine.pipeline.run: writes a results.json and a checkpoint in the generation dir."""

    def run(cfg) -> float:
        output_dir = Path(cfg.paths.output_dir)
        calls.append({"dir": output_dir, "seed": cfg.seed, "teacher": cfg.detector.teacher_checkpoint})
        checkpoint = output_dir / "checkpoints" / "epoch000.ckpt"
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        if with_checkpoint:
            checkpoint.write_bytes(b"weights")
        generation = len(calls) - 1
        scores = np.array([0.1, 0.4, 0.35, 0.8]) + 0.01 * generation
        metrics = all_metrics(scores, np.array([0, 0, 1, 1]), np.array(["a", "b", "c", "d"]))
        validation = {"metrics": metrics, "checkpoint": str(checkpoint) if with_checkpoint else None,
                      "objective": {"key": "val/auc", "value": 0.7 + 0.1 * generation}}
        config = OmegaConf.to_container(cfg, resolve=True)
        write_results(output_dir, build_results(config, validation, {"ffpp": metrics}, None, 1.0))
        return validation["objective"]["value"]

    return run


def test_chain_runs_g_plus_one_generations_each_taught_by_the_previous(tmp_path):
    cfg = compose(["experiment=dtn_self_distill", "scale=demo", "self_distill.generations=2"], tmp_path)
    calls: list = []
    objective = run_self_distillation(cfg, run_generation=fake_generation_run(calls))
    assert [c["dir"] for c in calls] == [tmp_path / f"gen{g}" for g in range(3)]
    assert [c["seed"] for c in calls] == [cfg.seed, cfg.seed + 1, cfg.seed + 2]
    checkpoints = [str(tmp_path / f"gen{g}" / "checkpoints" / "epoch000.ckpt") for g in range(3)]
    assert [c["teacher"] for c in calls] == [None, checkpoints[0], checkpoints[1]]
    summary = json.loads((tmp_path / SELF_DISTILL_FILE_NAME).read_text())
    assert summary["generations_finished"] == 3 and summary["best_generation_on_validation"] == 2
    assert [e["role"] for e in summary["entries"]] == ["teacher", "student1", "student2"]
    assert [e["checkpoint"] for e in summary["entries"]] == checkpoints
    assert all("ffpp" in e["tests"] for e in summary["entries"])
    assert objective == pytest.approx(0.9)
    # A rerun reuses finished generations and retrains none of them.
    rerun: list = []
    run_self_distillation(cfg, run_generation=fake_generation_run(rerun))
    assert rerun == [] and all(e["reused"] for e in json.loads((tmp_path / SELF_DISTILL_FILE_NAME).read_text())["entries"])


def test_chain_stops_when_a_generation_leaves_no_teacher_checkpoint(tmp_path):
    cfg = compose(["experiment=dtn_self_distill", "scale=demo", "self_distill.generations=1"], tmp_path)
    with pytest.raises(FileNotFoundError, match="saved no checkpoint to teach generation 1"):
        run_self_distillation(cfg, run_generation=fake_generation_run([], with_checkpoint=False))
    assert json.loads((tmp_path / SELF_DISTILL_FILE_NAME).read_text())["generations_finished"] == 1


def test_chain_config_checks(tmp_path):
    cfg = compose(["experiment=dtn_self_distill", "scale=demo", "detector.teacher_checkpoint=/x.ckpt"], tmp_path)
    with pytest.raises(ValueError, match="must be null"):
        run_self_distillation(cfg, run_generation=fake_generation_run([]))
    baseline = compose(["experiment=baseline_ffpp", "scale=demo", "+self_distill.generations=1"], tmp_path)
    with pytest.raises(ValueError, match="no 'teacher_checkpoint' option"):
        run_self_distillation(baseline, run_generation=fake_generation_run([]))
    gen_cfg = generation_config(compose(["experiment=dtn_self_distill", "scale=demo"], tmp_path), 2, "/t.ckpt")
    assert gen_cfg.paths.output_dir == str(tmp_path / "gen2") and gen_cfg.detector.teacher_checkpoint == "/t.ckpt"
    assert gen_cfg.callbacks.model_checkpoint.dirpath == str(tmp_path / "gen2" / "checkpoints")


# The demo recipe as a user types it, cut to teacher + one student (the full chain of experiment=dtn_self_distill
# scale=demo runs generations 0..3). FF++ test (in-domain) frame AUC, teacher / student 1, synthetic generator
# version 5: 0.931 / 0.920 (seed 0 through run.py), 0.861 / 0.932 and 0.943 / 0.948 (seeds 1, 2), and
# 0.899 / 0.798 for seed 0 inside this test (pytest's worker threads change the trajectory by about as much as a
# seed does). docs/CNN_METHODS.md, "Demo scale". The bars sit below every measured run and far above chance:
# they catch a KD term that pulls the student the wrong way, or a label flip.
DEMO_TEACHER_FFPP_AUC = 0.82
DEMO_STUDENT_FFPP_AUC = 0.75
DEMO_VAL_AUC = 0.85
DEMO_OVERRIDES = ["experiment=dtn_self_distill", "scale=demo", "self_distill.generations=1"]


@pytest.mark.slow
def test_chain_at_demo_scale_trains_a_teacher_and_a_distilled_student(tmp_path, synthetic_root):
    import hashlib

    import pandas as pd

    cfg = compose(DEMO_OVERRIDES, tmp_path, synthetic_root)
    run_self_distillation(cfg)
    summary = json.loads((tmp_path / SELF_DISTILL_FILE_NAME).read_text())
    entries = summary["entries"]
    assert [e["role"] for e in entries] == ["teacher", "student1"]
    checkpoints = [Path(e["checkpoint"]) for e in entries]
    assert all(c.is_file() and c.parent == tmp_path / f"gen{g}" / "checkpoints" for g, c in enumerate(checkpoints))
    assert entries[1]["teacher_checkpoint"] == str(checkpoints[0])
    teacher_metrics = pd.read_csv(tmp_path / "gen0" / "csv" / "metrics.csv")
    student_metrics = pd.read_csv(tmp_path / "gen1" / "csv" / "metrics.csv")
    assert "train/loss_kd" not in teacher_metrics.columns
    assert student_metrics["train/loss_kd"].notna().any()  # the student trained with the KD term
    digest = hashlib.sha256(checkpoints[0].read_bytes()).hexdigest()
    run_self_distillation(cfg)  # finished generations are reused: nothing retrains, the teacher file is intact
    assert hashlib.sha256(checkpoints[0].read_bytes()).hexdigest() == digest
    val_aucs = [e["validation"]["frame"]["auc"] for e in entries]
    ffpp_aucs = [e["tests"]["ffpp"]["frame"]["auc"] for e in entries]
    print("validation", val_aucs, "ffpp", ffpp_aucs)
    assert min(val_aucs) >= DEMO_VAL_AUC, val_aucs
    assert ffpp_aucs[0] >= DEMO_TEACHER_FFPP_AUC and ffpp_aucs[1] >= DEMO_STUDENT_FFPP_AUC, ffpp_aucs
