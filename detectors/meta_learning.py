"""Building blocks of MAML-style meta-learning over domains (GM-DF's Meta-Domain-Embedding Optimizer):
splitting a batch into meta-train and meta-test domains, and the differentiable inner SGD update of a
subset of parameters (first-order: the update is a constant for the outer loss; second-order: the outer
gradient flows through it).

The outer step (evaluating a module with the updated parameters) uses
``torch.func.functional_call(module, updated, args)``; these helpers only produce ``updated``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.distributed as dist


def split_meta_batch(
    domain_ids: torch.Tensor, num_meta_test_domains: int = 1, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(meta_train, meta_test)`` of a batch whose samples come from ``domain_ids`` ``(B,)``.

    ``num_meta_test_domains`` of the domains present are drawn at random as meta-test, the rest are
    meta-train (at least one domain always stays meta-train). A batch holding a single domain has no
    domain to hold out: its samples are split at random into two halves instead. A single sample is
    used for both roles. ``generator`` (CPU) makes the draw reproducible.
    """
    if domain_ids.ndim != 1 or domain_ids.numel() == 0:
        raise ValueError(f"split_meta_batch: expected non-empty domain_ids (B,), got shape {tuple(domain_ids.shape)}")
    if num_meta_test_domains < 1:
        raise ValueError(f"split_meta_batch: num_meta_test_domains must be >= 1, got {num_meta_test_domains}")
    device = domain_ids.device
    count = domain_ids.numel()
    if count == 1:
        both = torch.zeros(1, dtype=torch.long, device=device)
        return both, both
    domains = torch.unique(domain_ids).cpu()
    if domains.numel() < 2:
        order = torch.randperm(count, generator=generator).to(device)
        return order[: count // 2].sort().values, order[count // 2 :].sort().values
    held_out_count = min(num_meta_test_domains, domains.numel() - 1)
    held_out = domains[torch.randperm(domains.numel(), generator=generator)[:held_out_count]].to(device)
    is_test = torch.isin(domain_ids, held_out)
    return torch.nonzero(~is_test).squeeze(1), torch.nonzero(is_test).squeeze(1)


def _average_across_ranks(gradient: torch.Tensor) -> torch.Tensor:
    """The mean of ``gradient`` over DDP ranks as its value, while the backward graph (second-order
    meta-learning) stays the local one: ``g + (mean(g) - g).detach()``. Identity without DDP."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return gradient
    mean = gradient.detach().clone()
    dist.all_reduce(mean, op=dist.ReduceOp.SUM)
    mean /= dist.get_world_size()
    return gradient + (mean - gradient.detach())


def inner_sgd_step(
    loss: torch.Tensor,
    params: Mapping[str, torch.Tensor],
    lr: float,
    second_order: bool = False,
    max_grad_norm: float | None = None,
    keep_differentiable: bool = False,
) -> dict[str, torch.Tensor]:
    """``theta' = theta - lr * d loss / d theta`` for the named tensors ``params`` (MAML's inner update).

    ``second_order``: the gradient is taken with ``create_graph=True``, so ``theta'`` stays a function of
    every tensor the loss depended on and an outer loss can differentiate through the update.
    Otherwise ``theta'`` is detached (first-order MAML); ``keep_differentiable`` makes it a fresh leaf
    that requires grad (needed when another inner step follows). A parameter the loss does not depend on
    keeps its value. ``max_grad_norm`` rescales the gradients jointly when their global L2 norm exceeds it.
    Under DDP the gradients are averaged over ranks, so every rank applies the same update.
    """
    names = list(params)
    tensors = [params[n] for n in names]
    if not names:
        raise ValueError("inner_sgd_step: no parameters to update")
    if not loss.requires_grad:
        raise ValueError("inner_sgd_step: the inner loss does not depend on any tensor that requires grad")
    grads = torch.autograd.grad(loss, tensors, create_graph=second_order, retain_graph=True, allow_unused=True)
    grads = [torch.zeros_like(t) if g is None else _average_across_ranks(g) for t, g in zip(tensors, grads)]
    if max_grad_norm is not None:
        total = torch.sqrt(sum(g.detach().float().pow(2).sum() for g in grads))
        scale = torch.clamp(max_grad_norm / (total + 1e-12), max=1.0)
        grads = [g * scale.to(g.dtype) for g in grads]
    updated = {}
    for name, tensor, grad in zip(names, tensors, grads):
        new = tensor - lr * grad
        if not second_order:
            new = new.detach().requires_grad_(keep_differentiable)
        updated[name] = new
    return updated
