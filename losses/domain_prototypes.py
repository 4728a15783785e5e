"""MoA-CLIP's cached domain regularisation L_cac: EMA prototypes per domain and the pull towards them."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


def domain_prototype_loss(
    features: torch.Tensor, domain_ids: torch.Tensor, prototypes: torch.Tensor
) -> torch.Tensor:
    """``L_cac = (1/B) sum_b ||f_b - mu_{d_b}||_2^2`` (MoA-CLIP Eq. 10, averaged over samples).

    ``features``: ``(B, D)``; ``domain_ids``: ``(B,)`` in ``[0, num_domains)``; ``prototypes``:
    ``(num_domains, D)``, treated as constants (detached: the prototypes move by EMA only).
    Every domain in the batch must have an initialised prototype. Scalar, fp32.
    """
    if features.ndim != 2 or prototypes.ndim != 2 or features.shape[1] != prototypes.shape[1]:
        raise ValueError(
            f"domain_prototype_loss: expected features (B, D) and prototypes (num_domains, D), got "
            f"{tuple(features.shape)} and {tuple(prototypes.shape)}"
        )
    _check_domain_ids(domain_ids, features.shape[0], prototypes.shape[0], "domain_prototype_loss")
    targets = prototypes.detach().float()[domain_ids.long()]
    return (features.float() - targets).pow(2).sum(dim=1).mean()


def _check_domain_ids(domain_ids: torch.Tensor, batch_size: int, num_domains: int, where: str) -> None:
    if domain_ids.shape != (batch_size,):
        raise ValueError(
            f"{where}: domain_ids must have shape ({batch_size},), got {tuple(domain_ids.shape)}"
        )
    if batch_size:
        low, high = torch.stack(torch.aminmax(domain_ids.long())).tolist()
        if low < 0 or high >= num_domains:
            raise ValueError(
                f"{where}: domain ids must be in [0, {num_domains - 1}], got values in [{low}, {high}]"
            )


class DomainPrototypes(nn.Module):
    """EMA prototype per domain, kept as buffers (saved in checkpoints, not optimised).

    Update (MoA-CLIP Eq. 9), for each domain d present in the batch:
    ``mu_d <- (1 - momentum) * mu_d + momentum * mean(f_b : d_b = d)``; ``momentum`` is the paper's update
    rate lambda (weight of the new batch mean, the BatchNorm convention). A domain's first update sets
    ``mu_d`` to its batch mean (no bias towards the zero initial value).

    DDP: when ``torch.distributed`` is initialised with more than one process, per-domain feature sums
    and counts are all-reduced before the update, so every rank applies the same update computed from
    the global batch and the prototypes stay identical across ranks without a broadcast.

    ``forward(features, domain_ids)`` updates the prototypes when ``self.training`` (before computing
    the loss, so a domain seen for the first time has a prototype) and returns
    :func:`domain_prototype_loss`; in eval mode it only computes the loss.
    """

    prototypes: torch.Tensor
    initialized: torch.Tensor

    def __init__(self, num_domains: int, dim: int, momentum: float = 0.1) -> None:
        super().__init__()
        if num_domains < 1 or dim < 1:
            raise ValueError(f"DomainPrototypes: num_domains and dim must be >= 1, got {num_domains}, {dim}")
        if not 0.0 < momentum <= 1.0:
            raise ValueError(
                f"DomainPrototypes: momentum (EMA update rate) must be in (0, 1], got {momentum}"
            )
        self.num_domains = num_domains
        self.dim = dim
        self.momentum = momentum
        self.register_buffer("prototypes", torch.zeros(num_domains, dim))
        self.register_buffer("initialized", torch.zeros(num_domains, dtype=torch.bool))

    @torch.no_grad()
    def update(self, features: torch.Tensor, domain_ids: torch.Tensor) -> None:
        """One EMA step from the batch (all-reduced across DDP ranks when distributed)."""
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(
                f"DomainPrototypes.update: features must be (B, {self.dim}), got {tuple(features.shape)}"
            )
        _check_domain_ids(domain_ids, features.shape[0], self.num_domains, "DomainPrototypes.update")
        features = features.detach().to(self.prototypes.dtype)
        sums = torch.zeros_like(self.prototypes).index_add_(0, domain_ids.long(), features)
        counts = torch.bincount(domain_ids.long(), minlength=self.num_domains).to(self.prototypes.dtype)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(sums)
            dist.all_reduce(counts)
        present = counts > 0
        batch_means = sums[present] / counts[present].unsqueeze(1)
        first_time = ~self.initialized[present]
        rate = torch.where(first_time, 1.0, self.momentum).to(batch_means.dtype).unsqueeze(1)
        self.prototypes[present] = (1 - rate) * self.prototypes[present] + rate * batch_means
        self.initialized |= present

    def forward(self, features: torch.Tensor, domain_ids: torch.Tensor) -> torch.Tensor:
        _check_domain_ids(domain_ids, features.shape[0], self.num_domains, "DomainPrototypes")
        if self.training:
            self.update(features, domain_ids)
        missing = ~self.initialized[domain_ids.long()]
        if bool(missing.any()):
            raise RuntimeError(
                f"DomainPrototypes: no prototype yet for domain(s) {sorted(set(domain_ids[missing].tolist()))}; "
                "update them in training mode first"
            )
        return domain_prototype_loss(features, domain_ids, self.prototypes)
