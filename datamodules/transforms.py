"""Image transforms; the normalisation statistics follow the detector (ImageNet or CLIP)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torchvision.transforms import v2

NORMALIZATION: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    "half": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # Xception/Inception-style [-1, 1]
}


def build_transform(
    image_size: int, normalization: str, train: bool, augment: Mapping | None = None
) -> v2.Compose:
    """Resize to ``image_size`` and normalise; training adds the configured light augmentation."""
    if normalization not in NORMALIZATION:
        raise ValueError(f"normalization {normalization!r} unknown; expected one of {sorted(NORMALIZATION)}")
    mean, std = NORMALIZATION[normalization]
    augment = dict(augment or {})
    steps: list = [v2.ToImage(), v2.Resize((image_size, image_size), antialias=True)]
    if train:
        if augment.get("hflip", 0.5):
            steps.append(v2.RandomHorizontalFlip(p=float(augment.get("hflip", 0.5))))
        jitter = float(augment.get("color_jitter", 0.0))
        if jitter > 0:
            steps.append(v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    return v2.Compose(steps)
