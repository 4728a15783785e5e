"""Where the images of a batch are normalised (``data.normalize_on``): in the loader's workers, or
for the whole uint8 batch on the device after the copy. Both give the same numbers. (An unknown
place is refused before training: tests/test_faults.py, CONFIG_FAULTS.)"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from conftest import compose
from hydra.utils import instantiate

from datamodules.transforms import NORMALIZATION, normalize_uint8

OVERRIDES = ["experiment=baseline_multidomain", "scale=demo", "data.num_workers=0"]


def _datamodule(tmp_path, synthetic_root, normalize_on: str, device: str | None = None):
    cfg = compose([*OVERRIDES, f"data.normalize_on={normalize_on}"], tmp_path, synthetic_root)
    datamodule = instantiate(cfg.data, _convert_="all")
    if device is not None:  # what Lightning attaches before setup; only the strategy's device is read
        datamodule.trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device(device)))
    datamodule.setup("fit")
    return datamodule


def _first_batch(loader):
    if hasattr(loader.sampler, "set_epoch"):
        loader.sampler.set_epoch(0)
    return next(iter(loader))


def test_device_and_loader_normalisation_give_the_same_batches(tmp_path, synthetic_root):
    torch.manual_seed(0)
    in_loader = _datamodule(tmp_path / "a", synthetic_root, "loader")
    torch.manual_seed(0)
    on_device = _datamodule(tmp_path / "b", synthetic_root, "device")
    for name in ("train_dataloader", "val_dataloader"):
        torch.manual_seed(1)
        expected = in_loader.on_after_batch_transfer(_first_batch(getattr(in_loader, name)()), 0)
        torch.manual_seed(1)
        raw = _first_batch(getattr(on_device, name)())
        assert expected["image"].dtype == torch.float32 and raw["image"].dtype == torch.uint8, name
        assert raw["image"].nbytes * 4 == expected["image"].nbytes
        got = on_device.on_after_batch_transfer(raw, 0)
        assert torch.equal(got["image"], expected["image"]), name  # bit for bit, augmentation included
        assert torch.equal(got["label"], expected["label"]) and torch.equal(got["index"], expected["index"])


def test_auto_normalises_on_an_accelerator_and_in_the_loader_on_the_cpu(tmp_path, synthetic_root):
    assert not _datamodule(tmp_path / "gpu", synthetic_root, "auto", device="cuda").loader_normalizes
    assert _datamodule(tmp_path / "cpu", synthetic_root, "auto", device="cpu").loader_normalizes
    assert _datamodule(tmp_path / "none", synthetic_root, "auto").loader_normalizes  # no Trainer: the CPU
    assert not _datamodule(tmp_path / "forced", synthetic_root, "device", device="cpu").loader_normalizes


def test_batch_normalisation_is_the_per_image_arithmetic():
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    for name, (mean, std) in NORMALIZATION.items():
        batch = normalize_uint8(images, name)
        one_by_one = torch.stack([normalize_uint8(image, name) for image in images])
        assert torch.equal(batch, one_by_one), name
        reference = (images.float() / 255 - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
        assert torch.allclose(batch, reference, atol=1e-5), name
    with pytest.raises(TypeError, match="uint8"):
        normalize_uint8(images.float(), "imagenet")
