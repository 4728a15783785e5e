"""DFMoE's parameter penalty L_P-Penalty: discourage routing to the large experts of a heterogeneous MoE."""

from __future__ import annotations

import torch


def expert_parameter_penalty(probs: torch.Tensor, expert_sizes: torch.Tensor | list[float]) -> torch.Tensor:
    """``L = sum_i m_i * P_i`` with ``P_i`` = mean over rows of ``probs[:, i]`` (DFMoE Eq. 10: the
    ``1/T`` over routed rows is the mean) and ``m_i = M_i / max_j M_j`` the expert sizes normalised by the
    largest, so the loss lies in ``[min m, 1]`` whatever the unit of M (hidden width, parameter count).

    ``probs``: ``(T, N)`` router probabilities (softmax over all experts; the gradient flows through
    them); ``expert_sizes``: ``(N,)`` positive sizes ``M_i``. Uniform routing gives ``mean(m)``; all rows
    on the largest expert give 1. Equal sizes make the loss constant (1, no gradient). Scalar, fp32.
    """
    sizes = torch.as_tensor(expert_sizes, dtype=torch.float32, device=probs.device)
    if probs.ndim < 2 or sizes.ndim != 1 or probs.shape[-1] != sizes.shape[0]:
        raise ValueError(
            f"expert_parameter_penalty: expected probs (T, N) and expert_sizes (N,), got "
            f"{tuple(probs.shape)} and {tuple(sizes.shape)}"
        )
    if bool((sizes <= 0).any()):
        raise ValueError(f"expert_parameter_penalty: expert sizes must be > 0, got {sizes.tolist()}")
    relative_sizes = sizes / sizes.max()
    mean_probs = probs.reshape(-1, probs.shape[-1]).float().mean(dim=0)
    return (relative_sizes * mean_probs).sum()
