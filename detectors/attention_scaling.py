"""Multi-attention scaling (MAS, DTN Eq. 11 and 20), a learnable sigmoid scale per attention head or expert
branch, and the wrapper that plugs it into other transformers (DTN Table 8: ViT with / without MAS).

For one head, DTN scales the attention weights: ``A_h = sigmoid(lambda_h) * softmax(Q_h K_h^T / sqrt(d))``.
Since ``A_h V_h`` is linear in ``A_h``, this equals scaling the head's *output* by ``sigmoid(lambda_h)``, and
the heads' outputs sit side by side (``(..., H * d)``) at the input of the attention's output projection.
So MAS is added to any multi-head attention that calls an output projection module on the concatenated
heads (timm's ``Attention.proj``) by wrapping that projection: :func:`apply_multi_attention_scaling`.
(timm's optional ``scale_norm`` / ``gated`` paths apply before the projection, i.e. before MAS; both are
off in the ViTs used here.)
"""

from __future__ import annotations

import torch
from torch import nn

from detectors.baselines import TimmDetector


class MultiAttentionScaling(nn.Module):
    """``sigmoid(lambda_g)`` for G groups (attention heads, or MoE expert maps), ``lambda`` learnable.

    ``init_logit`` sets every ``lambda_g`` at the start (0 -> scale 0.5; the paper does not give it).
    ``forward(x, group_dim)`` multiplies ``x`` along ``group_dim`` (size G) by the scales;
    :meth:`scale_concatenated` scales ``(..., G * d)`` tensors whose last dimension holds the G groups side by side.
    """

    def __init__(self, num_groups: int, init_logit: float = 0.0) -> None:
        super().__init__()
        if num_groups < 1:
            raise ValueError(f"MultiAttentionScaling: num_groups must be >= 1, got {num_groups}")
        self.num_groups = num_groups
        self.logits = nn.Parameter(torch.full((num_groups,), float(init_logit)))

    def scales(self) -> torch.Tensor:
        """The current scales ``sigmoid(lambda)``, shape ``(G,)``, each in (0, 1)."""
        return torch.sigmoid(self.logits)

    def forward(self, x: torch.Tensor, group_dim: int) -> torch.Tensor:
        if x.shape[group_dim] != self.num_groups:
            raise ValueError(
                f"MultiAttentionScaling: dimension {group_dim} of x {tuple(x.shape)} must hold the "
                f"{self.num_groups} groups"
            )
        shape = [1] * x.ndim
        shape[group_dim] = self.num_groups
        return x * self.scales().to(x.dtype).reshape(shape)

    def scale_concatenated(self, x: torch.Tensor) -> torch.Tensor:
        width = x.shape[-1]
        if width % self.num_groups:
            raise ValueError(
                f"MultiAttentionScaling: last dimension {width} is not divisible into {self.num_groups} groups"
            )
        grouped = x.reshape(*x.shape[:-1], self.num_groups, width // self.num_groups)
        return self(grouped, group_dim=-2).reshape(x.shape)


class HeadScaledProjection(nn.Module):
    """An attention output projection preceded by MAS: ``proj(concat_h sigmoid(lambda_h) * head_h)``."""

    def __init__(self, projection: nn.Linear, num_heads: int, init_logit: float = 0.0) -> None:
        super().__init__()
        if projection.in_features % num_heads:
            raise ValueError(
                f"HeadScaledProjection: projection input width {projection.in_features} is not divisible "
                f"by num_heads={num_heads}"
            )
        self.projection = projection
        self.head_scaling = MultiAttentionScaling(num_heads, init_logit)

    def forward(self, heads: torch.Tensor) -> torch.Tensor:
        return self.projection(self.head_scaling.scale_concatenated(heads))


def apply_multi_attention_scaling(model: nn.Module, init_logit: float = 0.0) -> int:
    """Add MAS to every multi-head attention of ``model`` that has ``num_heads`` and an ``nn.Linear``
    output projection ``proj`` (timm ViT / DeiT / ... ``Attention``); returns how many were wrapped.

    Load pretrained weights *before* calling this (the projection's parameters move to
    ``proj.projection.*``). Raises when nothing could be wrapped, rather than silently training a model
    without MAS. Calling it twice does not wrap twice.
    """
    targets = [
        module
        for module in model.modules()
        if isinstance(getattr(module, "num_heads", None), int) and isinstance(getattr(module, "proj", None), nn.Linear)
    ]
    already = sum(isinstance(getattr(m, "proj", None), HeadScaledProjection) for m in model.modules())
    if not targets and not already:
        raise ValueError(
            f"apply_multi_attention_scaling: {type(model).__name__} has no attention module with `num_heads` "
            "and an nn.Linear `proj` (timm Attention); MAS cannot be plugged in"
        )
    for module in targets:
        module.proj = HeadScaledProjection(module.proj, module.num_heads, init_logit)
    return len(targets)


def attention_head_scales(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{module name: sigmoid(lambda) (H,)}`` for every MAS in ``model`` (what DTN Fig. 7 plots)."""
    return {
        name: module.scales().detach()
        for name, module in model.named_modules()
        if isinstance(module, MultiAttentionScaling)
    }


class MASTimmDetector(TimmDetector):
    """A timm transformer baseline (ViT-B/16 by default) with or without MAS in every attention block
    (DTN Table 8). ``multi_attention_scaling=False`` is exactly :class:`TimmDetector`."""

    def __init__(self, multi_attention_scaling: bool = True, mas_init_logit: float = 0.0, **timm_kwargs) -> None:
        super().__init__(**timm_kwargs)
        self.multi_attention_scaling = multi_attention_scaling
        if multi_attention_scaling:
            apply_multi_attention_scaling(self.backbone, mas_init_logit)
