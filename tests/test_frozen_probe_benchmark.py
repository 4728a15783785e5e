"""benchmarks/frozen_probe.py: linear probes of an experiment's frozen tower, per fake type
(docs/CLIP_METHODS.md, "What holds `moa_ffpp` back"). A random tiny tower here: no pretraining."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("frozen_probe")


def test_per_type_auc_scores_the_real_frames_against_each_type(bench):
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    types = ["real"] * 4 + ["swap", "swap", "edit", "edit"]
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.8, 0.05, 0.35])  # swaps above every real frame; edits mixed
    per_type = bench.per_type_auc(labels, scores, types)
    assert per_type == {"edit": pytest.approx(0.375), "swap": pytest.approx(1.0)}  # edits: (0 + 3) of 8 pairs


def test_the_tower_is_the_experiments_start_and_user_overrides_win(bench):
    overrides = bench.probe_overrides("moa_ffpp", ["seed=1", "demo_pretrained=null"])
    assert "detector=clip_linear_probe" in overrides and "detector=clip_finetune" not in overrides
    assert "synthetic_pretraining.domains=[wilddeepfake,diff,uniattack,jfsfdb]" in overrides  # moa_ffpp's pretraining
    assert "synthetic_pretraining.pad_crop=4" in overrides  # its whole recipe, the shifts too
    assert [item for item in overrides if item.startswith("demo_pretrained=")] == ["demo_pretrained=null"]
    assert overrides[-2:] == ["seed=1", "demo_pretrained=null"]


def test_probes_every_feature_set_per_type(bench, synthetic_root, capsys):
    # moa_ffpp and its first test set, FF++: the defaults; patch 8, a quarter of the demo's tokens (17 -> 7 s)
    results = bench.main(["--passes", "1", "demo_pretrained=null", "demo_clip_patch_size=8",
                          f"data.synthetic.root={synthetic_root}", "data.synthetic.progress=false"])
    blocks = 4  # the tiny tower
    expected = {"cls_proj", *(f"{kind}{i}" for kind in ("cls", "mean", "tokens") for i in range(blocks))}
    assert set(results) == expected
    for name, row in results.items():
        assert set(row["per_type"]) == {"Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures"}, name
        assert 0.0 <= row["test_auc"] <= 1.0 and 0.0 <= row["val_auc"] <= 1.0
        grid = bench.C_GRID_TOKENS if name.startswith("tokens") else bench.C_GRID
        assert row["C"] in grid
    out = capsys.readouterr().out
    assert "moa_ffpp: " in out and "216 ffpp test frames" in out
    assert out.count("Face2Face") == len(expected)


def test_an_unknown_test_set_is_refused_with_the_known_ones(bench, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--experiment", "moa_ffpp", "--test-set", "celebdf", "demo_pretrained=null"])
    err = capsys.readouterr().err
    assert "'celebdf' is not a test set of moa_ffpp's protocol" in err and "celebdf_v2" in err


def test_each_pass_is_an_epoch_of_the_sampler_and_sequence_first_towers_are_read_per_image(bench):
    import torch
    from torch import nn

    class SequenceFirstTower(nn.Module):  # open_clip's layout flag off: blocks see (tokens, batch, width)
        def __init__(self):
            super().__init__()
            self.transformer = nn.Module()
            self.transformer.batch_first = False
            self.transformer.resblocks = nn.ModuleList([nn.Identity()])

        def forward(self, images):  # (B, 5, 3): token t of image b is b * 10 + t
            tokens = self.transformer.resblocks[0](images.transpose(0, 1))
            return tokens[0]

    class Sampler:
        epochs: list[int] = []

        def set_epoch(self, epoch):
            self.epochs.append(epoch)

    batch = {"image": torch.arange(2)[:, None, None].float() * 10 + torch.arange(5)[None, :, None].float().expand(2, 5, 3),
             "label": torch.tensor([0, 1]), "type": torch.tensor([0, 1])}

    class Loader:
        sampler = Sampler()

        def __iter__(self):
            return iter([dict(batch)])

    datamodule = type("DM", (), {"type_names": ["real", "swap"], "on_after_batch_transfer": lambda self, b, i: b})()
    features, labels, types = bench.extract(bench.TowerFeatures(SequenceFirstTower()), datamodule, Loader(), passes=2)
    assert Loader.sampler.epochs == [0, 1]
    assert labels.tolist() == [0, 1, 0, 1] and types == ["real", "swap", "real", "swap"]
    assert features["cls0"][:, 0].tolist() == [0.0, 10.0, 0.0, 10.0]  # each image's own class token
    assert features["mean0"][:, 0].tolist() == [2.5, 12.5, 2.5, 12.5]
    assert features["tokens0"].shape == (4, 12)
