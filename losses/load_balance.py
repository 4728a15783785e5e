"""Switch Transformer load-balancing loss: pushes a top-k router towards spreading tokens evenly."""

from __future__ import annotations

import torch


def load_balancing_loss(probs: torch.Tensor, indices: torch.Tensor, num_experts: int) -> torch.Tensor:
    """``L = N * sum_i f_i * P_i`` (Fedus et al. 2021, Eq. 4), generalised to top-k.

    ``probs``: ``(T, N)`` router probabilities (softmax over all N experts; leading dims are flattened);
    ``indices``: ``(T, k)`` the experts each token was sent to.
    ``f_i`` = fraction of the T*k token-to-expert assignments that went to expert i (sums to 1; no
    gradient, it comes from an argmax); ``P_i`` = mean over tokens of the probability of expert i
    (carries the gradient). Normalising f by T*k (not T) makes uniform routing (``f_i = P_i = 1/N``)
    give exactly 1 for any k; every token sent to one expert with probability 1 gives N.
    Computed in fp32; returns a scalar.
    """
    if probs.shape[-1] != num_experts:
        raise ValueError(
            f"load_balancing_loss: probs last dim {probs.shape[-1]} != num_experts {num_experts}"
        )
    probs = probs.reshape(-1, num_experts).float()
    indices = indices.reshape(probs.shape[0], -1)
    assignments = torch.bincount(indices.reshape(-1).long(), minlength=num_experts)
    if assignments.numel() != num_experts:
        raise ValueError(f"load_balancing_loss: expert indices must be < num_experts={num_experts}")
    fraction_assigned = assignments.float() / indices.numel()
    mean_prob = probs.mean(dim=0)
    return num_experts * (fraction_assigned * mean_prob).sum()
