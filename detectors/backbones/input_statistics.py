"""Feed each pretrained part the pixel statistics it was trained with.

The data pipeline normalises every image once, with the detector's ``normalization`` (one mean/std
per run). A detector built from several pretrained networks (DFMoE: an Xception gate trained on
[-1, 1] inputs, EfficientNet experts trained on ImageNet statistics, or on [-1, 1] for the default
B1 weights) re-maps that input per part with :class:`InputRenormalization`: an exact per-channel
affine map, the identity when the statistics agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from common.choices import check_choice
from datamodules.transforms import NORMALIZATION

Statistics = tuple[tuple[float, float, float], tuple[float, float, float]]


def input_statistics(normalization: str) -> Statistics:
    """(mean, std) of the data pipeline's ``normalization`` name (datamodules.transforms.NORMALIZATION)."""
    check_choice("normalization", normalization, NORMALIZATION)
    return NORMALIZATION[normalization]


def pretrained_statistics(model: nn.Module) -> Statistics:
    """(mean, std) a timm model's weights were trained with, from its ``pretrained_cfg`` (the tag's own
    config: ``efficientnet_b1.ra4_e3600_r240_in1k`` says 0.5, ``efficientnet_b2.ra_in1k`` ImageNet)."""
    config = getattr(model, "pretrained_cfg", None) or {}
    mean, std = config.get("mean"), config.get("std")
    if mean is None or std is None or len(mean) != 3 or len(std) != 3:
        raise ValueError(
            f"{type(model).__name__}: its pretrained_cfg has no 3-channel mean/std (got mean={mean}, std={std}); "
            "cannot tell which input statistics its weights expect"
        )
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)  # type: ignore[return-value]


class InputRenormalization(nn.Module):
    """Images normalised with ``source`` statistics -> the same images normalised with ``target``:
    ``x * (s_src / s_tgt) + (m_src - m_tgt) / s_tgt`` per channel (no pass through pixel space)."""

    def __init__(self, source: Statistics, target: Statistics) -> None:
        super().__init__()
        source_mean, source_std = (torch.tensor(v, dtype=torch.float32) for v in source)
        target_mean, target_std = (torch.tensor(v, dtype=torch.float32) for v in target)
        self.identity = bool(torch.allclose(source_mean, target_mean) and torch.allclose(source_std, target_std))
        self.source, self.target = _rounded(source), _rounded(target)
        self.register_buffer("scale", (source_std / target_std).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", ((source_mean - target_mean) / target_std).reshape(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.identity:
            return images
        return images * self.scale.to(images.dtype) + self.shift.to(images.dtype)

    def extra_repr(self) -> str:
        return "identity" if self.identity else f"source={self.source}, target={self.target}"


def _rounded(statistics: Statistics) -> tuple[Sequence[float], Sequence[float]]:
    return tuple(round(v, 4) for v in statistics[0]), tuple(round(v, 4) for v in statistics[1])
