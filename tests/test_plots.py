"""The run's figures: the drawing functions on known data, the routing shares behind the expert-usage
heatmaps, Grad-CAM's layer choice on a CNN and a ViT, and (slow) every MoE method with every plot on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import compose
from PIL import Image
from torch import nn

from callbacks.gradcam import FakeLogOdds, find_target_layer, pick_faces
from callbacks.plots import DEFAULTS, RunPlots, routing_shares
from detectors.output import DetectorOutput
from evaluation import plots


def predictions(seed: int = 0, n: int = 60) -> pd.DataFrame:
    generator = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n // 2)
    return pd.DataFrame(
        {
            "path": [f"f{i}.png" for i in range(n)],
            "video_id": [f"v{i // 3}" for i in range(n)],
            "label": labels,
            "domain": np.where(np.arange(n) % 2, "ffpp", "dfdc"),
            "type": np.where(labels == 1, "Deepfakes", "real"),
            "score": np.clip(labels * 0.3 + generator.random(n) * 0.7, 0, 1),
        }
    )


def assert_png(path, min_width: int = 300) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width >= min_width, path


def test_figures_are_written(tmp_path):
    one_class = predictions().query("label == 1")
    path = plots.plot_roc_det({"a": predictions(0), "b": predictions(1), "fakes_only": one_class}, "video", tmp_path / "roc.png")
    assert_png(path)
    assert_png(plots.plot_score_histograms(predictions(), "type", tmp_path / "hist.png"))
    usage = {"block3": pd.DataFrame([[0.7, 0.3], [0.2, 0.8]], index=["dfdc", "ffpp"]), "block7": pd.DataFrame([[0.5, 0.5], [0.5, 0.5]], index=["dfdc", "ffpp"])}
    assert_png(plots.plot_expert_usage(usage, "domain", tmp_path / "usage.png"))
    features = np.random.default_rng(0).normal(size=(40, 8))
    assert_png(plots.plot_tsne(features, ["a", "b"] * 20, [0, 1] * 20, tmp_path / "tsne.png"))
    with pytest.raises(ValueError, match="video"):
        plots.level_scores(predictions(), "clip")
    assert not list(tmp_path.glob(".*.png"))  # no temporary files left behind


def test_video_level_curves_use_mean_frame_scores():
    scores, labels = plots.level_scores(predictions(), "video")
    table = predictions()
    expected = table.groupby("video_id")["score"].mean().sort_index().to_numpy()
    np.testing.assert_allclose(scores, expected)
    assert len(labels) == table["video_id"].nunique()


def test_routing_shares_per_sample():
    # 2 samples x 2 tokens, top-2 of 3 experts, sample-major tokens.
    indices = torch.tensor([[0, 1], [0, 2], [2, 1], [2, 1]])
    weights = torch.tensor([[0.75, 0.25], [0.5, 0.5], [1.0, 0.0], [0.6, 0.4]])
    shares = routing_shares(indices, weights, 3, 2)
    np.testing.assert_allclose(shares.numpy(), [[0.625, 0.125, 0.25], [0.0, 0.2, 0.8]])
    with pytest.raises(ValueError, match="multiple"):
        routing_shares(indices, weights, 3, 3)


def test_expert_usage_table_groups_by_domain():
    """What the callback collects in a test batch becomes rows that sum to 1, one per group."""
    callback = RunPlots("unused", {"expert_usage": True})
    frames = pd.DataFrame({"domain": ["a", "a", "b", "b"], "type": ["real", "x", "real", "x"], "label": [0, 1, 0, 1]})
    eval_set = type("EvalSet", (), {"frames": frames, "name": "s"})()
    callback._routing = {"moe": [(np.zeros(4, int), np.array([0, 1, 2, 3]), np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [0.2, 0.8]]))]}
    usage = callback._expert_usage([eval_set], "domain")["moe"]
    np.testing.assert_allclose(usage.loc["a"].to_numpy(), [0.75, 0.25])
    np.testing.assert_allclose(usage.loc["b"].to_numpy(), [0.1, 0.9])
    with pytest.raises(ValueError, match="unknown setting"):
        RunPlots("unused", {"tnse": True})
    assert set(DEFAULTS) == set(__import__("omegaconf").OmegaConf.load("conf/plots/default.yaml"))


class TinyViT(nn.Module):
    """Tokens (B, 1 + 4x4, D) through two blocks: Grad-CAM explains the last block's first norm."""

    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, 8, 4, stride=4)
        self.blocks = nn.ModuleList([nn.ModuleDict({"norm1": nn.LayerNorm(8), "norm2": nn.LayerNorm(8)}) for _ in range(2)])
        self.head = nn.Linear(8, 1)

    def forward(self, images, batch=None):
        tokens = self.patch(images).flatten(2).transpose(1, 2)
        tokens = torch.cat([tokens.mean(1, keepdim=True), tokens], dim=1)
        for block in self.blocks:
            tokens = block["norm2"](block["norm1"](tokens))
        return DetectorOutput(logits=self.head(tokens[:, 0]).squeeze(1))


def test_gradcam_layer_is_found_for_cnns_and_transformers():
    import torchvision

    images = torch.randn(2, 3, 64, 64)  # layer4 of a ResNet: 2x2
    cnn = torchvision.models.resnet18(num_classes=2)

    class Cnn(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = cnn

        def forward(self, images, batch=None):
            return DetectorOutput(logits=self.net(images))

    layer, reshape, description = find_target_layer(FakeLogOdds(Cnn()), images)
    assert reshape is None and "layer4" in description
    layer, reshape, description = find_target_layer(FakeLogOdds(TinyViT()), torch.randn(2, 3, 16, 16))
    assert description.startswith("detector.blocks.1.norm1") and reshape(torch.zeros(2, 17, 8)).shape == (2, 8, 4, 4)
    assert FakeLogOdds(Cnn())(images).shape == (2, 1)
    frames = pd.DataFrame({"label": [0] * 5 + [1] * 5})
    chosen = pick_faces(frames, 4)
    assert sorted(frames.loc[chosen, "label"]) == [0, 0, 1, 1]


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["dfmoe_ffpp", "dtn_ffpp", "gmdf_multidomain", "moa_ffpp", "suede_uniattack_p1"])
def test_moe_run_draws_every_plot(experiment, tmp_path, synthetic_root):
    """Every MoE method (CNNs and CLIP ViTs) with t-SNE and Grad-CAM on: every figure is written and readable.
    (The default figures of all 14 experiments: tests/test_training.py's fast-dev-runs.) The loaders give
    uint8 batches normalised after the transfer, as on a GPU; Grad-CAM reads the normalised test sets."""
    from engine.pipeline import run

    cfg = compose(
        [f"experiment={experiment}", "scale=demo", "+trainer.fast_dev_run=true",
         "plots.tsne=true", "plots.gradcam=true", "plots.gradcam_faces=4", "data.normalize_on=device"],
        tmp_path, synthetic_root,
    )
    run(cfg)
    names = {p.name for p in (tmp_path / "plots").glob("*.png")}
    assert {"roc_det_frame.png", "roc_det_video.png", "scores_by_domain.png", "scores_by_type.png",
            "expert_usage_by_domain.png", "expert_usage_by_type.png", "tsne.png"} <= names
    assert {f"gradcam_{name}.png" for name in cfg.protocol.test} <= names
    for name in names:
        assert_png(tmp_path / "plots" / name)


def test_a_failing_figure_is_listed_not_fatal(tmp_path, monkeypatch):
    """A figure that raises is logged and listed in failed.json; the others are still drawn."""
    from types import SimpleNamespace

    def broken(*args, **kwargs):
        raise RuntimeError("no ink")

    monkeypatch.setattr(plots, "plot_score_histograms", broken)
    callback = RunPlots(str(tmp_path), {"expert_usage": False})
    eval_set = SimpleNamespace(name="s", frames=predictions())
    trainer = SimpleNamespace(is_global_zero=True, datamodule=SimpleNamespace(eval_sets=lambda stage: [eval_set]), loggers=[])
    module = SimpleNamespace(eval_results={"test": {"s": {"predictions": predictions()}}})
    callback.on_test_end(trainer, module)
    failed = __import__("json").loads((tmp_path / "failed.json").read_text())
    assert failed == {"scores_by_domain": "RuntimeError: no ink", "scores_by_type": "RuntimeError: no ink"}
    assert {p.name for p in callback.written} == {"roc_det_frame.png", "roc_det_video.png"}
