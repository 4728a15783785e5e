"""Image transforms: resize, the training augmentation set, normalisation (ImageNet or CLIP statistics)."""

from __future__ import annotations

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
    image_size: int, normalization: str, train: bool, augment: Mapping | None = None
) -> v2.Compose:
    """Resize to ``image_size`` and normalise; training runs the augmentation set in between.

    Input: a uint8 CHW tensor (``FrameTable`` decodes with torchvision.io) or a PIL image. The
    resize and every augmentation op run on uint8 (datamodules/augment.py); only the last step
    converts to float and normalises.
    """
    check_choice("normalization", normalization, NORMALIZATION)
    mean, std = NORMALIZATION[normalization]
    steps: list = [v2.ToImage(), v2.Resize((image_size, image_size), antialias=True)]
    if train:
        steps += build_augment(augment)
    steps.append(NormalizeUint8(mean, std))
    return v2.Compose(steps)


class NormalizeUint8(torch.nn.Module):
    """uint8 [0, 255] -> float ``(x / 255 - mean) / std`` in one conversion and one fused pass.

    The same values as ``v2.ToDtype(float32, scale=True)`` then ``v2.Normalize`` (to float
    rounding), with two passes over the image instead of three.
    """

    def __init__(self, mean: tuple[float, float, float], std: tuple[float, float, float]):
        super().__init__()
        self.register_buffer("offset", torch.tensor(mean).view(3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("scale", 1.0 / (torch.tensor(std).view(3, 1, 1) * 255.0), persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.dtype != torch.uint8:
            raise TypeError(f"NormalizeUint8 takes the uint8 image, got {image.dtype}")
        return torch.addcmul(-self.offset * self.scale, image.to(torch.float32), self.scale)
