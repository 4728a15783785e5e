"""DTN's contrastive-center (Ct-c) loss: pull each sample towards its class centre and away from the others.

DTN (Sec. 3.1) computes it on the *low-dimensional* output, the 2-d class probabilities, instead of the
high-level features of the original Ct-c loss (Qi & Su, 2017); both readings are offered
(:class:`ContrastiveCenterLoss` only holds the learnable centres, the caller decides what the points are).
"""

from __future__ import annotations

import torch
from torch import nn


def contrastive_center_loss(
    points: torch.Tensor, labels: torch.Tensor, centres: torch.Tensor, delta: float = 1.0
) -> torch.Tensor:
    """``L = (1/B) sum_b ||x_b - c_{y_b}||^2 / (sum_{j != y_b} ||x_b - c_j||^2 + delta)``.

    ``points``: ``(B, D)`` (DTN: the softmax probabilities, D = 2); ``labels``: ``(B,)`` class ids in
    ``[0, C)``; ``centres``: ``(C, D)`` learnable class centres (gradient flows to them and to the points);
    ``delta`` > 0 keeps the denominator away from 0. Scalar, fp32; 0 for an empty batch.
    """
    if points.ndim != 2 or centres.ndim != 2 or points.shape[1] != centres.shape[1]:
        raise ValueError(
            f"contrastive_center_loss: expected points (B, D) and centres (C, D), got "
            f"{tuple(points.shape)} and {tuple(centres.shape)}"
        )
    if labels.shape != (points.shape[0],):
        raise ValueError(f"contrastive_center_loss: labels must be ({points.shape[0]},), got {tuple(labels.shape)}")
    if centres.shape[0] < 2:
        raise ValueError(f"contrastive_center_loss: needs at least 2 class centres, got {centres.shape[0]}")
    if delta <= 0:
        raise ValueError(f"contrastive_center_loss: delta must be > 0, got {delta}")
    if points.shape[0] == 0:
        return points.new_zeros((), dtype=torch.float32)
    labels = labels.long()
    if int(labels.min()) < 0 or int(labels.max()) >= centres.shape[0]:
        raise ValueError(
            f"contrastive_center_loss: labels must be in [0, {centres.shape[0] - 1}], got values in "
            f"[{int(labels.min())}, {int(labels.max())}]"
        )
    squared_distances = (points.float().unsqueeze(1) - centres.float().unsqueeze(0)).pow(2).sum(dim=-1)
    own = squared_distances.gather(1, labels.unsqueeze(1)).squeeze(1)
    others = squared_distances.sum(dim=1) - own
    return (own / (others + delta)).mean()


class ContrastiveCenterLoss(nn.Module):
    """Learnable class centres ``(num_classes, dim)`` and :func:`contrastive_center_loss` against them.

    The centres are parameters (optimised with the model, as in the original Ct-c loss). They start at
    the one-hot vertices when ``dim == num_classes`` (the natural centres of probability vectors), else
    at small random values.
    """

    def __init__(self, num_classes: int = 2, dim: int = 2, delta: float = 1.0) -> None:
        super().__init__()
        if num_classes < 2 or dim < 1:
            raise ValueError(f"ContrastiveCenterLoss: need num_classes >= 2 and dim >= 1, got {num_classes}, {dim}")
        if delta <= 0:
            raise ValueError(f"ContrastiveCenterLoss: delta must be > 0, got {delta}")
        self.delta = float(delta)
        initial = torch.eye(num_classes) if dim == num_classes else 0.01 * torch.randn(num_classes, dim)
        self.centres = nn.Parameter(initial)

    def forward(self, points: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return contrastive_center_loss(points, labels, self.centres, self.delta)
