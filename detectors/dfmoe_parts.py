"""The building blocks of DFMoE (heterogeneous mixture of experts, `papers/dfmoe.txt` Sec. 3).

* :class:`MultiScaleGate` -- Eq. 1-2: a timm ``features_only`` backbone (Xception by default; ResNet-34 and
  EfficientNet-B4 for Table 4) with its early layers frozen; each returned scale is pooled and passed
  through its own small MLP; the concatenation is what the top-K router reads (Eq. 3).
* :class:`ProjectedExpert` -- one heterogeneous expert (EfficientNet-B1..B5): pooled features projected to
  the shared ``feature_dim`` so the experts can be fused (Eq. 4).
* :func:`fuse_expert_features` -- Eq. 5 and Table 7: weighted (renormalised top-K gate weights), max, mean.
* :class:`AdaptiveFeatureAugmentation` -- Eq. 6-9: feature stretching from domain centres (FSA), feature
  perturbation (FPA), cross-expert feature fusion (CFF); one strategy sampled per sample from
  probabilities derived from an adaptive weight (gate probability and feature entropy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, get_args

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from common.choices import check_choice
from detectors.backbones.input_statistics import (
    InputRenormalization,
    Statistics,
    input_statistics,
    pretrained_statistics,
)
from detectors.backbones.timm_backbone import create_timm_backbone
from losses.domain_prototypes import DomainPrototypes

FusionMode = Literal["weighted", "max", "mean"]
FUSION_MODES: tuple[str, ...] = get_args(FusionMode)
Strategy = Literal["stretch", "perturb", "cross_expert"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
# What each pretrained part reads: "pretrained" = the input re-mapped to the statistics its own weights
# were trained with (timm pretrained_cfg); "input" = the data pipeline's normalisation unchanged.
PART_NORMALIZATIONS: tuple[str, ...] = ("pretrained", "input")


def part_renormalization(model: nn.Module, input_stats: Statistics, mode: str) -> InputRenormalization:
    """The map from the data's normalisation to what ``model`` expects (``mode``: PART_NORMALIZATIONS)."""
    check_choice("part_normalization", mode, PART_NORMALIZATIONS)
    return InputRenormalization(input_stats, pretrained_statistics(model) if mode == "pretrained" else input_stats)


def parameters_feeding_output(model: nn.Module, output_position: int, probe_size: int = 64) -> set[str]:
    """Names of the parameters that ``model(x)[output_position]`` depends on (a features_only backbone).

    Found by one probe forward/backward on a zero image in eval mode, so it is exact for any timm
    architecture (no guessing from module names): these are the layers *up to* that scale.
    """
    was_training = model.training
    model.eval()
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    try:
        outputs = model(torch.zeros(2, 3, probe_size, probe_size))
        if not -len(outputs) <= output_position < len(outputs):
            raise ValueError(
                f"parameters_feeding_output: output {output_position} requested, the backbone returns {len(outputs)}"
            )
        grads = torch.autograd.grad(outputs[output_position].sum(), [p for _, p in named], allow_unused=True)
    finally:
        model.train(was_training)
    return {name for (name, _), grad in zip(named, grads) if grad is not None}


class MultiScaleGate(nn.Module):
    """Eq. 1-2: scales ``F_s`` of a ``features_only`` backbone at ``out_indices``; scale s is averaged over
    its positions and mapped by ``MLP_s`` (Linear + GELU) to ``scale_dim``; the output ``(B, S * scale_dim)``
    is the gate descriptor. The input is first re-mapped from the data's normalisation to the statistics the
backbone's weights were trained with (``part_normalization``). The layers producing the first ``frozen_scales`` returned scales are frozen
    ("early layers frozen"), and their BatchNorms stay in eval mode (no statistics drift)."""

    def __init__(
        self,
        backbone: str = "legacy_xception",
        pretrained: object = None,
        size: str = "paper",
        out_indices: Sequence[int] = (1, 2, 3, 4),
        frozen_scales: int = 1,
        scale_dim: int = 128,
        input_normalization: str = "imagenet",
        part_normalization: str = "pretrained",
        output_stride: int | None = None,
    ) -> None:
        super().__init__()
        out_indices = tuple(int(i) for i in out_indices)
        if not 0 <= frozen_scales <= len(out_indices):
            raise ValueError(
                f"MultiScaleGate: frozen_scales={frozen_scales} must be in [0, {len(out_indices)}] (number of gate scales)"
            )
        self.backbone = create_timm_backbone(
            backbone, pretrained=pretrained, size=size, features_only=True, out_indices=out_indices,
            output_stride=output_stride,
        )
        self.renormalize = part_renormalization(self.backbone, input_statistics(input_normalization), part_normalization)
        channels = self.backbone.feature_info.channels()
        self.scale_mlps = nn.ModuleList(nn.Sequential(nn.Linear(c, scale_dim), nn.GELU()) for c in channels)
        self.output_dim = scale_dim * len(channels)
        self.frozen_parameter_names: set[str] = set()
        if frozen_scales:
            self.frozen_parameter_names = parameters_feeding_output(self.backbone, frozen_scales - 1)
            for name, parameter in self.backbone.named_parameters():
                if name in self.frozen_parameter_names:
                    parameter.requires_grad_(False)
        self._frozen_norms = [
            m
            for m in self.backbone.modules()
            if isinstance(m, _BatchNorm) and any(True for _ in m.parameters()) and not any(p.requires_grad for p in m.parameters())
        ]

    def train(self, mode: bool = True) -> MultiScaleGate:
        super().train(mode)
        for norm in self._frozen_norms:
            norm.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        scales = self.backbone(self.renormalize(images))
        return torch.cat([mlp(scale.mean(dim=(2, 3))) for mlp, scale in zip(self.scale_mlps, scales)], dim=1)


class ProjectedExpert(nn.Module):
    """One expert of the heterogeneous bank: a timm classifier-free backbone (pooled features of width
    ``hidden_dim``, e.g. 1280 for EfficientNet-B1, 2048 for B5) and a linear projection to ``feature_dim``;
    like the gate, it reads the input in its own weights' statistics (``part_normalization``)."""

    def __init__(
        self,
        backbone: str,
        pretrained: object = None,
        size: str = "paper",
        feature_dim: int = 512,
        input_normalization: str = "imagenet",
        part_normalization: str = "pretrained",
        output_stride: int | None = None,
    ) -> None:
        super().__init__()
        self.name = backbone
        self.backbone = create_timm_backbone(
            backbone, pretrained=pretrained, size=size, num_classes=0, output_stride=output_stride
        )
        self.renormalize = part_renormalization(self.backbone, input_statistics(input_normalization), part_normalization)
        self.hidden_dim = int(self.backbone.num_features)
        self.projection = nn.Linear(self.hidden_dim, feature_dim)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.projection(self.backbone(self.renormalize(images)))


def fuse_expert_features(slot_features: torch.Tensor, weights: torch.Tensor, mode: FusionMode = "weighted") -> torch.Tensor:
    """``(B, K, D)`` per-slot expert features -> ``(B, D)``: ``weighted`` = ``sum_k w_k z_k`` with the
    renormalised top-K weights (Eq. 5), ``max`` = elementwise max over the K slots, ``mean`` = their average."""
    if slot_features.ndim != 3 or weights.shape != slot_features.shape[:2]:
        raise ValueError(
            f"fuse_expert_features: expected slot_features (B, K, D) and weights (B, K), got "
            f"{tuple(slot_features.shape)} and {tuple(weights.shape)}"
        )
    if mode == "weighted":
        return (slot_features * weights.to(slot_features.dtype).unsqueeze(-1)).sum(dim=1)
    if mode == "max":
        return slot_features.max(dim=1).values
    if mode == "mean":
        return slot_features.mean(dim=1)
    raise ValueError(f"fuse_expert_features: mode={mode!r}, expected one of {FUSION_MODES}")


def normalised_feature_entropy(features: torch.Tensor) -> torch.Tensor:
    """``H(softmax(z_b)) / log D`` per sample, in [0, 1]: 1 for a flat feature, 0 for a single spike."""
    if features.shape[1] < 2:
        return features.new_zeros(features.shape[0])
    log_probs = torch.log_softmax(features.float(), dim=1)
    return -(log_probs.exp() * log_probs).sum(dim=1) / math.log(features.shape[1])


def gate_uncertainty(probs: torch.Tensor) -> torch.Tensor:
    """``(1 - max_i p_bi) / (1 - 1/N)`` per sample, in [0, 1]: 0 when the gate is sure of one expert, 1 when
    it is uniform over the N experts (0 for N = 1)."""
    num_experts = probs.shape[1]
    if num_experts < 2:
        return probs.new_zeros(probs.shape[0])
    return ((1 - probs.float().max(dim=1).values) / (1 - 1 / num_experts)).clamp(0, 1)


class AdaptiveFeatureAugmentation(nn.Module):
    """DFMoE's adaptive augmentation in feature space (Eq. 6-9), training only.

    Adaptive weight per sample (Eq. 9's ``omega``; the paper names its inputs, not the formula):
    ``w = (normalised feature entropy + gate uncertainty) / 2`` in [0, 1], detached: samples whose fused
    feature is flat and whose gate hesitates are augmented most.

    Strategies, ``strategies`` a subset of :data:`STRATEGIES`:
      * ``stretch`` (FSA, Eq. 6): ``z + w * alpha * (z - mu_c)``, ``alpha ~ U(0, stretch_alpha_max)``,
        ``mu_c`` the EMA centre of the sample's forgery domain c (``centre_ids``: the type id by default);
      * ``perturb`` (FPA, Eq. 7): ``z + w * beta * N(0, sigma^2)``, sigma the batch std of each feature
        dimension (detached), ``beta = perturb_beta`` (0.2 in the paper);
      * ``cross_expert`` (CFF, Eq. 8): ``lambda f_1 + (1 - lambda) f_2`` between the two top selected experts'
        features, ``lambda ~ U(0, 1)``; needs K >= 2 (otherwise it is never chosen).
    One strategy per sample, sampled with probabilities proportional to the scores
    ``stretch: w``, ``perturb: 1 - w``, ``cross_expert: 2 min(g_1, g_2) / (g_1 + g_2)`` (how evenly the gate
    trusts the two experts), plus ``score_floor`` so every enabled strategy keeps a chance.
    """

    def __init__(
        self,
        feature_dim: int,
        num_centres: int = 16,
        strategies: Sequence[str] = STRATEGIES,
        stretch_alpha_max: float = 1.0,
        perturb_beta: float = 0.2,
        centre_momentum: float = 0.1,
        score_floor: float = 0.05,
    ) -> None:
        super().__init__()
        unknown = sorted(set(strategies) - set(STRATEGIES))
        if unknown or not strategies:
            raise ValueError(
                f"AdaptiveFeatureAugmentation: strategies={list(strategies)}, expected a non-empty subset of {STRATEGIES}"
            )
        if stretch_alpha_max < 0 or perturb_beta < 0 or score_floor < 0:
            raise ValueError(
                "AdaptiveFeatureAugmentation: stretch_alpha_max, perturb_beta and score_floor must be >= 0, got "
                f"{stretch_alpha_max}, {perturb_beta}, {score_floor}"
            )
        self.strategies = tuple(s for s in STRATEGIES if s in strategies)
        self.stretch_alpha_max = stretch_alpha_max
        self.perturb_beta = perturb_beta
        self.score_floor = score_floor
        self.centres = DomainPrototypes(num_centres, feature_dim, momentum=centre_momentum)

    def adaptive_weight(self, fused: torch.Tensor, gate_probs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return 0.5 * (normalised_feature_entropy(fused) + gate_uncertainty(gate_probs))

    def strategy_probabilities(self, weight: torch.Tensor, slot_weights: torch.Tensor) -> torch.Tensor:
        """``(B, len(strategies))`` sampling probabilities, columns in the order of ``self.strategies``."""
        columns = []
        for strategy in self.strategies:
            if strategy == "stretch":
                score = weight
            elif strategy == "perturb":
                score = 1 - weight
            elif slot_weights.shape[1] < 2:
                columns.append(torch.zeros_like(weight))  # CFF needs two selected experts
                continue
            else:
                first, second = slot_weights[:, 0].float(), slot_weights[:, 1].float()
                score = 2 * torch.minimum(first, second) / (first + second).clamp_min(1e-12)
            columns.append(score.float() + self.score_floor)
        scores = torch.stack(columns, dim=1)
        totals = scores.sum(dim=1, keepdim=True)
        if bool((totals <= 0).any()):
            raise ValueError(
                f"AdaptiveFeatureAugmentation: no applicable strategy among {self.strategies} "
                f"(cross_expert alone needs K >= 2 selected experts, or set score_floor > 0)"
            )
        return scores / totals

    def forward(
        self,
        fused: torch.Tensor,
        slot_features: torch.Tensor,
        slot_weights: torch.Tensor,
        gate_probs: torch.Tensor,
        centre_ids: torch.Tensor,
        targets: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(augmented (B, D), chosen strategy index (B,) into self.strategies, -1 where not
        augmented)``. ``targets`` (B,) bool: which samples are augmented (default all); the others pass
        through unchanged (DFMoE augments forgery features only, Eq. 6 / Fig. 1)."""
        weight = self.adaptive_weight(fused, gate_probs).to(fused.dtype).unsqueeze(1)
        if self.training:
            self.centres.update(fused.detach().float(), centre_ids)
        probabilities = self.strategy_probabilities(weight.squeeze(1), slot_weights)
        chosen = torch.multinomial(probabilities, 1).squeeze(1)
        if targets is not None:
            if targets.shape != chosen.shape:
                raise ValueError(f"AdaptiveFeatureAugmentation: targets {tuple(targets.shape)} for a batch of {chosen.shape[0]}")
            chosen = torch.where(targets.to(chosen.device).bool(), chosen, torch.full_like(chosen, -1))
        augmented = fused
        for index, strategy in enumerate(self.strategies):
            mask = (chosen == index).unsqueeze(1)
            if not bool(mask.any()):
                continue
            if strategy == "stretch":
                centre = self.centres.prototypes[centre_ids.long()].to(fused.dtype)
                alpha = torch.rand_like(weight) * self.stretch_alpha_max
                candidate = fused + weight * alpha * (fused - centre)
            elif strategy == "perturb":
                sigma = fused.detach().std(dim=0, keepdim=True) if fused.shape[0] > 1 else torch.ones_like(fused[:1])
                candidate = fused + weight * self.perturb_beta * torch.randn_like(fused) * sigma
            else:
                mix = torch.rand_like(weight)
                candidate = mix * slot_features[:, 0] + (1 - mix) * slot_features[:, 1]
            augmented = torch.where(mask, candidate, augmented)
        return augmented, chosen
