"""MoA-CLIP's attention alignment loss L_att: make the mean attention maps of different domains agree."""

from __future__ import annotations

import torch

from common.choices import check_choice

PAIR_REDUCTIONS = ("sum", "mean")


def attention_alignment_loss(attn_maps: torch.Tensor, domain_ids: torch.Tensor, pair_reduction: str = "mean") -> torch.Tensor:
    """``L_att = sum over domain pairs (i < j) of ||A_i - A_j||_F^2`` (MoA-CLIP Eq. 8 as written:
    ``pair_reduction="sum"``, each unordered pair once) or the mean over the pairs (``"mean"``: the scale
    does not grow with the number of domains, N(N-1)/2 times smaller than the sum).

    ``attn_maps``: ``(B, ...)`` one attention map per sample (e.g. ``(B, M, M)``, or ``(B, H, M, M)`` per
    head: the Frobenius norm then runs over heads too; average heads/layers first if that is wanted);
    ``domain_ids``: ``(B,)`` integer domain of each sample. ``A_d`` = mean of the maps of the samples of
    domain d; only domains present in the batch take part. Returns 0 when fewer than two domains are
    present. Scalar, fp32.
    """
    check_choice("attention_alignment_loss: pair_reduction", pair_reduction, PAIR_REDUCTIONS)
    if attn_maps.shape[0] != domain_ids.shape[0] or domain_ids.ndim != 1:
        raise ValueError(
            f"attention_alignment_loss: attn_maps {tuple(attn_maps.shape)} and domain_ids "
            f"{tuple(domain_ids.shape)} must share the batch dimension (domain_ids 1-D)"
        )
    domains, domain_index = torch.unique(domain_ids, return_inverse=True)
    num_domains = domains.numel()
    if num_domains < 2:
        return attn_maps.new_zeros((), dtype=torch.float32)
    flat_maps = attn_maps.reshape(attn_maps.shape[0], -1).float()
    sums = flat_maps.new_zeros(num_domains, flat_maps.shape[1]).index_add_(0, domain_index, flat_maps)
    counts = torch.bincount(domain_index, minlength=num_domains).to(flat_maps.dtype)
    domain_means = sums / counts.unsqueeze(1)
    first, second = torch.triu_indices(num_domains, num_domains, offset=1, device=domain_means.device)
    pair_losses = (domain_means[first] - domain_means[second]).pow(2).sum(dim=1)
    return pair_losses.sum() if pair_reduction == "sum" else pair_losses.mean()
