"""MoA-CLIP's similarity regularisation L_sim: pull embeddings of samples from different domains together."""

from __future__ import annotations

import torch


def cross_domain_similarity_loss(features: torch.Tensor, domain_ids: torch.Tensor) -> torch.Tensor:
    """``L_sim = (1/|P|) sum_{(a, b) in P} ||f_a - f_b||_2^2`` (MoA-CLIP Eq. 11), with P the set of sample
    pairs ``a != b`` whose domains differ (ordered or unordered pairs give the same mean).

    ``features``: ``(B, D)`` embeddings; ``domain_ids``: ``(B,)``. Returns 0 when all samples share one
    domain (P empty). Scalar, fp32. Cost O(B^2 D) memory, fine for batch sizes of a few hundred.
    """
    if features.ndim != 2 or domain_ids.ndim != 1 or features.shape[0] != domain_ids.shape[0]:
        raise ValueError(
            f"cross_domain_similarity_loss: expected features (B, D) and domain_ids (B,), got "
            f"{tuple(features.shape)} and {tuple(domain_ids.shape)}"
        )
    different_domain = domain_ids.unsqueeze(0) != domain_ids.unsqueeze(1)
    num_pairs = int(different_domain.sum())
    if num_pairs == 0:
        return features.new_zeros((), dtype=torch.float32)
    features = features.float()
    # Explicit differences rather than |a|^2 + |b|^2 - 2ab: exact and no cancellation for close embeddings.
    squared_distances = (features.unsqueeze(0) - features.unsqueeze(1)).pow(2).sum(dim=-1)
    return squared_distances[different_domain].sum() / num_pairs
