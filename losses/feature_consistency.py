"""DFMoE's augmentation consistency L_consistency: augmented features must stay near the originals."""

from __future__ import annotations

import torch

from common.choices import check_choice


def feature_consistency_loss(
    original: torch.Tensor, augmented: torch.Tensor, reduction: str = "sum"
) -> torch.Tensor:
    """Squared Euclidean distance between each original feature and its augmented version (DFMoE Eq. 12).

    ``original``, ``augmented``: ``(B, D)``. ``reduction="sum"`` (default) is the paper's
    ``(1/B) sum_b ||f_b - f_aug_b||^2``: squared distances summed over the D dimensions; ``"mean"`` also
    averages over dimensions (``/ D``: width-independent, D times weaker at the same weight).
    Gradient flows through both arguments. Scalar, fp32; 0 for an empty batch.
    """
    if original.shape != augmented.shape or original.ndim != 2:
        raise ValueError(
            f"feature_consistency_loss: expected two (B, D) tensors of one shape, got "
            f"{tuple(original.shape)} and {tuple(augmented.shape)}"
        )
    check_choice("feature_consistency_loss: reduction", reduction, {"mean", "sum"})
    if original.shape[0] == 0:
        return original.new_zeros((), dtype=torch.float32)
    squared = (original.float() - augmented.float()).pow(2)
    return squared.mean() if reduction == "mean" else squared.sum(dim=1).mean()
