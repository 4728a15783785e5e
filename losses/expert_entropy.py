"""Entropy of the batch-mean expert selection distribution (DFMoE's expert-assignment constraint)."""

from __future__ import annotations

import torch


def expert_usage_entropy(probs: torch.Tensor, divide_by_num_experts: bool = False) -> torch.Tensor:
    """``H(p_bar) = -sum_i p_bar_i log p_bar_i`` in nats, with ``p_bar = mean over rows of probs``.

    ``probs``: ``(T, N)`` selection probabilities per routed row (router softmax, or a one-hot / weight
    matrix of the actual selection); rows need not be normalised exactly, ``p_bar`` is used as is and
    ``0 log 0 = 0``. High entropy = experts used evenly (maximum ``log N`` for uniform use).
    ``divide_by_num_experts`` applies DFMoE Eq. 11's ``1/N`` factor. Returns a scalar, fp32.
    """
    if probs.ndim < 2:
        raise ValueError(
            f"expert_usage_entropy: probs must be (T, num_experts), got shape {tuple(probs.shape)}"
        )
    mean_usage = probs.reshape(-1, probs.shape[-1]).float().mean(dim=0)
    entropy = -torch.special.xlogy(mean_usage, mean_usage).sum()
    return entropy / probs.shape[-1] if divide_by_num_experts else entropy


def negative_expert_usage_entropy(probs: torch.Tensor, divide_by_num_experts: bool = False) -> torch.Tensor:
    """``-H(p_bar)``: the loss to *minimise* to spread load over experts (DFMoE's L_entropy as the project
    reads it; the paper's printed formula is +H, which minimised would collapse routing). Minimum
    ``-log N`` (or ``-log(N)/N`` with ``divide_by_num_experts``) at uniform use."""
    return -expert_usage_entropy(probs, divide_by_num_experts)
