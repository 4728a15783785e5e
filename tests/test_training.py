"""End to end on the embedded synthetic data: every experiment fast-dev-runs, the baseline learns
(a broken loss or a label flip fails here), results files agree with each other, runs resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import CONF, NO_FIGURES, REPO, compose, trained_aucs
from hydra.utils import instantiate

from datamodules.sources import DatasetNotFoundError
from engine.jobs import run_job
from engine.pipeline import run
from evaluation.metrics import all_metrics
from evaluation.results import load_results

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
MOE_DETECTORS = {"dfmoe", "dtn", "gmdf", "moa_clip", "suede"}


# The figures that depend on the method (the expert-usage heatmaps of a mixture of experts) are drawn for
# every experiment; the ROC/DET curves and the histograms, drawn from the predictions table every method
# writes alike, for one (about 2 s of matplotlib a run saved on the others; their content: test_plots.py).
EVERY_FIGURE = "baseline_ffpp"
COMMON_FIGURES = {"roc_det_frame.png", "roc_det_video.png", "scores_by_domain.png", "scores_by_type.png"}


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_fast_dev_runs(experiment, tmp_path, synthetic_root):
    # Under fast_dev_run the tiny CLIP's pretraining phase runs (each CLIP experiment's recipe: its domains, shifts)
    # for one epoch on 64 images (engine/synthetic_pretraining.py, QUICK_IMAGES); what it learns is the slow
    # tests' business. Patch 8 (a quarter of the demo's patch-4 tokens) halves these runs; the demo's patch 4
    # reaches the detector and the pretraining in test_synthetic_pretraining.py and learns in
    # tests/test_clip_demos.py (slow).
    figures = [] if experiment == EVERY_FIGURE else ["plots.roc=false", "plots.histograms=false"]
    cfg = compose([f"experiment={experiment}", "scale=demo", "+trainer.fast_dev_run=true",
                   "demo_clip_patch_size=8", *figures], tmp_path, synthetic_root)
    run(cfg)
    results = load_results(tmp_path / "results.json")
    assert results["extra"]["complete_evaluation"] is False  # fast_dev_run scores one batch per set
    assert set(results["tests"]) == set(cfg.protocol.test)
    # The default figures; the expert-usage heatmaps for every mixture-of-experts method (GM-DF: the
    # shares of its domain experts in the aggregated view).
    drawn = {p.name for p in (tmp_path / "plots").glob("*.png")}
    expected = set(COMMON_FIGURES) if experiment == EVERY_FIGURE else set()
    method = cfg.detector._target_.split(".")[1]  # detectors.<module>.<class>
    if method in MOE_DETECTORS:
        expected |= {"expert_usage_by_domain.png", "expert_usage_by_type.png"}
    assert drawn == expected, (method, sorted(drawn))


def test_missing_data_directory_names_it(tmp_path):
    cfg = compose(["experiment=baseline_multidomain", f"paths.prepared_dir={tmp_path / 'nowhere'}"], tmp_path)
    datamodule = instantiate(cfg.data, _convert_="all")
    with pytest.raises(DatasetNotFoundError) as err:
        datamodule.setup("fit")
    assert str(tmp_path / "nowhere" / "ffpp_c23") in str(err.value) and "scale=demo" in str(err.value)


# The learning target: in-domain test AUC >= 0.9 and held-out clearly above chance. The
# ResNet-34 tiny stand-in trained 8 epochs on synthetic FF++ + Celeb-DF + DiFF (64 px, lr 2e-3),
# checkpoint chosen on their validation split. Measured (frame AUC, seed 0; docs/RESULTS.md,
# "Reproducibility"): validation 0.897 / 0.894 at 1 / 2 threads (the test runs at 1 under xdist, 2
# alone on 2 cores), in-domain Celeb-DF 0.997 / 0.997, held-out DFDC 0.934 / 0.868. Earlier code
# (docs/RESULTS.md, "Learning on the embedded data"): validation 0.887 / 0.888 / 0.907 over seeds
# 0 / 1 / 2, FF++ in-domain below 0.9 at 8 epochs, so the 0.9 bar is held on Celeb-DF. A label flip
# gives AUC ~1 - x, a loss that does not train ~0.5. Held-out WildDeepfake swings 0.41-0.90 with seed,
# epoch and thread count: not asserted.
LEARNING_OVERRIDES = [
    "experiment=baseline_multidomain", "scale=demo", "trainer.max_epochs=8",
    "+protocol.test.celebdf={dataset:celebdf_v2,split:test,domain:celebdf}",
]
VALIDATION_AUC = 0.85
IN_DOMAIN_AUC = 0.9
HELD_OUT_AUC = 0.8


def test_baseline_learns_the_embedded_data(tmp_path, synthetic_root):
    validation, aucs = trained_aucs(LEARNING_OVERRIDES, tmp_path, synthetic_root)
    assert validation >= VALIDATION_AUC, (validation, aucs)
    assert aucs["celebdf"] >= IN_DOMAIN_AUC, aucs
    assert aucs["dfdc"] >= HELD_OUT_AUC, aucs


def test_results_files_agree(tmp_path, synthetic_root):
    # two short epochs: a choice on validation between two checkpoints, every test set scored in full;
    # uint8 batches normalised by the datamodule's hook after the transfer, as on a GPU (data.normalize_on=auto)
    cfg = compose(["experiment=baseline_multidomain", "scale=demo", "trainer.max_epochs=2", "+trainer.limit_train_batches=3",
                   "data.normalize_on=device", *NO_FIGURES], tmp_path, synthetic_root)
    objective = run(cfg)
    results = load_results(tmp_path / "results.json")
    tests = results["tests"]
    assert results["validation"]["checkpoint"].endswith(".ckpt")  # selected on validation
    assert objective == pytest.approx(results["validation"]["metrics"]["frame"]["auc"])
    assert results["extra"]["complete_evaluation"] is True
    for name, metrics in tests.items():
        predictions = pd.read_csv(tmp_path / "predictions" / f"{name}.csv", dtype={"video_id": str})
        assert list(predictions.columns) == ["path", "video_id", "label", "domain", "type", "score"]
        assert not predictions.duplicated(["path"]).any()
        recomputed = all_metrics(
            predictions["score"].to_numpy(), predictions["label"].to_numpy(), predictions["video_id"].to_numpy(),
            val_threshold=results["validation"]["threshold"],
        )
        for level in ("frame", "video"):
            for key in ("auc", "eer", "ap", "acc", "acc_val_thr", "n"):
                assert recomputed[level][key] == pytest.approx(metrics[level][key], rel=1e-6, nan_ok=True), (name, level, key)
    metrics_csv = pd.read_csv(tmp_path / "csv" / "metrics.csv")
    assert {"train/loss", "train/loss_task", "val/auc", "test/ffpp/auc"} <= set(metrics_csv.columns)


def test_auto_resume_from_last_checkpoint(tmp_path, synthetic_root):
    short = ["experiment=baseline_multidomain", "scale=demo", "+trainer.limit_train_batches=5", *NO_FIGURES]  # = log_every_n_steps at demo scale
    run(compose([*short, "trainer.max_epochs=1"], tmp_path, synthetic_root))
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert last.is_file()
    first_mtime = last.stat().st_mtime_ns
    run(compose([*short, "trainer.max_epochs=2"], tmp_path, synthetic_root))
    metrics = pd.read_csv(tmp_path / "csv" / "metrics.csv")  # appended across attempts
    trained = metrics[metrics["train/loss"].notna()]
    assert set(trained.loc[trained["attempt"] == 2, "epoch"].astype(int)) == {1}  # resumed after epoch 0
    assert set(trained.loc[trained["attempt"] == 1, "epoch"].astype(int)) == {0}  # the first attempt's rows kept
    assert last.stat().st_mtime_ns != first_mtime


def test_cost_is_measured_into_results_when_asked(tmp_path, synthetic_root):
    cfg = compose(
        ["experiment=baseline_multidomain", "scale=demo", "trainer.max_epochs=1", "+trainer.limit_train_batches=2",
         "evaluate_cost=true", "cost.repeats=2", "cost.warmup=0", *NO_FIGURES],
        tmp_path, synthetic_root,
    )
    run(cfg)
    cost = load_results(tmp_path / "results.json")["extra"]["cost"]
    detector = instantiate(cfg.detector, _convert_="all")
    assert cost["params_total"] == sum(p.numel() for p in detector.parameters())
    assert cost["input_size"] == [cfg.detector.input_size] * 2
    assert cost["gflops_per_image"] > 0 and cost["latency_ms_per_image"] > 0
    run(compose(["experiment=baseline_multidomain", "scale=demo", "+trainer.fast_dev_run=true", *NO_FIGURES], tmp_path / "plain", synthetic_root))
    assert "cost" not in load_results(tmp_path / "plain" / "results.json")["extra"]  # off by default


def test_pipeline_key_dispatches_the_self_distillation_chain(tmp_path, monkeypatch):
    """``python run.py experiment=dtn_self_distill`` runs the generation chain (engine/self_distill.py,
    whose chain is tested in tests/test_self_distill.py), every other experiment one plain run."""
    import engine.pipeline
    import engine.self_distill

    called = []
    monkeypatch.setattr(engine.self_distill, "run_self_distillation", lambda cfg: called.append("chain") or 0.5)
    monkeypatch.setattr(engine.pipeline, "run", lambda cfg: called.append("standard") or 0.25)
    assert run_job(compose(["experiment=dtn_self_distill", "scale=demo"], tmp_path)) == 0.5
    assert run_job(compose(["experiment=baseline_multidomain", "scale=demo"], tmp_path)) == 0.25
    assert called == ["chain", "standard"]
    with pytest.raises(ValueError, match="pipeline='chain' unknown"):
        run_job(compose(["experiment=baseline_multidomain", "scale=demo", "pipeline=chain"], tmp_path))
    generation = engine.self_distill.generation_config(compose(["experiment=dtn_self_distill"], tmp_path), 1, "gen0.ckpt")
    assert generation.pipeline == "standard" and generation.detector.teacher_checkpoint == "gen0.ckpt"


def test_ddp_finds_unused_parameters_for_sparsely_trained_detectors():
    from detectors.baselines import TimmDetector
    from detectors.dfmoe import DFMoE
    from detectors.gmdf import GMDFDetector
    from detectors.moa_clip import MoAClipDetector
    from detectors.suede import SuedeDetector
    from engine.pipeline import ddp_strategy

    for detector in (DFMoE, GMDFDetector, MoAClipDetector, SuedeDetector):
        assert ddp_strategy("ddp", detector) == "ddp_find_unused_parameters_true", detector
        assert ddp_strategy("ddp_spawn", detector) == "ddp_spawn_find_unused_parameters_true", detector
        assert ddp_strategy("auto", detector) is None  # a single device keeps its strategy
    assert ddp_strategy("ddp", TimmDetector) is None


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["baseline_multidomain", "dfmoe_ffpp"])
def test_ddp_training_on_two_cpu_processes(tmp_path, synthetic_root, experiment):
    """The README path with trainer=ddp_sim: Lightning relaunches run.py per rank; rank 0 writes. DFMoE
    trains only the selected experts, so it also checks the switch to finding unused parameters."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    args = [
        sys.executable, "run.py", f"experiment={experiment}", "scale=demo", "trainer=ddp_sim",
        "trainer.max_epochs=1", "+trainer.limit_train_batches=4", "logger=csv", f"paths.log_dir={tmp_path}",
        f"data.synthetic.root={synthetic_root}", f"hydra.run.dir={tmp_path / 'run'}",
    ]
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["extra"]["world_size"] == 2  # scale=demo keeps ddp_sim's two processes
    assert results["extra"]["complete_evaluation"] is True
    single = compose([f"experiment={experiment}", "scale=demo"], tmp_path / "single", synthetic_root)
    datamodule = instantiate(single.data, _convert_="all")
    datamodule.setup("fit")
    assert results["extra"]["frames"] == {"val": len(datamodule.val_set.frames), **{s.name: len(s.frames) for s in datamodule.test_sets}}
