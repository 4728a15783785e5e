"""Image transforms: resize, the training augmentation set, normalisation (ImageNet or CLIP statistics)."""

from __future__ import annotations

import functools
from collections.abc import Mapping

import torch
from torchvision.transforms import v2

from common.choices import check_choice
from datamodules.augment import build_augment

NORMALIZATION: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    "half": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # Xception/Inception-style [-1, 1]
}


def build_transform(
    image_size: int, normalization: str, train: bool, augment: Mapping | None = None, normalize: bool = True
) -> v2.Compose:
    """Resize to ``image_size`` and normalise; training runs the augmentation set in between.

    Input: a uint8 CHW tensor (``FrameTable`` decodes with torchvision.io) or a PIL image. The
    resize and every augmentation op run on uint8 (datamodules/augment.py); only the last step
    converts to float and normalises. ``normalize=False`` stops before that step and returns the
    uint8 image: :class:`FaceDataModule`'s loaders do on an accelerator (``data.normalize_on``), and
    it normalises the whole batch on the device after the copy (docs/ARCHITECTURE.md, "Batches").
    """
    check_choice("normalization", normalization, NORMALIZATION)
    steps: list = [v2.ToImage(), v2.Resize((image_size, image_size), antialias=True)]
    if train:
        steps += build_augment(augment)
    if normalize:
        steps.append(NormalizeUint8(*NORMALIZATION[normalization]))
    return v2.Compose(steps)


def _affine(mean, std, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, bias) with ``(x / 255 - mean) / std == bias + x * scale``, shaped (3, 1, 1)."""
    scale = 1.0 / (torch.tensor(std, device=device).view(3, 1, 1) * 255.0)
    return scale, -(torch.tensor(mean, device=device).view(3, 1, 1) * 255.0) * scale


def _normalized(images: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    if images.dtype != torch.uint8:
        raise TypeError(f"normalisation takes uint8 images, got {images.dtype}")
    return torch.addcmul(bias, images.to(torch.float32), scale)


@functools.cache
def _affine_on(normalization: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_affine` of a named normalisation, made once per device (a copy to an accelerator per
    batch would wait for it)."""
    return _affine(*NORMALIZATION[normalization], device=device)


def normalize_uint8(images: torch.Tensor, normalization: str) -> torch.Tensor:
    """uint8 images (CHW or NCHW, any device) -> float32 normalised with ``normalization``'s statistics.

    The arithmetic of :class:`NormalizeUint8` (one fused multiply-add per element), so a batch
    normalised here equals the stack of its images normalised one by one, bit for bit.
    """
    check_choice("normalization", normalization, NORMALIZATION)
    return _normalized(images, *_affine_on(normalization, images.device))


class NormalizeUint8(torch.nn.Module):
    """uint8 [0, 255] -> float ``(x / 255 - mean) / std`` in one conversion and one fused pass.

    The same values as ``v2.ToDtype(float32, scale=True)`` then ``v2.Normalize`` (to float
    rounding), with two passes over the image instead of three.
    """

    def __init__(self, mean: tuple[float, float, float], std: tuple[float, float, float]):
        super().__init__()
        scale, bias = _affine(mean, std)
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("bias", bias, persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return _normalized(image, self.scale, self.bias)
