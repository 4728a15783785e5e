"""Second-order statistics domain alignment (GM-DF's DA loss): pull the per-domain feature means and
covariance matrices of a batch towards each other, so no training domain keeps its own feature
distribution (the multi-domain counterpart of CORAL's source/target alignment)."""

from __future__ import annotations

import itertools

import torch


def domain_statistics(
    features: torch.Tensor, domain_ids: torch.Tensor, min_samples: int = 2
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-domain mean and (unbiased) covariance of ``features`` ``(B, D)``.

    Returns ``(domains (K,), means (K, D), covariances (K, D, D))`` for the K domains of ``domain_ids``
    ``(B,)`` with at least ``min_samples`` samples (a covariance needs two), in ascending id order.
    Computed in fp32.
    """
    if features.ndim != 2 or domain_ids.shape != (features.shape[0],):
        raise ValueError(
            f"domain_statistics: expected features (B, D) and domain_ids (B,), got {tuple(features.shape)} "
            f"and {tuple(domain_ids.shape)}"
        )
    if min_samples < 2:
        raise ValueError(f"domain_statistics: min_samples must be >= 2 (a covariance needs two samples), got {min_samples}")
    features = features.float()
    domains, counts = torch.unique(domain_ids, return_counts=True)
    kept = domains[counts >= min_samples]
    means, covariances = [], []
    for domain in kept:
        part = features[domain_ids == domain]
        mean = part.mean(dim=0)
        centred = part - mean
        means.append(mean)
        covariances.append(centred.T @ centred / (part.shape[0] - 1))
    dim = features.shape[1]
    if not means:
        empty = features.new_zeros((0, dim))
        return kept, empty, features.new_zeros((0, dim, dim))
    return kept, torch.stack(means), torch.stack(covariances)


def second_order_alignment_loss(
    features: torch.Tensor,
    domain_ids: torch.Tensor,
    mean_weight: float = 1.0,
    covariance_weight: float = 1.0,
    min_samples: int = 2,
) -> torch.Tensor:
    """``mean over domain pairs a < b of [mean_weight * ||mu_a - mu_b||^2 + covariance_weight * ||C_a - C_b||_F^2]``.

    Squared L2 / Frobenius norms (not averaged over elements): on L2-normalised features each term is
    at most 4 whatever the width, so a weight means the same for ViT-B/16 and the tiny model (CORAL's
    ``||C_a - C_b||_F^2 / (4 D^2)`` would shrink with the width). Domains with fewer than
    ``min_samples`` samples are left out; with fewer than two domains left the loss is 0 (still
    connected to ``features`` so backward works). Pass L2-normalised features, or the loss can be
    lowered by shrinking the features instead of aligning them.
    """
    _, means, covariances = domain_statistics(features, domain_ids, min_samples)
    if means.shape[0] < 2:
        return features.float().sum() * 0.0
    terms = []
    for a, b in itertools.combinations(range(means.shape[0]), 2):
        mean_gap = (means[a] - means[b]).pow(2).sum()
        covariance_gap = (covariances[a] - covariances[b]).pow(2).sum()
        terms.append(mean_weight * mean_gap + covariance_weight * covariance_gap)
    return torch.stack(terms).mean()
