"""Learning-rate schedules the papers use that torch does not ship as one object."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0, min_lr: float = 0.0
) -> LambdaLR:
    """Linear warm-up to each group's lr, then cosine decay to ``min_lr`` at ``total_steps``
    (MoA-CLIP: 500 warm-up steps, min lr 1e-6). Step it every optimiser step."""
    if total_steps <= 0:
        raise ValueError(f"warmup_cosine needs total_steps > 0, got {total_steps}")
    base_lrs = [group["lr"] for group in optimizer.param_groups]

    def factor(step: int, base_lr: float) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        floor = min_lr / base_lr if base_lr else 0.0
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, [lambda s, b=b: factor(s, b) for b in base_lrs])
