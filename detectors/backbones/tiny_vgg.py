"""A tiny VGG for ``size: tiny`` (DTN's backbone at scale=demo): timm ships no VGG test model.

Registered in timm's model registry as ``facemoe_test_vgg`` when this module is imported (by
``detectors.backbones.timm_backbone``), so ``create_timm_backbone("vgg11", size="tiny", ...)`` builds
it through the same ``timm.create_model`` call, ``features_only`` included. Same layout as timm's VGG
(3x3 convolutions, five 2x2 max-pools, stride-32 last map), with BatchNorm after every convolution
(timm's ``vgg*_bn``): a random stand-in without normalisation trains poorly in a few CPU epochs.
Random weights only (no pretrained tag).
"""

from __future__ import annotations

from typing import Any

from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.vgg import VGG
from torch import nn

TINY_VGG_NAME = "facemoe_test_vgg"
# Channels per convolution, "M" = 2x2 max-pool: VGG-11's pattern (1-1-2-2-2 convolutions per stage),
# about 1/8 of its widths; last map 64 channels at stride 32 (110k parameters in features_only mode).
TINY_VGG_LAYERS: list[Any] = [16, "M", 24, "M", 32, 32, "M", 48, 48, "M", 64, 64, "M"]

default_cfgs = generate_default_cfgs(
    {
        f"{TINY_VGG_NAME}.untrained": {
            "num_classes": 1000,
            "input_size": (3, 64, 64),
            "mean": (0.485, 0.456, 0.406),
            "std": (0.229, 0.224, 0.225),
            "first_conv": "features.0",
            "classifier": "head.fc",
        }
    }
)


@register_model
def facemoe_test_vgg(pretrained: bool = False, **kwargs: Any) -> VGG:
    """The tiny VGG (random weights): see the module docstring."""
    out_indices = kwargs.pop("out_indices", (0, 1, 2, 3, 4, 5))
    kwargs.setdefault("norm_layer", nn.BatchNorm2d)
    kwargs.setdefault("mlp_ratio", 0.125)  # the pre-logits MLP of the classifier form stays small
    return build_model_with_cfg(
        VGG,
        TINY_VGG_NAME,
        pretrained,
        model_cfg=TINY_VGG_LAYERS,
        feature_cfg=dict(flatten_sequential=True, out_indices=out_indices),
        **kwargs,
    )
