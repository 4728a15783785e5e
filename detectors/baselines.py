"""Plain baseline detectors every table compares against: timm CNNs/ViTs and CLIP
(linear probe on frozen features, or full fine-tune)."""

from __future__ import annotations

import torch
import torch.nn as nn

from common.choices import check_choice
from detectors.backbones.clip import build_clip
from detectors.backbones.timm_backbone import create_timm_backbone
from detectors.base import BaseDetector
from detectors.output import DetectorOutput


class TimmDetector(BaseDetector):
    """A timm backbone + linear head producing one fake logit (Xception, EfficientNet, ResNet, ViT)."""

    def __init__(self, backbone: str, pretrained: object = None, size: str = "paper", drop_rate: float = 0.0, **base_kwargs):
        super().__init__(**base_kwargs)
        self.backbone = create_timm_backbone(backbone, pretrained=pretrained, size=size, num_classes=0, drop_rate=drop_rate)
        self.head = nn.Linear(self.backbone.num_features, 1)

    def forward(self, images: torch.Tensor, batch=None) -> DetectorOutput:
        features = self.backbone(images)
        return DetectorOutput(logits=self.head(features).squeeze(1), features=features)


class ClipDetector(BaseDetector):
    """CLIP image encoder + linear head. ``mode='linear_probe'`` freezes the encoder (it stays in
    eval mode), ``mode='finetune'`` trains everything."""

    MODES = ("linear_probe", "finetune")

    def __init__(self, model_name: str = "ViT-B-16", pretrained: object = None, size: str = "paper", mode: str = "linear_probe",
                 tiny_patch_size: int | None = None, **base_kwargs):
        super().__init__(**base_kwargs)
        check_choice("ClipDetector mode", mode, self.MODES)
        self.mode = mode
        clip = build_clip(model_name, pretrained=pretrained, size=size, image_size=self.input_size, tiny_patch_size=tiny_patch_size)
        self.encoder = clip.visual  # the text tower is not used by this baseline
        self.head = nn.Linear(self.encoder.output_dim, 1)
        if mode == "linear_probe":
            self.encoder.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.mode == "linear_probe":
            self.encoder.eval()  # frozen features: no dropout / norm-statistics drift
        return self

    def forward(self, images: torch.Tensor, batch=None) -> DetectorOutput:
        features = self.encoder(images)
        return DetectorOutput(logits=self.head(features.float()).squeeze(1), features=features)
