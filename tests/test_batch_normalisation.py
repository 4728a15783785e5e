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


def _trainer(device: str, precision=None):
    """What the datamodule reads of a Trainer: the strategy's device and the precision plugin."""
    return SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device(device)), precision_plugin=precision,
                           global_rank=0, world_size=1)


def _datamodule(tmp_path, synthetic_root, normalize_on: str, device: str | None = None):
    cfg = compose([*OVERRIDES, f"data.normalize_on={normalize_on}"], tmp_path, synthetic_root)
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.setup("fit")  # engine/pipeline.py sets the datamodule up before the Trainer exists
    if device is not None:
        datamodule.trainer = _trainer(device)
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
    on_gpu = _datamodule(tmp_path / "gpu", synthetic_root, "auto", device="cuda")
    assert not on_gpu.loader_normalizes
    # Decided when the loaders are made, though setup ran before the Trainer was attached: every loader
    # gives uint8, while the evaluation sets' own datasets (read by Grad-CAM) stay normalised.
    for loader in (on_gpu.train_dataloader(), on_gpu.val_dataloader(), *on_gpu.test_dataloader()):
        assert loader.dataset[0]["image"].dtype == torch.uint8
    assert on_gpu.val_set.dataset[0]["image"].dtype == torch.float32
    on_cpu = _datamodule(tmp_path / "cpu", synthetic_root, "auto", device="cpu")
    assert on_cpu.loader_normalizes
    assert on_cpu.val_dataloader().dataset[0]["image"].dtype == torch.float32
    assert _datamodule(tmp_path / "none", synthetic_root, "auto").loader_normalizes  # no Trainer: the CPU
    assert not _datamodule(tmp_path / "forced", synthetic_root, "device", device="cpu").loader_normalizes


PRECISIONS = {"bf16-true": torch.bfloat16, "16-true": torch.float16, "64-true": torch.float64, "bf16-mixed": torch.float32}


def _plugin(precision: str):
    from lightning.pytorch.plugins.precision import DoublePrecision, HalfPrecision, MixedPrecision

    if precision == "64-true":
        return DoublePrecision()
    return MixedPrecision(precision, "cpu") if precision.endswith("mixed") else HalfPrecision(precision)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_a_true_precision_gets_its_dtype_after_the_normalisation(tmp_path, synthetic_root, precision):
    """Lightning's precision plugin converts the batch before the copy, when the images are still uint8;
    the hook hands the normalised floats to it again."""
    plugin, dtype = _plugin(precision), PRECISIONS[precision]
    datamodule = _datamodule(tmp_path, synthetic_root, "device", device="cpu")
    datamodule.trainer = _trainer("cpu", plugin)
    batch = datamodule.on_after_batch_transfer(_first_batch(datamodule.val_dataloader()), 0)
    assert batch["image"].dtype == dtype and batch["label"].dtype == torch.int64


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
