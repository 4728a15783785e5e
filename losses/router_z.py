"""ST-MoE router z-loss: keeps router logits small so the fp32 softmax stays well conditioned."""

from __future__ import annotations

import torch


def router_z_loss(logits: torch.Tensor) -> torch.Tensor:
    """``L_z = (1/T) sum_t (log sum_i exp(x_ti))^2`` (Zoph et al. 2022, Eq. 5).

    ``logits``: ``(T, N)`` raw router logits (leading dims are flattened into tokens); computed in fp32.
    Returns a scalar; it is 0 only when every token's logsumexp is 0.
    """
    if logits.ndim < 1 or logits.shape[-1] < 1:
        raise ValueError(f"router_z_loss: logits must be (T, num_experts), got shape {tuple(logits.shape)}")
    log_partition = torch.logsumexp(logits.float(), dim=-1)
    return log_partition.pow(2).mean()
