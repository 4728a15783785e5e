"""The resolved config reaches every logger (W&B config, TensorBoard hparams, csv/hparams.yaml), W&B's
summary holds the best validation and the tested checkpoint's test metrics, and the run's result files
are attached to the W&B run. W&B runs offline; the checks read the offline run's files."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import compose
from omegaconf import OmegaConf

from engine.pipeline import run
from engine.run_logging import attached_files, flat_config, flatten, save_patterns, summary_metrics
from evaluation.results import load_results

TINY = ["experiment=baseline_multidomain", "scale=demo", "trainer.max_epochs=1", "+trainer.limit_train_batches=2",
        "data.frames_per_video.eval=1", "logger=[csv,wandb,tensorboard]"]


def test_flatten_keeps_lists_as_one_value():
    flat = flatten({"detector": {"num_experts": 4, "layers": [2, 4], "head": {}}, "tags": [], "x": None})
    assert flat == {"detector.num_experts": 4, "detector.layers": "[2, 4]", "detector.head": "{}", "tags": "[]", "x": None}


def test_flat_config_names_the_sweep_knobs(tmp_path):
    cfg = compose(["experiment=dfmoe_ffpp", "scale=demo", "detector.top_k=3"], tmp_path)
    flat = flat_config(OmegaConf.to_container(cfg, resolve=True), choices={"detector": "dfmoe", "protocol": "ffpp_cross_dataset"})
    assert flat["detector.top_k"] == 3 and flat["detector.num_experts"] == cfg.detector.num_experts
    assert flat["protocol.name"] == cfg.protocol.name and flat["experiment_name"] == "dfmoe_ffpp"
    assert flat["groups.detector"] == "dfmoe"
    assert all(v is None or isinstance(v, bool | int | float | str) for v in flat.values())


def test_summary_metrics_of_a_results_dict():
    results = {
        "validation": {"metrics": {"frame": {"auc": 0.9}, "video": {"auc": 0.95}}, "objective": {"key": "val/auc", "value": 0.9}},
        "tests": {"dfdc": {"frame": {"auc": 0.8, "eer": None}, "video": {"auc": 0.85}}},
        "summary": {"m_eer": {"frame": 0.2, "video": None}},
    }
    assert summary_metrics(results) == {
        "selected/val_auc": 0.9, "selected/val_video_auc": 0.95, "objective": 0.9,
        "test/dfdc/auc": 0.8, "test/dfdc/video_auc": 0.85, "test/m_eer": 0.2,
    }


def test_plots_and_results_are_attached_whole_folders_at_once(tmp_path):
    for name in ("results.json", "train.log", "predictions/ffpp.csv", "plots/roc/ffpp.png", "plots/hist.png", "checkpoints/last.ckpt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    files = attached_files(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in files] == ["plots/hist.png", "plots/roc/ffpp.png", "predictions/ffpp.csv", "results.json"]
    assert save_patterns(files, tmp_path) == [str(tmp_path / "results.json"), str(tmp_path / "plots" / "*"),
                                              str(tmp_path / "plots" / "roc" / "*"), str(tmp_path / "predictions" / "*")]


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory, synthetic_root):
    from engine.compose import compose_run_config

    out = tmp_path_factory.mktemp("logged")
    extra = [f"paths.log_dir={out / 'logs'}", f"data.synthetic.root={synthetic_root}", "data.synthetic.progress=false"]
    run(compose_run_config([*extra, *TINY], out))
    return out


def test_csv_hparams_hold_the_resolved_config(logged_run):
    hparams = yaml.safe_load((logged_run / "csv" / "hparams.yaml").read_text())
    assert hparams["experiment_name"] == "baseline_multidomain"
    assert hparams["protocol"]["name"] == "multidomain_leave_wdf" and hparams["detector"]["_target_"]
    assert (logged_run / "csv" / "metrics.csv").is_file()


def _wandb_run_dir(out):
    (run_dir,) = list((out / "wandb").glob("offline-run-*"))
    return run_dir


def wandb_records(path):
    """The protobuf records of an offline run's ``run-*.wandb`` file (LevelDB log format: 7-byte
    header, then 32 KiB blocks of chunks with a 7-byte header: crc32, length, type full/first/middle/last)."""
    import struct

    from wandb.proto import wandb_internal_pb2

    data, block, pos, pending, records = path.read_bytes(), 32768, 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:  # block padding
            pos += left
            continue
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def test_wandb_config_summary_and_files(logged_run):
    run_dir = _wandb_run_dir(logged_run)
    (store,) = list(run_dir.glob("run-*.wandb"))
    config: dict = {}
    summary: dict = {}
    for record in wandb_records(store):
        kind = record.WhichOneof("record_type")
        if kind == "config":
            config.update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "summary":
            summary.update({item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.summary.update})
    results = load_results(logged_run / "results.json")
    assert config["experiment_name"] == "baseline_multidomain"
    assert config["protocol.name"] == "multidomain_leave_wdf"
    assert config["detector.input_size"] == 64 and config["trainer.max_epochs"] == 1
    assert config["groups.experiment"] == "baseline_multidomain" and config["groups.detector"] == "resnet34"
    for name, levels in results["tests"].items():
        assert summary[f"test/{name}/auc"] == pytest.approx(levels["frame"]["auc"])
    assert summary["objective"] == pytest.approx(results["validation"]["objective"]["value"])
    assert "test/m_eer" in summary
    files = {p.relative_to(run_dir / "files").as_posix() for p in (run_dir / "files").rglob("*") if p.is_file()}
    assert "results.json" in files
    assert {f"predictions/{name}.csv" for name in results["tests"]} <= files


def test_tensorboard_hparams_written(logged_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    objective = load_results(logged_run / "results.json")["validation"]["objective"]["value"]
    hp_metric, plugins = [], set()
    for events in (logged_run / "tensorboard").glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        if "hp_metric" in acc.Tags()["scalars"]:
            hp_metric += [e.value for e in acc.Scalars("hp_metric")]
        plugins |= set(acc.PluginAssets("hparams") or []) | set(acc.Tags().get("tensors", []))
    assert pytest.approx(objective) in hp_metric  # the HParams tab's metric is the run's objective
    hparams = yaml.safe_load((logged_run / "tensorboard" / "hparams.yaml").read_text())
    assert hparams["protocol.name"] == "multidomain_leave_wdf"
