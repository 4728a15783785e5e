"""Grad-CAM of P(fake) on a few test faces (``plots.gradcam=true``), with pytorch-grad-cam.

The explained output is the fake log-odds (the one fake logit, or fake minus real logit of a
two-logit head), so warm regions are those that push a face towards "fake". The target layer is
found, not configured, so every detector works (:func:`find_target_layer`): for transformers the
first LayerNorm of the last block, whose (B, N, D) or (N, B, D) tokens form a square grid (a
class token in front is dropped) reshaped to (B, D, h, w) as pytorch-grad-cam expects; for CNNs
the last spatial feature map (B, C, H, W) of the forward pass.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from datamodules.transforms import NORMALIZATION
from evaluation.plots import plot_heatmap_overlays

log = logging.getLogger(__name__)


class FakeLogOdds(nn.Module):
    """The detector as a (B, 1) classifier of the fake log-odds, as pytorch-grad-cam wants."""

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.detector = detector

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.detector(images, None).logits.float()
        if logits.ndim == 2 and logits.shape[1] == 2:
            return (logits[:, 1] - logits[:, 0])[:, None]
        return logits.reshape(len(images), 1)


def _grid_side(tokens: int) -> tuple[int, int] | None:
    """(tokens to drop in front, grid side) when the tokens are a square grid, maybe after a class token."""
    for drop in (0, 1):
        side = math.isqrt(tokens - drop)
        if side >= 2 and side * side == tokens - drop:
            return drop, side
    return None


def _token_reshape(shape: tuple[int, ...], batch: int):
    """A reshape (tokens -> (B, D, h, w)) for a (B, N, D) or (N, B, D) square token grid, else None."""
    if len(shape) != 3 or batch not in (shape[0], shape[1]):
        return None
    batch_first = shape[0] == batch
    grid = _grid_side(shape[1] if batch_first else shape[0])
    if grid is None:
        return None
    drop, side = grid

    def reshape(tensor: torch.Tensor) -> torch.Tensor:
        if not batch_first:
            tensor = tensor.transpose(0, 1)
        tensor = tensor[:, drop:, :]
        return tensor.reshape(tensor.shape[0], side, side, tensor.shape[2]).permute(0, 3, 1, 2)

    return reshape, side


def find_target_layer(model: nn.Module, images: torch.Tensor) -> tuple[nn.Module, object, str]:
    """``(layer, reshape_transform or None, description)`` for Grad-CAM.

    Transformers: the first LayerNorm of the last block (``blocks[-1].norm1`` in timm,
    ``resblocks[-1].ln_1`` in open_clip, pytorch-grad-cam's advice): its patch tokens feed the last
    attention, so they still receive gradient when only the class token is pooled. CNNs (no such
    layer): the last module run whose output is a spatial map of at least 2x2.
    """
    order: list[tuple[str, nn.Module, tuple[int, ...]]] = []
    names = {module: name for name, module in model.named_modules()}
    batch = len(images)

    def record(module, inputs, output):
        if isinstance(output, torch.Tensor):
            order.append((names.get(module, "?"), module, tuple(output.shape)))

    handles = [m.register_forward_hook(record) for m in model.modules() if m is not model]
    try:
        with torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    block_norms = []
    for name, module, shape in order:
        match = re.match(r"^(.*\.\d+)\.", name)
        if isinstance(module, nn.LayerNorm) and match and _token_reshape(shape, batch) is not None:
            block_norms.append((match.group(1), name, module, shape))
    if block_norms:
        last_block = block_norms[-1][0]
        _, name, module, shape = next(entry for entry in block_norms if entry[0] == last_block)
        reshape, side = _token_reshape(shape, batch)
        return module, reshape, f"{name} {list(shape)} as a {side}x{side} grid"
    for name, module, shape in reversed(order):
        if len(shape) == 4 and shape[0] == batch and shape[2] >= 2 and shape[3] >= 2:
            return module, None, f"{name} {list(shape)}"
    raise ValueError(f"{type(model).__name__}: no transformer block norm or spatial feature map in the forward pass for Grad-CAM")


def pick_faces(frames, count: int, seed: int = 0) -> list[int]:
    """Rows of a test set to explain: half real and half fake when both exist (fixed seed)."""
    generator = np.random.default_rng(seed)
    labels = frames["label"].to_numpy()
    chosen: list[int] = []
    for label, share in ((0, count // 2), (1, count - count // 2)):
        rows = np.flatnonzero(labels == label)
        chosen += generator.choice(rows, size=min(len(rows), share), replace=False).tolist()
    return sorted(chosen)


def draw_gradcam(detector: nn.Module, eval_set, count: int, out_path: Path, dpi: int = 110) -> Path | None:
    """Grad-CAM panels of ``count`` faces of one test set; None (logged) when the set is empty."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    rows = pick_faces(eval_set.frames, count)
    if not rows:
        log.warning("plots: test set %s has no frames; no Grad-CAM drawn", eval_set.name)
        return None
    device = next(detector.parameters()).device
    was_training = detector.training
    detector.eval()
    # Lightning tests under inference mode; Grad-CAM needs gradients of the activations.
    with torch.inference_mode(False), torch.enable_grad():
        images = torch.stack([eval_set.dataset[row]["image"] for row in rows]).to(device).requires_grad_(True)
        wrapped = FakeLogOdds(detector)
        layer, reshape, description = find_target_layer(wrapped, images.detach())
        with GradCAM(model=wrapped, target_layers=[layer], reshape_transform=reshape) as cam:
            maps = cam(input_tensor=images, targets=[ClassifierOutputTarget(0)] * len(rows))
        with torch.no_grad():
            probabilities = torch.sigmoid(wrapped(images.detach())[:, 0]).cpu().numpy()
    detector.train(was_training)
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in NORMALIZATION[str(getattr(detector, "normalization", "imagenet"))])
    faces = [(images[i].detach().cpu() * std + mean).permute(1, 2, 0).numpy() for i in range(len(rows))]
    labels = eval_set.frames["label"].to_numpy()
    captions = [f"{'fake' if labels[r] else 'real'}, P(fake) {p:.2f}" for r, p in zip(rows, probabilities)]
    title = f"Grad-CAM of the fake log-odds, {eval_set.name}\nlayer {description}"
    return plot_heatmap_overlays(faces, list(maps), captions, out_path, title=title, dpi=dpi)
