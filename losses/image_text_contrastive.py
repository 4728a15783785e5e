"""CLIP-style image-to-text classification loss against a set of class (or domain x class) text embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def image_text_logits(
    image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: float | torch.Tensor
) -> torch.Tensor:
    """``logits[b, c] = s_c * cos(image_b, text_c)``: ``image_emb`` ``(B, D)``, ``text_emb`` ``(C, D)``,
    ``logit_scale`` the multiplier itself (already exponentiated, e.g. ``clip.logit_scale.exp()``): a
    scalar, or a ``(C,)`` tensor giving each text its own scale (GM-DF's per-domain temperature
    ``1/tau_d``). Computed in fp32."""
    if image_emb.ndim != 2 or text_emb.ndim != 2 or image_emb.shape[1] != text_emb.shape[1]:
        raise ValueError(
            f"image_text_logits: expected image_emb (B, D) and text_emb (C, D), got "
            f"{tuple(image_emb.shape)} and {tuple(text_emb.shape)}"
        )
    scale = torch.as_tensor(logit_scale, dtype=torch.float32, device=image_emb.device)
    if scale.ndim > 1 or (scale.ndim == 1 and scale.shape[0] != text_emb.shape[0]):
        raise ValueError(
            f"image_text_logits: logit_scale must be a scalar or ({text_emb.shape[0]},), got shape {tuple(scale.shape)}"
        )
    cosine = F.normalize(image_emb.float(), dim=-1) @ F.normalize(text_emb.float(), dim=-1).T
    return cosine * scale


def image_text_contrastive_loss(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    targets: torch.Tensor,
    logit_scale: float | torch.Tensor,
) -> torch.Tensor:
    """``L = (1/B) sum_b -log softmax_c(s_c * cos(image_b, text_c))[targets_b]``: cross-entropy of the
    L2-normalised image embeddings against the C text embeddings, ``targets`` ``(B,)`` in ``[0, C)``
    (e.g. 0 = real/live, 1 = fake/attack, or the flat (domain, class) index for GM-DF's L_sis).
    One-directional (image -> text): the texts are class prototypes, not a paired batch."""
    logits = image_text_logits(image_emb, text_emb, logit_scale)
    if targets.shape != (image_emb.shape[0],):
        raise ValueError(
            f"image_text_contrastive_loss: targets must be ({image_emb.shape[0]},), got {tuple(targets.shape)}"
        )
    return F.cross_entropy(logits, targets.long())
