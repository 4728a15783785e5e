"""Every experiment composes at both scales; every detector config builds and runs; unknown
names stop with a message naming what was asked for and what exists."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import CONF, compose
from doc_commands import documented_augment_sets
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from datamodules.protocol import parse_protocol
from datamodules.synthetic import ALL_DOMAINS
from detectors.output import DetectorOutput

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
DETECTORS = sorted(p.stem for p in (CONF / "detector").glob("*.yaml") if p.stem != "base")
PROTOCOLS = sorted(p.stem for p in (CONF / "protocol").glob("*.yaml"))
# Protocols no experiment fast-dev-runs (tests/test_training.py runs every experiment's protocol).
PROTOCOLS_WITHOUT_EXPERIMENT = ["uniattack_p1_1", "uniattack_p1_2", "uniattack_p1_3"]


@pytest.mark.parametrize("scale", ["paper", "demo"])
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes(experiment, scale, tmp_path):
    cfg = compose([f"experiment={experiment}", f"scale={scale}"], tmp_path)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["experiment_name"] == experiment
    paper_set, demo_set = documented_augment_sets()[experiment]  # docs/AUGMENTATION.md's table
    assert resolved["data"]["augment"]["name"] == (demo_set if scale == "demo" else paper_set)
    assert resolved["data"]["source"] == ("synthetic" if scale == "demo" else "prepared")
    assert resolved["detector"]["size"] == ("tiny" if scale == "demo" else "paper")
    assert resolved["objective"].startswith("val/")
    assert resolved["callbacks"]["model_checkpoint"]["monitor"].startswith("val/")


@pytest.mark.parametrize("detector", DETECTORS)
def test_detector_builds_tiny_and_scores(detector, tmp_path):
    cfg = compose([f"detector={detector}", "scale=demo"], tmp_path)
    model = instantiate(cfg.detector, _convert_="all")
    images = torch.randn(3, 3, cfg.detector.input_size, cfg.detector.input_size)
    out = model(images)
    assert isinstance(out, DetectorOutput)
    prob = out.fake_probability()
    assert prob.shape == (3,) and bool(((prob >= 0) & (prob <= 1)).all())
    loss = model.task_loss(out.logits, torch.tensor([0, 1, 1]))
    loss.backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable)


def test_clip_linear_probe_trains_only_the_head(tmp_path):
    cfg = compose(["detector=clip_linear_probe", "scale=demo"], tmp_path)
    model = instantiate(cfg.detector, _convert_="all")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"head.weight", "head.bias"}
    model.train()
    assert not model.encoder.training and model.head.training


@pytest.mark.parametrize(
    "override, asked, existing",
    [("detector=xceptionnet", "xceptionnet", "efficientnet_b4"), ("protocol=ffpp_to_mars", "ffpp_to_mars", "ffpp_cross_dataset"),
     ("experiment=gmdf_typo", "gmdf_typo", "baseline_multidomain")],
)
def test_unknown_config_names_list_options(override, asked, existing, tmp_path):
    with pytest.raises(HydraException) as err:
        compose([override], tmp_path)
    assert asked in str(err.value) and existing in str(err.value)


def test_no_absolute_paths_in_configs():
    offenders = [str(p) for p in CONF.rglob("*.yaml") if any(
        line.split(":", 1)[-1].strip().strip("\"'").startswith(("/home", "/work", "/data", "/scratch", "/mnt"))
        for line in p.read_text().splitlines() if not line.lstrip().startswith("#"))]
    assert offenders == []


def test_run_dirs_never_collide(tmp_path):
    import subprocess
    import sys

    code = "from engine.resolvers import run_id; print(run_id())"
    ids = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(CONF).parent).stdout.strip() for _ in range(3)}
    assert len(ids) == 3


# ---------------------------------------------------------------- protocols


def _protocol_datasets(cfg) -> tuple[dict, dict]:
    """The resolved config and its ``data.datasets``; the protocol parses against them and names its tests."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    datasets = resolved["data"]["datasets"]
    parsed = parse_protocol(resolved["protocol"], list(datasets))
    assert parsed.name == cfg.protocol.name and parsed.test
    return resolved, {name: datasets[name] for name in parsed.datasets()}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_protocol_composes_at_paper_scale_on_prepared_data(protocol, tmp_path):
    resolved, datasets = _protocol_datasets(compose([f"protocol={protocol}", "scale=paper"], tmp_path))
    assert resolved["protocol"]["name"] == protocol
    for name, dataset in datasets.items():
        assert dataset["prepared"].startswith(resolved["paths"]["prepared_dir"]), name


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_protocol_selects_data_at_demo_scale(protocol, tmp_path, synthetic_root):
    """Every dataset has its synthetic stand-in, and every item selects frames from it (types exist, no leakage)."""
    cfg = compose([f"protocol={protocol}", "scale=demo"], tmp_path, synthetic_root)
    resolved, datasets = _protocol_datasets(cfg)
    assert resolved["protocol"]["name"] == protocol
    for name, dataset in datasets.items():
        assert dataset["synthetic"] in ALL_DOMAINS, name
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.setup("fit")
    assert len(datamodule.train_table) and len(datamodule.val_set.frames)
    assert [s.name for s in datamodule.test_sets] == list(cfg.protocol.test)
    assert all(len(s.frames) for s in datamodule.test_sets)


@pytest.mark.parametrize("protocol", PROTOCOLS_WITHOUT_EXPERIMENT)
def test_new_protocol_fast_dev_runs(protocol, tmp_path, synthetic_root):
    from engine.pipeline import run
    from evaluation.results import load_results

    cfg = compose(
        [f"protocol={protocol}", "scale=demo", "+trainer.fast_dev_run=true"], tmp_path, synthetic_root
    )
    run(cfg)
    assert set(load_results(tmp_path / "results.json")["tests"]) == set(cfg.protocol.test)


def test_experiment_name_is_the_chosen_file_in_every_way_of_composing(tmp_path):
    """``${choice:experiment}``: run.py's way (engine/compose.py), a plain ``hydra.compose`` with its
    ``hydra`` node, and null without an experiment."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    assert compose(["experiment=gmdf_gid"], tmp_path).experiment_name == "gmdf_gid"
    assert compose([], tmp_path / "none").experiment_name is None
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        plain = hydra_compose("train", overrides=["experiment=moa_diff"], return_hydra_config=True)
    assert plain.experiment_name == "moa_diff"
    assert not any("experiment_name" in p.read_text() for p in (CONF / "experiment").glob("*.yaml"))


def test_every_scaled_file_names_a_scale_and_a_detector_or_experiment():
    """conf/scaled/{detector,experiment}/<scale>/<name>.yaml is chosen by name and optional: a misspelt
    file would silently change nothing, so each must name an existing scale and detector / experiment."""
    scales = {p.stem for p in (CONF / "scale").glob("*.yaml")}
    files = sorted((CONF / "scaled").glob("*/*/*.yaml"))
    assert files
    for path in files:
        kind, scale = path.parent.parent.name, path.parent.name
        assert kind in ("detector", "experiment") and scale in scales, path
        assert (CONF / kind / path.name).is_file(), f"{path}: no conf/{kind}/{path.name}"


def test_scaled_files_hold_the_demo_values_and_paper_scale_keeps_the_papers(tmp_path):
    demo = compose(["experiment=gmdf_ffpp", "scale=demo"], tmp_path / "demo")
    paper = compose(["experiment=gmdf_ffpp"], tmp_path / "paper")
    assert demo.detector.optimizer.lr == 3.0e-4 and demo.detector.aux_loss_weights.sis == 0.0
    assert demo.detector.meta.meta_train_weight == 1.0 and demo.detector.tiny_patch_size == 4
    assert dict(demo.detector.aux_loss_weights) == {"sis": 0.0, "mim": 0.1, "da": 0.1}
    assert demo.data.augment.name == "flip_crop" and paper.data.augment.name == "standard"
    assert paper.detector.meta.meta_train_weight == 0.0 and dict(paper.detector.aux_loss_weights) == {"sis": 1.0, "mim": 1.0, "da": 1.0}
    assert list(demo.detector.second_order.layers) == [0, 1, 2] and demo.detector.mim.tokenizer.vocab_size == 64
    assert paper.detector.optimizer.lr == 3.0e-6 and paper.detector.aux_loss_weights.sis == 1.0
    assert list(paper.detector.second_order.layers) == [8, 9, 10] and paper.detector.mim.tokenizer.vocab_size == 512
    # a command-line value still wins over the scaled file
    assert compose(["experiment=dtn_ffpp", "scale=demo", "detector.embed_dim=32"], tmp_path / "o").detector.embed_dim == 32


def test_detector_configs_stored_before_conf_scaled_still_load():
    """Runs trained when the demo values were ``tiny_sizes`` / ``{paper, tiny}`` keys load as built."""
    from engine.trained import upgrade_stored_detector_config

    dtn = {"size": "tiny", "embed_dim": 512, "num_heads": 8, "tiny_sizes": {"embed_dim": 64, "num_heads": 4}}
    assert upgrade_stored_detector_config(dtn) == {"size": "tiny", "embed_dim": 64, "num_heads": 4}
    assert upgrade_stored_detector_config({"size": "paper", "feature_dim": 512, "tiny_sizes": {"feature_dim": 64}}) == {
        "size": "paper", "feature_dim": 512}
    gmdf = {"size": "tiny", "second_order": {"layers": {"paper": [8, 9, 10], "tiny": [0, 1, 2]}},
            "mim": {"tokenizer": {"vocab_size": {"paper": 512, "tiny": 64}, "lr": 1.0e-3}}}
    assert upgrade_stored_detector_config(gmdf) == {"size": "tiny", "second_order": {"layers": [0, 1, 2]},
                                                    "mim": {"tokenizer": {"vocab_size": 64, "lr": 1.0e-3}}}
    current = {"size": "tiny", "embed_dim": 64, "second_order": {"layers": [0, 1, 2]}}
    assert upgrade_stored_detector_config(dict(current)) == current
