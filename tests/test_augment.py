"""The augmentation sets (config group ``augment``): every set builds and keeps uint8 images, each op
does what it says, randomness comes from torch's RNG only (so a seed fixes a run's augmentations),
bad sets are refused by name, and each paper experiment uses the set docs/AUGMENTATION.md gives."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import yaml
from conftest import CONF, REPO, compose
from doc_commands import documented_augment_sets

from datamodules.augment import AugmentConfigError, build_augment
from datamodules.transforms import build_transform

SETS = sorted(p.stem for p in (CONF / "augment").glob("*.yaml"))


def _set(name: str) -> dict:
    return yaml.safe_load((CONF / "augment" / f"{name}.yaml").read_text())


def _image(seed: int = 0, size: int = 48) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    smooth = torch.nn.functional.interpolate(
        torch.rand(1, 3, 6, 6, generator=generator), size=(size, size), mode="bilinear"
    )
    return (smooth[0] * 255).to(torch.uint8)


def _apply(ops, image):
    for op in ops:
        image = op(image)
    return image


@pytest.mark.parametrize("name", SETS)
def test_every_set_builds_and_keeps_uint8_images(name):
    spec = _set(name)
    assert spec["name"] == name
    ops = build_augment(spec)
    assert len(ops) == len([k for k in spec if k != "name"])
    torch.manual_seed(0)
    for seed in range(5):
        out = _apply(ops, _image(seed))
        assert out.dtype == torch.uint8 and out.shape == (3, 48, 48)
    transform = build_transform(32, "imagenet", train=True, augment=spec)
    assert transform(_image()).dtype == torch.float32


@pytest.mark.parametrize(
    ("op", "params"),
    [
        ("hflip", {}),
        ("rotate", {"degrees": 30}),
        ("rotate", {"degrees": 30, "border": "constant"}),
        ("shift_scale_rotate", {}),
        ("pad_crop", {"padding": 6}),
        ("gaussian_blur", {"kernel": [5, 7]}),
        ("gauss_noise", {}),
        ("brightness_contrast", {"brightness": 0.3, "contrast": 0.3}),
        ("hue_saturation", {}),
        ("fancy_pca", {"alpha": 0.5}),
        ("color_jitter", {"brightness": 0.5}),
        ("to_gray", {}),
        ("jpeg", {"quality": [10, 20]}),
    ],
)
def test_each_op_changes_the_image_at_p1_and_never_at_p0(op, params):
    image = _image(3)
    torch.manual_seed(1)
    (changed,) = build_augment({op: {"p": 1.0, **params}})
    assert not torch.equal(changed(image), image)
    assert build_augment({op: {"p": 0.0, **params}}) == []


def test_op_semantics():
    image = _image(4)
    (flip,) = build_augment({"hflip": 1.0})
    assert torch.equal(flip(image), image.flip(-1))
    (gray,) = build_augment({"to_gray": 1.0})
    out = gray(image)
    assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])
    # brightness only: every pixel moves by the same amount (up to clipping)
    (bright,) = build_augment({"brightness_contrast": {"p": 1.0, "brightness": 0.1, "contrast": 0.0}})
    torch.manual_seed(0)
    diff = bright(image).int() - image.int()
    inside = (image > 30) & (image < 225)
    assert diff[inside].unique().numel() == 1 and 0 < abs(int(diff[inside][0])) <= 26
    # pad_crop: a whole-pixel shift of the reflect-padded image, same size, every offset in +-padding
    (crop,) = build_augment({"pad_crop": {"p": 1.0, "padding": 2}})
    padded = torch.nn.functional.pad(image[None].float(), (2, 2, 2, 2), mode="reflect")[0].to(torch.uint8)
    windows = {(top, left): padded[:, top : top + 48, left : left + 48] for top in range(5) for left in range(5)}
    torch.manual_seed(0)
    seen = set()
    for _ in range(200):
        out = crop(image)
        assert out.shape == image.shape
        seen |= {offset for offset, window in windows.items() if torch.equal(out, window)}
    assert seen == set(windows)
    # the probability is the share of images an op touches
    (half,) = build_augment({"hflip": 0.3})
    torch.manual_seed(0)
    flipped = sum(not torch.equal(half(image), image) for _ in range(2000))
    assert 0.26 < flipped / 2000 < 0.34


def test_randomness_is_torch_only_and_seeded():
    ops = build_augment(_set("dtn")) + build_augment(_set("standard"))
    outputs = []
    for python_seed in (1, 2):
        random.seed(python_seed)
        np.random.seed(python_seed)  # neither may matter
        torch.manual_seed(123)
        outputs.append(torch.stack([_apply(ops, _image(k)) for k in range(6)]))
    assert torch.equal(outputs[0], outputs[1])
    torch.manual_seed(124)
    assert not torch.equal(torch.stack([_apply(ops, _image(k)) for k in range(6)]), outputs[0])


def test_loader_workers_give_the_same_augmented_batches_for_the_same_seed():
    transform = build_transform(32, "imagenet", train=True, augment=_set("standard"))
    images = [_image(k) for k in range(8)]

    class Images(torch.utils.data.Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, index):
            return transform(images[index])

    def batches(seed):
        torch.manual_seed(seed)  # the loader's worker seeds derive from torch's RNG
        loader = torch.utils.data.DataLoader(Images(), batch_size=4, num_workers=2)
        return torch.cat(list(loader))

    first = batches(7)
    assert torch.equal(first, batches(7))
    assert not torch.equal(first, batches(8))


def test_bad_sets_are_refused_by_name():
    with pytest.raises(AugmentConfigError, match=r"unknown op 'blur'.*gaussian_blur"):
        build_augment({"blur": 0.5})
    with pytest.raises(AugmentConfigError, match=r"augment.jpeg: .*quality_low"):
        build_augment({"jpeg": {"p": 0.5, "quality_low": 40}})
    with pytest.raises(AugmentConfigError, match=r"quality must be"):
        build_augment({"jpeg": {"p": 0.5, "quality": [0, 100]}})
    with pytest.raises(AugmentConfigError, match=r"probability p must be in \[0, 1\]"):
        build_augment({"hflip": 1.5})
    with pytest.raises(AugmentConfigError, match=r"odd"):
        build_augment({"gaussian_blur": {"p": 1, "kernel": [4, 6]}})
    with pytest.raises(AugmentConfigError, match=r"pad_crop: padding must be a whole number of pixels >= 1, got 0"):
        build_augment({"pad_crop": {"p": 1, "padding": 0}})


def test_each_experiment_uses_the_documented_set(tmp_path):
    """The table lists every experiment with a paper set and a demo set; each experiment composes with them at each
    scale in tests/test_config.py (test_experiment_composes, which composes every experiment at both)."""
    documented = documented_augment_sets()
    experiments = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
    assert sorted(documented) == experiments
    assert {demo for _, demo in documented.values()} == {"flip", "flip_crop"}
    assert set(SETS) >= {name for sets in documented.values() for name in sets}
    # scale=demo trains with the experiment's demo set unless the command line names a set
    assert compose(["experiment=dtn_ffpp", "scale=demo", "augment=dtn"], tmp_path).data.augment.name == "dtn"
    assert compose(["scale=demo"], tmp_path).data.augment.name == "flip"  # no experiment: the default demo set


@pytest.mark.slow
def test_paper_set_runs_in_the_training_pipeline(tmp_path, synthetic_root):
    """The documented demo with the paper's set: python run.py experiment=dtn_ffpp scale=demo augment=dtn"""
    from engine.pipeline import run

    cfg = compose(
        ["experiment=dtn_ffpp", "scale=demo", "augment=dtn", "+trainer.fast_dev_run=true"], tmp_path, synthetic_root
    )
    assert cfg.data.augment.name == "dtn"
    run(cfg)
    assert (tmp_path / "results.json").is_file()


def test_documented_commands_compose_as_written(tmp_path):
    """Every `python run.py` line of docs/AUGMENTATION.md composes (paper-scale runs need prepared
    data and GPUs; the config they select is what is checked), sweeps expanded value by value."""
    text = (REPO / "docs" / "AUGMENTATION.md").read_text()
    commands = [line.split("#")[0].split() for line in text.splitlines() if line.startswith("python run.py")]
    assert len(commands) >= 4
    for words in commands:
        overrides = [w for w in words[2:] if w != "-m"]
        sweep = next((w for w in overrides if w.startswith("augment=") and "," in w), None)
        values = sweep.split("=", 1)[1].split(",") if sweep else [None]
        for value in values:
            chosen = [f"augment={value}" if w == sweep else w for w in overrides]
            cfg = compose(chosen, tmp_path)
            wanted = next(w.split("=", 1)[1] for w in chosen if w.startswith("augment="))
            assert cfg.data.augment.name == wanted, words
            if "data.augment.jpeg.p=0.3" in chosen:
                assert cfg.data.augment.jpeg.p == 0.3
