"""DFMoE, the heterogeneous mixture-of-experts deepfake detector (`papers/dfmoe.txt`).

image -> multi-scale gate (Xception, early layers frozen) -> top-K router -> only the K selected
EfficientNet experts run on each sample -> projection to ``feature_dim`` -> fusion (weighted / max / mean)
-> adaptive feature augmentation (training only) -> FC -> one fake logit (BCE).

Auxiliary losses (unweighted here; weights in ``aux_loss_weights``, the paper's 0.1 / 0.1 / 0.05):
``expert_param_penalty`` (Eq. 10), ``expert_entropy`` (Eq. 11, as minus the entropy of the batch-mean
routing so that minimising it spreads load, see docs/MOE.md) and ``augmentation_consistency`` (Eq. 12, the per-sample squared distance summed over dimensions, averaged over
the augmented samples). The augmentation changes fake samples only (``augmentation_target: fake``);
every pretrained part reads the input in its own weights' statistics (``part_normalization``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from common.choices import check_choice
from detectors.base import BaseDetector
from detectors.dfmoe_parts import (
    STRATEGIES,
    AdaptiveFeatureAugmentation,
    FusionMode,
    MultiScaleGate,
    ProjectedExpert,
    fuse_expert_features,
)
from detectors.moe.experts import run_selected_experts
from detectors.moe.routing import TopKRouter
from detectors.output import DetectorOutput
from losses.expert_entropy import negative_expert_usage_entropy
from losses.expert_parameter_penalty import expert_parameter_penalty
from losses.feature_consistency import feature_consistency_loss

# The experts in order; the first ``num_experts`` are used. The paper's five are B1..B5; B6 is the sixth
# for Table 6's six-expert row (the paper does not say which network it added). timm has weights for
# B6 only as the TensorFlow port ``tf_efficientnet_b6`` (``efficientnet_b6`` has none).
DEFAULT_EXPERT_POOL: tuple[str, ...] = (*(f"efficientnet_b{i}" for i in range(1, 6)), "tf_efficientnet_b6")
EXPERT_SIZE_MEASURES: tuple[str, ...] = ("hidden_dim", "parameters")
CENTRE_KEYS: tuple[str, ...] = ("type", "domain")
# Which samples the adaptive augmentation changes: "fake" (the paper: forgery features, Eq. 6 / Fig. 1)
# or "all" (real faces too, with a centre of their own: an ablation).
AUGMENTATION_TARGETS: tuple[str, ...] = ("fake", "all")


class DFMoE(BaseDetector):
    """Knobs (config names) by paper table: the ``aux_loss_weights`` (Table 3, A-D: set weights to 0),
    ``gate_backbone`` (Table 4: legacy_xception / resnet34 / efficientnet_b4), ``top_k`` (Table 5, 1..5),
    ``num_experts`` (Table 6, 2..6), ``fusion`` (Table 7), ``augmentation`` and ``num_experts=1`` (Table 8:
    augmentation only = one expert, experts only = ``augmentation: false``)."""

    ddp_find_unused_parameters = True  # only the top-K experts of a batch's samples get gradients

    def __init__(
        self,
        gate_backbone: str = "legacy_xception",
        pretrained: object = True,
        expert_pretrained: object = True,
        size: str = "paper",
        gate_out_indices: Sequence[int] = (1, 2, 3, 4),
        gate_frozen_scales: int = 1,
        gate_scale_dim: int = 128,
        gate_hidden_dim: int = 256,
        noisy_gating: bool = False,
        expert_pool: Sequence[str] = DEFAULT_EXPERT_POOL,
        num_experts: int = 5,
        top_k: int = 2,
        feature_dim: int = 512,
        fusion: FusionMode = "weighted",
        augmentation: bool = True,
        augmentation_strategies: Sequence[str] = STRATEGIES,
        stretch_alpha_max: float = 1.0,
        perturb_beta: float = 0.2,
        augmentation_score_floor: float = 0.05,
        augmentation_target: str = "fake",
        centre_key: str = "type",
        num_centres: int = 16,
        centre_momentum: float = 0.1,
        expert_size_measure: str = "hidden_dim",
        entropy_divide_by_num_experts: bool = True,
        consistency_reduction: str = "sum",
        part_normalization: str = "pretrained",
        output_stride: int | None = None,
        **base_kwargs,
    ) -> None:
        super().__init__(**base_kwargs)
        expert_pool = list(expert_pool)
        if not 1 <= num_experts <= len(expert_pool):
            raise ValueError(
                f"DFMoE: num_experts={num_experts} must be in [1, {len(expert_pool)}] (the length of expert_pool {expert_pool})"
            )
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"DFMoE: top_k={top_k} must be in [1, num_experts={num_experts}]")
        check_choice("DFMoE: expert_size_measure", expert_size_measure, EXPERT_SIZE_MEASURES)
        check_choice("DFMoE: centre_key", centre_key, CENTRE_KEYS, note="a batch key")
        check_choice("DFMoE: augmentation_target", augmentation_target, AUGMENTATION_TARGETS)
        check_choice("DFMoE: fusion", fusion, ("weighted", "max", "mean"))
        self.fusion = fusion
        self.centre_key = centre_key
        self.entropy_divide_by_num_experts = entropy_divide_by_num_experts
        self.consistency_reduction = consistency_reduction
        self.augmentation_target = augmentation_target
        self.gate = MultiScaleGate(
            gate_backbone, pretrained, size, gate_out_indices, gate_frozen_scales, gate_scale_dim, self.normalization,
            part_normalization, output_stride,
        )
        self.router = TopKRouter(
            self.gate.output_dim, num_experts, top_k, noisy_gating=noisy_gating, gate_input="external", hidden_dim=gate_hidden_dim
        )
        expert_weights = expert_pretrained if isinstance(expert_pretrained, list | tuple) else [expert_pretrained] * num_experts
        if len(expert_weights) < num_experts:
            raise ValueError(f"DFMoE: expert_pretrained lists {len(expert_weights)} values for {num_experts} experts")
        self.experts = nn.ModuleList(
            ProjectedExpert(name, weights, size, feature_dim, self.normalization, part_normalization, output_stride)
            for name, weights in zip(expert_pool[:num_experts], expert_weights)
        )
        sizes = [
            float(e.hidden_dim if expert_size_measure == "hidden_dim" else e.num_parameters()) for e in self.experts
        ]
        self.register_buffer("expert_sizes", torch.tensor(sizes), persistent=False)
        self.augmentation = (
            AdaptiveFeatureAugmentation(
                feature_dim, num_centres, augmentation_strategies, stretch_alpha_max, perturb_beta, centre_momentum,
                augmentation_score_floor,
            )
            if augmentation
            else None
        )
        self.classifier = nn.Linear(feature_dim, 1)

    def forward(self, images: torch.Tensor, batch: Mapping[str, torch.Tensor] | None = None) -> DetectorOutput:
        routing = self.router(gate_feature=self.gate(images))
        slot_features = run_selected_experts(images, routing, self.experts)  # (B, K, D): only selected experts ran
        fused = fuse_expert_features(slot_features, routing.weights, self.fusion)
        aux: dict[str, torch.Tensor] = {}
        classifier_input = fused
        if batch is not None:
            aux["expert_param_penalty"] = expert_parameter_penalty(routing.probs, self.expert_sizes)
            aux["expert_entropy"] = negative_expert_usage_entropy(routing.probs, self.entropy_divide_by_num_experts)
            if self.augmentation is not None and self.training:
                targets = batch["label"].bool() if self.augmentation_target == "fake" else None
                augmented, chosen = self.augmentation(
                    fused, slot_features, routing.weights, routing.probs, batch[self.centre_key], targets
                )
                # Eq. 12 over the augmented samples (0 for a batch without one).
                changed = chosen >= 0
                aux["augmentation_consistency"] = feature_consistency_loss(
                    fused[changed], augmented[changed], self.consistency_reduction
                )
                classifier_input = augmented
        logits = self.classifier(classifier_input).squeeze(1)
        return DetectorOutput(logits=logits, features=fused, aux_losses=aux, routing={"experts": routing})
