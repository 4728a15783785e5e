"""The dVAE tokenizer of GM-DF's masked image modelling: one token per ViT patch, it learns (its codes
keep more of the image than the mean image does), it is deterministic, it is cached by a fingerprint
of the training files, and the detector trains or loads it from a datamodule."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import detectors.dvae as dvae
from detectors.dvae import (
    DiscreteVAE,
    DVAEConfig,
    code_perplexity,
    dvae_fingerprint,
    load_or_train_dvae,
    train_dvae,
)

FAST = DVAEConfig(vocab_size=32, hidden_channels=16, codebook_dim=16, steps=300, batch_size=32, lr=3e-3, max_images=64)


def blocky_images(count: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Images made of flat-coloured 8x8 cells: a tokenizer with enough codes can describe each cell."""
    generator = torch.Generator().manual_seed(seed)
    palette = torch.rand(6, 3, generator=generator) * 2 - 1
    cells = torch.randint(0, 6, (count, size // 8, size // 8), generator=generator)
    return palette[cells].permute(0, 3, 1, 2).repeat_interleave(8, dim=2).repeat_interleave(8, dim=3)


def write_pngs(folder: Path, count: int, size: int = 32) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    images = ((blocky_images(count, size) + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    paths = []
    for i, array in enumerate(images):
        path = folder / f"{i:03d}.png"
        Image.fromarray(np.ascontiguousarray(array)).save(path)
        paths.append(str(path))
    return paths


def test_one_token_per_vit_patch_in_row_major_order():
    model = DiscreteVAE(patch_size=16, vocab_size=10, hidden_channels=8, codebook_dim=4)
    images = torch.randn(2, 3, 64, 48)
    tokens = model.tokenize(images)
    assert tokens.shape == (2, 4 * 3) and tokens.dtype == torch.long
    assert int(tokens.max()) < 10 and int(tokens.min()) >= 0
    assert torch.equal(tokens.reshape(2, 4, 3), model.encode_logits(images).argmax(dim=1))
    reconstruction, logits = model(images, temperature=0.5)
    assert reconstruction.shape == images.shape and logits.shape == (2, 10, 4, 3)
    with pytest.raises(ValueError, match="power of two"):
        DiscreteVAE(patch_size=12)
    with pytest.raises(ValueError, match="multiple of patch_size"):
        model.tokenize(torch.randn(1, 3, 40, 40))


def test_training_makes_codes_informative_and_is_reproducible():
    images = blocky_images(64)
    model, stats = train_dvae(images, patch_size=8, config=FAST)
    print(stats)
    # Useless codes reconstruct no better than the mean image; these keep most of each image.
    assert stats["hard_code_mse"] < 0.5 * stats["mean_image_mse"]
    assert stats["perplexity"] > 4  # several codes in use, no collapse
    assert not any(p.requires_grad for p in model.parameters())
    short = DVAEConfig(vocab_size=32, hidden_channels=16, codebook_dim=16, steps=20, batch_size=32)
    first, _ = train_dvae(images, patch_size=8, config=short)
    again, _ = train_dvae(images, patch_size=8, config=short)
    assert torch.equal(first.tokenize(images), again.tokenize(images))


def test_perplexity_counts_codes_in_use():
    assert code_perplexity(torch.zeros(100, dtype=torch.long), 8) == pytest.approx(1.0)
    assert code_perplexity(torch.arange(8).repeat(10), 8) == pytest.approx(8.0)


def test_cache_is_reused_for_the_same_files_and_separate_for_others(tmp_path, monkeypatch):
    files = write_pngs(tmp_path / "images", 24)
    config = DVAEConfig(vocab_size=8, hidden_channels=8, codebook_dim=8, steps=5, batch_size=8, max_images=24)
    model, path, payload = load_or_train_dvae(tmp_path / "cache", files, 32, "clip", 8, config)
    assert path.is_file() and payload["fingerprint"] in path.name and payload["stats"]["images"] == 24

    def must_not_train(*args, **kwargs):
        raise AssertionError("trained again although a cached tokenizer exists")

    monkeypatch.setattr(dvae, "train_dvae", must_not_train)
    reloaded, same_path, _ = load_or_train_dvae(tmp_path / "cache", list(reversed(files)), 32, "clip", 8, config)
    assert same_path == path
    images = torch.randn(3, 3, 32, 32)
    assert torch.equal(reloaded.tokenize(images), model.tokenize(images))
    numerics = payload["numerics"]
    assert numerics == f"cpu/{torch.backends.cpu.get_cpu_capability()}/{torch.get_num_threads()} threads"
    assert dvae_fingerprint(files, 32, "clip", 8, config, numerics=numerics) == payload["fingerprint"]
    assert dvae_fingerprint(files[:-1], 32, "clip", 8, config, numerics=numerics) != payload["fingerprint"]
    assert dvae_fingerprint(files, 32, "imagenet", 8, config, numerics=numerics) != payload["fingerprint"]
    assert dvae_fingerprint(files, 32, "clip", 8, DVAEConfig(vocab_size=9), numerics=numerics) != payload["fingerprint"]
    # trained at another thread count (or on a GPU) the weights differ: cached apart (common/numerics.py)
    assert dvae_fingerprint(files, 32, "clip", 8, config, numerics=numerics.replace(" threads", "0 threads")) != payload["fingerprint"]


def test_detector_trains_its_tokenizer_from_the_training_frames(tmp_path):
    from detectors.gmdf import GMDFDetector

    files = write_pngs(tmp_path / "frames", 16, size=64)
    datamodule = SimpleNamespace(train_table=pd.DataFrame({"file": files}))
    detector = GMDFDetector(
        size="tiny", input_size=64, normalization="clip", optimizer=partial(torch.optim.Adam, lr=1e-3),
        aux_loss_weights={"sis": 1.0, "mim": 1.0, "da": 1.0}, second_order={"layers": [0, 1, 2]},  # the tiny ViT's
        mim={"target": "dvae", "cache_dir": str(tmp_path / "cache"),
             "tokenizer": {"vocab_size": 16, "hidden_channels": 8, "codebook_dim": 8, "steps": 5, "batch_size": 8}},
    )
    assert not bool(detector.tokenizer_ready)
    path, payload = detector.prepare_tokenizer(datamodule)
    assert bool(detector.tokenizer_ready) and path.parent == tmp_path / "cache"
    cached, _ = dvae.load_dvae(path)
    images = torch.randn(2, 3, 64, 64)
    assert torch.equal(detector.tokenizer.tokenize(images), cached.tokenize(images))
    assert detector.tokenizer.tokenize(images).shape == (2, 64)  # the tiny CLIP's 8x8 patch grid
    with pytest.raises(ValueError, match="vocab"):
        detector.set_tokenizer(DiscreteVAE(8, vocab_size=7))


def test_a_tokenizer_prepared_ahead_is_trained_where_the_run_will_train(tmp_path, monkeypatch):
    """``python -m engine.tokenizer``: the run's device (its cache key holds the device kind), so the run
    finds the file instead of training another (common/numerics.py)."""
    from conftest import compose

    from engine.tokenizer import run_device

    demo = compose(["experiment=gmdf_multidomain", "scale=demo"], tmp_path / "demo")  # trainer=cpu
    paper = compose(["experiment=gmdf_multidomain"], tmp_path / "paper")  # trainer=gpu
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert run_device(demo) == "cpu" and run_device(paper) == "cuda:0"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert run_device(paper) == "cpu"
