"""The building blocks of DTN (distilled transformer network, `papers/dtn.txt` Sec. 4).

* :class:`FeaturePerturbation` -- what the MoE adds to the CNN feature map while training (Gaussian noise
  by default; blur, compression and contrast for DTN Fig. 6a; ``none`` for "without noise", Fig. 6d).
* :class:`AttentionExpert` / :class:`NoisyAttentionMoE` -- Eq. 10-12: N experts (two 3x3 convolutions and a
  sigmoid) each turn the perturbed map into a 1-channel attention map; MAS scales map i by
  ``sigmoid(s_i)``; the maps are max-pooled over experts and multiply the (clean) feature map.
  ``mode="vanilla"`` is the comparison of Table 7: a softmax gate on the pooled map weights the experts,
  without noise and without MAS scaling.
* :class:`ScaledMultiHeadSelfAttention` (S-MHSA, Eq. 16-22), :class:`LocallyEnhancedBlock` (Eq. 15-24) and
  :class:`LocallyEnhancedViT` (LEVT, Eq. 13-14): a transformer on the feature map's positions with
  BatchNorm, MAS per head, a depthwise-convolution local connection (LC) and a 1x1-convolution MLP.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from common.choices import check_choice
from detectors.attention_scaling import MultiAttentionScaling
from detectors.moe.routing import DenseRouter
from detectors.output import RoutingInfo

Perturbation = Literal["none", "gaussian_noise", "blur", "compression", "contrast"]
PERTURBATIONS: tuple[str, ...] = get_args(Perturbation)
MoEMode = Literal["noisy_max", "vanilla"]
MOE_MODES: tuple[str, ...] = get_args(MoEMode)


class FeaturePerturbation(nn.Module):
    """Perturbs a feature map ``(B, C, H, W)`` in training mode; the identity in eval mode.

    * ``gaussian_noise``: ``x + eps * noise_std * std(x_b)``, ``eps ~ N(0, 1)``; the std of each sample's
      map (detached) makes ``noise_std`` a relative level, independent of the backbone's feature scale.
    * ``blur``: depthwise Gaussian blur with ``blur_sigma`` (in feature-map pixels; replicate padding).
    * ``compression``: uniform quantisation of each sample's map to ``compression_levels`` levels between
      its min and max, the lossy step of a codec; straight-through gradient (quantisation has none).
    * ``contrast``: ``mean_b + c_b (x - mean_b)`` with ``c_b ~ U(1 - contrast_range, 1 + contrast_range)``.
    * ``none``: no perturbation.
    """

    def __init__(
        self,
        kind: Perturbation = "gaussian_noise",
        noise_std: float = 0.1,
        blur_sigma: float = 1.0,
        compression_levels: int = 16,
        contrast_range: float = 0.5,
    ) -> None:
        super().__init__()
        check_choice("FeaturePerturbation: kind", kind, PERTURBATIONS)
        if noise_std < 0 or blur_sigma <= 0 or compression_levels < 2 or not 0 <= contrast_range < 1:
            raise ValueError(
                "FeaturePerturbation: need noise_std >= 0, blur_sigma > 0, compression_levels >= 2 and "
                f"0 <= contrast_range < 1; got {noise_std}, {blur_sigma}, {compression_levels}, {contrast_range}"
            )
        self.kind = kind
        self.noise_std = noise_std
        self.blur_sigma = blur_sigma
        self.compression_levels = compression_levels
        self.contrast_range = contrast_range
        radius = max(1, math.ceil(2 * blur_sigma))
        offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
        kernel_1d = torch.exp(-0.5 * (offsets / blur_sigma) ** 2)
        kernel_1d = kernel_1d / kernel_1d.sum()
        self.register_buffer("blur_kernel", torch.outer(kernel_1d, kernel_1d), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.kind == "none":
            return x
        if x.ndim != 4:
            raise ValueError(f"FeaturePerturbation: expected a feature map (B, C, H, W), got {tuple(x.shape)}")
        if self.kind == "gaussian_noise":
            sample_std = x.detach().flatten(1).std(dim=1).reshape(-1, 1, 1, 1)
            return x + torch.randn_like(x) * self.noise_std * sample_std
        if self.kind == "blur":
            channels = x.shape[1]
            kernel = self.blur_kernel.to(x.dtype).expand(channels, 1, *self.blur_kernel.shape)
            pad = self.blur_kernel.shape[-1] // 2
            return F.conv2d(F.pad(x, (pad, pad, pad, pad), mode="replicate"), kernel, groups=channels)
        if self.kind == "compression":
            flat = x.detach().flatten(1)
            low = flat.min(dim=1).values.reshape(-1, 1, 1, 1)
            step = ((flat.max(dim=1).values.reshape(-1, 1, 1, 1) - low) / (self.compression_levels - 1)).clamp_min(1e-12)
            quantised = torch.round((x - low) / step) * step + low
            return x + (quantised - x).detach()
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        factor = 1 + (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) * 2 - 1) * self.contrast_range
        return mean + factor * (x - mean)


class AttentionExpert(nn.Sequential):
    """One MoE expert: 3x3 conv (C -> hidden), ReLU, 3x3 conv (hidden -> 1), sigmoid: a map in (0, 1)."""

    def __init__(self, channels: int, hidden_channels: int) -> None:
        if channels < 1 or hidden_channels < 1:
            raise ValueError(f"AttentionExpert: channels and hidden_channels must be >= 1, got {channels}, {hidden_channels}")
        super().__init__(
            nn.Conv2d(channels, hidden_channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden_channels, 1, 3, padding=1),
            nn.Sigmoid(),
        )


class NoisyAttentionMoE(nn.Module):
    """DTN's MoE module (Eq. 10-12) on a feature map ``(B, C, H, W)``.

    ``mode="noisy_max"`` (the paper's): each expert reads its own perturbed copy of the map (training
    only); with ``expert_scaling`` (MAS) map i is scaled by ``sigmoid(s_i)``; ``A`` = max over experts;
    output ``F * A`` on the clean map. ``mode="vanilla"`` (Table 7's "vanilla MoE"): ``A`` = sum of the
    expert maps weighted by a softmax gate on the pooled map (the shared :class:`DenseRouter`), with no
    perturbation and no expert scaling (both are what DTN adds to a vanilla MoE).
    ``forward`` returns ``(F * A, expert maps (B, N, H, W), routing)``: for ``vanilla`` the gate's, for
    ``noisy_max`` which expert's map is the maximum at each position (``k = 1``, weight 1; positions
    sample-major), i.e. where each expert decides ``A`` (routing statistics, expert-usage figures).
    """

    def __init__(
        self,
        channels: int,
        num_experts: int = 2,
        hidden_channels: int = 128,
        mode: MoEMode = "noisy_max",
        perturbation: FeaturePerturbation | None = None,
        expert_scaling: bool = True,
        scaling_init_logit: float = 0.0,
    ) -> None:
        super().__init__()
        check_choice("NoisyAttentionMoE: mode", mode, MOE_MODES)
        if num_experts < 1:
            raise ValueError(f"NoisyAttentionMoE: num_experts must be >= 1, got {num_experts}")
        self.mode = mode
        self.num_experts = num_experts
        self.experts = nn.ModuleList(AttentionExpert(channels, hidden_channels) for _ in range(num_experts))
        vanilla = mode == "vanilla"
        # Vanilla MoE (Table 7) has neither of DTN's additions: no random noise on the experts' input and no
        # sigma(s_i) scaling of their maps ("unlike vanilla MoE ..., our MoE introduces the random Gaussian
        # noise"), whatever perturbation / expert_scaling say.
        self.perturbation = FeaturePerturbation("none") if vanilla or perturbation is None else perturbation
        self.expert_scaling = MultiAttentionScaling(num_experts, scaling_init_logit) if expert_scaling and not vanilla else None
        self.gate = DenseRouter(channels, num_experts, gate_input="external") if vanilla else None

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, RoutingInfo]:
        # Independent perturbations per expert ("respectively", Eq. 10): the experts see different noise.
        maps = torch.cat([expert(self.perturbation(features)) for expert in self.experts], dim=1)
        if self.expert_scaling is not None:
            maps = self.expert_scaling(maps, group_dim=1)
        if self.gate is not None:
            routing = self.gate(gate_feature=features.mean(dim=(2, 3)))
            attention = (maps * routing.weights.to(maps.dtype)[:, :, None, None]).sum(dim=1, keepdim=True)
        else:
            attention, winner = maps.max(dim=1, keepdim=True)
            routing = max_routing(winner.detach(), self.num_experts)
        return features * attention, maps, routing


def max_routing(winner: torch.Tensor, num_experts: int) -> RoutingInfo:
    """The experts whose maps are the maximum, ``winner`` ``(B, 1, H, W)``, as ``k = 1`` routing over the
    ``B x H x W`` positions (sample-major), weight 1 each."""
    indices = winner.permute(0, 2, 3, 1).reshape(-1, 1)
    weights = torch.ones(indices.shape, dtype=torch.float32, device=indices.device)
    probs = F.one_hot(indices[:, 0], num_experts).float()
    return RoutingInfo(indices=indices, weights=weights, probs=probs, num_experts=num_experts)


class ScaledMultiHeadSelfAttention(nn.Module):
    """S-MHSA (Eq. 16-22): multi-head self-attention whose head h is scaled by ``sigmoid(lambda_h)`` (MAS)
    before the output projection; ``mas=False`` gives plain MHSA. ``(B, N, dim) -> (B, N, dim)``."""

    def __init__(self, dim: int, num_heads: int = 8, mas: bool = True, mas_init_logit: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"ScaledMultiHeadSelfAttention: dim={dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.head_scaling = MultiAttentionScaling(num_heads, mas_init_logit) if mas else None
        self.proj = nn.Linear(dim, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        batch, length, dim = tokens.shape
        qkv = self.qkv(tokens).reshape(batch, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        heads = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, heads, N, head_dim)
        if self.head_scaling is not None:
            heads = self.head_scaling(heads, group_dim=1)
        return self.proj(heads.transpose(1, 2).reshape(batch, length, dim))


class LocallyEnhancedBlock(nn.Module):
    """One LEVT transformer block on a map ``(B, C, H, W)``:
    ``x = x + LC(reshape(S-MHSA(tokens(BN(x)))))``, then ``x = x + MLP(BN(x))`` with a 1x1-conv MLP.

    LC (local connection) = depthwise 3x3 convolution + BatchNorm: the natural reading of "a convolutional
    layer" whose removal saves 0.036 M parameters over 6 blocks of width 512 (Table 6: 6 x 6144 = 0.037 M).
    ``local_connection=False`` drops it (Table 6 "w/o LC").
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        local_connection: bool = True,
        mas: bool = True,
        mas_init_logit: float = 0.0,
    ) -> None:
        super().__init__()
        hidden = int(round(dim * mlp_ratio))
        if hidden < 1:
            raise ValueError(f"LocallyEnhancedBlock: mlp_ratio={mlp_ratio} gives an empty MLP for dim={dim}")
        self.norm1 = nn.BatchNorm2d(dim)
        self.attention = ScaledMultiHeadSelfAttention(dim, num_heads, mas, mas_init_logit)
        self.local_connection = (
            nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1, groups=dim), nn.BatchNorm2d(dim))
            if local_connection
            else nn.Identity()
        )
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = nn.Sequential(nn.Conv2d(dim, hidden, 1), nn.GELU(), nn.Conv2d(hidden, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        tokens = self.norm1(x).flatten(2).transpose(1, 2)  # (B, H*W, C): one token per position
        attended = self.attention(tokens).transpose(1, 2).reshape(batch, channels, height, width)
        x = x + self.local_connection(attended)
        return x + self.mlp(self.norm2(x))


class LocallyEnhancedViT(nn.Module):
    """LEVT (Eq. 13-14): learnable positional embedding ``(1, C, H, W)`` added to the map, then ``depth``
    :class:`LocallyEnhancedBlock`. A map of another size than ``grid`` gets the embedding resized
    (bicubic), so the detector also runs at other input sizes."""

    def __init__(
        self,
        dim: int,
        grid: tuple[int, int],
        depth: int = 6,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        local_connection: bool = True,
        mas: bool = True,
        mas_init_logit: float = 0.0,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"LocallyEnhancedViT: depth must be >= 1 (use no LEVT for depth 0), got {depth}")
        self.position_embedding = nn.Parameter(torch.zeros(1, dim, *grid))
        nn.init.trunc_normal_(self.position_embedding, std=0.02)
        self.blocks = nn.Sequential(
            *(LocallyEnhancedBlock(dim, num_heads, mlp_ratio, local_connection, mas, mas_init_logit) for _ in range(depth))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        position = self.position_embedding
        if position.shape[-2:] != x.shape[-2:]:
            position = F.interpolate(position, size=x.shape[-2:], mode="bicubic", align_corners=False)
        return self.blocks(x + position.to(x.dtype))
