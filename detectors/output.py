"""What every detector's ``forward`` returns (the detector output contract)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class RoutingInfo:
    """Which experts a layer chose and with what weight, for statistics and auxiliary losses.

    ``indices``/``weights``: (tokens, k) selected experts and their renormalised weights;
    ``probs``: (tokens, num_experts) full router probabilities; ``logits``: raw router logits
    (fp32) before softmax.
    """

    indices: torch.Tensor
    weights: torch.Tensor
    probs: torch.Tensor
    logits: torch.Tensor | None = None
    num_experts: int = 0


@dataclass
class DetectorOutput:
    """``logits``: (B,) fake-vs-real logit (sigmoid gives P(fake)) or (B, 2) class logits
    (softmax[:, 1] gives P(fake)); ``features``: (B, D) pooled features; ``aux_losses``: named,
    *unweighted* auxiliary losses (weights come from config); ``routing``: per MoE layer."""

    logits: torch.Tensor
    features: torch.Tensor | None = None
    aux_losses: dict[str, torch.Tensor] = field(default_factory=dict)
    routing: dict[str, RoutingInfo] = field(default_factory=dict)

    def fake_probability(self) -> torch.Tensor:
        logits = self.logits.float()
        if logits.ndim == 1:
            return torch.sigmoid(logits)
        if logits.ndim == 2 and logits.shape[1] == 1:
            return torch.sigmoid(logits[:, 0])
        if logits.ndim == 2 and logits.shape[1] == 2:
            return torch.softmax(logits, dim=1)[:, 1]
        raise ValueError(f"logits of shape {tuple(logits.shape)}: expected (B,), (B, 1) or (B, 2)")
