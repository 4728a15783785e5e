"""Masked image modelling losses (GM-DF Eq. 6, BEiT-style): predict what hides under masked patches,
either their discrete visual tokens (classification against a tokenizer's codes) or their pixels
(regression, MAE-style). Averaged over masked positions."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``(B, C, H, W) -> (B, N, patch_size * patch_size * C)``, patches in row-major order (the order of a
    ViT's patch tokens), each flattened as (row, column, channel)."""
    if images.ndim != 4:
        raise ValueError(f"patchify: expected images (B, C, H, W), got shape {tuple(images.shape)}")
    batch, channels, height, width = images.shape
    if height % patch_size or width % patch_size:
        raise ValueError(f"patchify: image size {height}x{width} is not a multiple of patch_size={patch_size}")
    rows, cols = height // patch_size, width // patch_size
    patches = images.reshape(batch, channels, rows, patch_size, cols, patch_size)
    return patches.permute(0, 2, 4, 3, 5, 1).reshape(batch, rows * cols, patch_size * patch_size * channels)


def _check_mask(mask: torch.Tensor, shape: tuple[int, int], what: str) -> None:
    if mask.dtype != torch.bool or tuple(mask.shape) != shape:
        raise ValueError(f"{what}: mask must be a bool tensor of shape {shape}, got {mask.dtype} {tuple(mask.shape)}")
    if not bool(mask.any()):
        raise ValueError(f"{what}: no position is masked; the loss would be undefined (mask ratio too small?)")


def masked_token_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``logits`` ``(B, N, V)`` against the visual tokens ``targets`` ``(B, N)`` at the
    masked positions ``mask`` ``(B, N)`` (bool), averaged over masked positions; fp32."""
    if logits.ndim != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(
            f"masked_token_loss: expected logits (B, N, V) and targets (B, N), got {tuple(logits.shape)} and "
            f"{tuple(targets.shape)}"
        )
    _check_mask(mask, tuple(targets.shape), "masked_token_loss")
    return F.cross_entropy(logits[mask].float(), targets[mask].long())


def masked_pixel_loss(
    predictions: torch.Tensor, images: torch.Tensor, mask: torch.Tensor, patch_size: int, normalize_target: bool = True
) -> torch.Tensor:
    """Mean squared error between ``predictions`` ``(B, N, P*P*C)`` and the pixels of the masked patches of
    ``images`` ``(B, C, H, W)``. ``normalize_target`` standardises each target patch by its own mean and
    variance (MAE's ``norm_pix_loss``), which stresses local texture over overall brightness."""
    target = patchify(images, patch_size).float()
    if predictions.shape != target.shape:
        raise ValueError(
            f"masked_pixel_loss: predictions {tuple(predictions.shape)} do not match the patches {tuple(target.shape)} "
            f"of images {tuple(images.shape)} with patch_size={patch_size}"
        )
    _check_mask(mask, tuple(target.shape[:2]), "masked_pixel_loss")
    if normalize_target:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1e-6).sqrt()
    return (predictions.float()[mask] - target[mask]).pow(2).mean()
