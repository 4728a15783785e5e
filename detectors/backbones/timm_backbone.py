"""timm backbones for the CNN/ViT baselines and the CNN-family methods.

``size: paper`` builds the named architecture; ``size: tiny`` builds timm's small test model of the
closest family (random weights, seconds on a CPU) so every experiment runs at ``scale=demo``.
"""

from __future__ import annotations

import timm
import torch.nn as nn

from common.choices import check_choice
from detectors.backbones import tiny_vgg  # noqa: F401  (registers the tiny VGG with timm)
from detectors.backbones.pretrained import parse_pretrained
from detectors.weights_file import check_weights_file

# Tiny random stand-ins used at scale=demo, by architecture family.
TINY_STANDINS: dict[str, str] = {
    "resnet": "test_resnet",
    "efficientnet": "test_efficientnet",
    "tf_efficientnet": "test_efficientnet",
    "vgg": tiny_vgg.TINY_VGG_NAME,
    "vit": "test_vit",
    "xception": "test_byobnet",
    "legacy_xception": "test_byobnet",
    "convnext": "test_convnext",
}


def tiny_standin(name: str) -> str:
    for prefix in sorted(TINY_STANDINS, key=len, reverse=True):
        if name.startswith(prefix):
            return TINY_STANDINS[prefix]
    raise ValueError(
        f"no tiny stand-in for timm model {name!r} at size=tiny; known families: {sorted(TINY_STANDINS)}"
    )


def create_timm_backbone(
    name: str,
    pretrained: object = None,
    size: str = "paper",
    num_classes: int = 0,
    output_stride: int | None = None,
    **kwargs,
) -> nn.Module:
    """A timm model with pretrained none / tag / local file, as a feature extractor by default
    (``num_classes=0`` keeps the pooled features; ``features_only`` etc. pass through ``kwargs``).
    ``output_stride`` (8 or 16) dilates the last stages instead of striding them (timm's option for
    ResNet, EfficientNet, ByobNet, ...; the weights do not change); ``None`` keeps the model's own 32."""
    check_choice("backbone size", size, {"paper", "tiny"})
    if output_stride is not None:
        kwargs["output_stride"] = int(output_stride)
    if name not in timm.list_models() and name.split(".")[0] not in timm.list_models():
        raise ValueError(f"unknown timm model {name!r}; see timm.list_models() for the names that exist")
    spec = parse_pretrained(pretrained, what=f"timm model {name}")
    if spec.kind == "file":  # refused with a clear message before timm sees it
        check_weights_file(spec.value, f"pretrained weights of timm model {name}")
    if size == "tiny":
        # Tiny stand-ins never download; a local weights file (e.g. a saved tiny model) is honoured.
        overlay = {"pretrained_cfg_overlay": {"file": spec.value}} if spec.kind == "file" else {}
        return timm.create_model(
            tiny_standin(name), pretrained=spec.kind == "file", num_classes=num_classes, **overlay, **kwargs
        )
    if spec.kind == "none":
        return timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)
    if spec.kind == "file":
        return timm.create_model(
            name, pretrained=True, num_classes=num_classes, pretrained_cfg_overlay={"file": spec.value}, **kwargs
        )
    model_name = name if spec.value == "default" else f"{name.split('.')[0]}.{spec.value}"
    return timm.create_model(model_name, pretrained=True, num_classes=num_classes, **kwargs)
