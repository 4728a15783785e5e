"""open_clip CLIP models with pretrained none / tag / local file, and a tiny variant for demos.

The tiny variant keeps open_clip's module structure (``visual.transformer.resblocks[i]`` with
``ln_1, attn, ln_2, mlp``), so every method that edits blocks runs unchanged on it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import open_clip
import torch.nn as nn

from common.choices import check_choice
from detectors.backbones.pretrained import parse_pretrained
from detectors.weights_file import check_weights_file

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


TINY_PATCH_SIZE = 8
"""The tiny ViT's default patch (an 8 x 8 grid at 64 px); ``tiny_patch_size`` of the CLIP detectors."""


def tiny_clip_config(image_size: int, patch_size: int | None = None, width: int = 64, layers: int = 4) -> dict:
    """A few-layer CLIP with the real tokenizer vocabulary, built in well under a second; ``patch_size``
    None is ``TINY_PATCH_SIZE``."""
    patch_size = TINY_PATCH_SIZE if patch_size is None else int(patch_size)
    if patch_size < 1:
        raise ValueError(f"tiny CLIP: tiny_patch_size must be >= 1, got {patch_size}")
    return {
        "embed_dim": 64,
        "vision_cfg": {"image_size": image_size, "layers": layers, "width": width, "patch_size": patch_size, "head_width": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2},
    }


class _NoRandomInitWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No pretrained weights loaded for model")


@contextmanager
def _random_init_requested(requested: bool) -> Iterator[None]:
    """open_clip warns "No pretrained weights loaded ... initialized randomly" (root logger) whenever
    ``pretrained`` is None; when random weights are what the config asked for, that warning is noise."""
    if not requested:
        yield
        return
    root, drop = logging.getLogger(), _NoRandomInitWarning()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def build_clip(
    model_name: str = "ViT-B-16",
    pretrained: object = None,
    size: str = "paper",
    image_size: int | None = None,
    tiny_patch_size: int | None = None,
) -> nn.Module:
    """Build an open_clip ``CLIP``; weights are loaded here, before any method replaces modules.
    ``tiny_patch_size`` is the patch of the tiny ViT (``size='tiny'``; None: ``TINY_PATCH_SIZE``; the paper
    models keep theirs)."""
    if model_name not in open_clip.list_models():
        raise ValueError(f"unknown open_clip model {model_name!r}; known: {open_clip.list_models()[:20]} ...")
    check_choice("CLIP size", size, {"paper", "tiny"})
    spec = parse_pretrained(pretrained, what=f"open_clip model {model_name}")
    if spec.kind == "file":  # refused with a clear message before open_clip sees it
        check_weights_file(spec.value, f"pretrained weights of open_clip model {model_name}")
    if spec.kind == "tag" and spec.value.lower() == "synthetic":
        raise ValueError(
            "pretrained='synthetic' names the tiny CLIP the suite pretrains on the embedded data; the pipeline "
            "replaces it by the cached weights file (engine.synthetic_pretraining.resolve_synthetic_weights). "
            "Resolve the composed config with it first, or pass the file path"
        )
    if size == "tiny":
        # Tiny models never download; a local file (e.g. a saved tiny model) is still honoured.
        weights = spec.value if spec.kind == "file" else None
        with _random_init_requested(weights is None):
            return open_clip.create_model(model_name, pretrained=weights, **tiny_clip_config(image_size or 64, tiny_patch_size))
    kwargs = {"force_image_size": image_size} if image_size else {}
    if spec.kind == "none":
        with _random_init_requested(True):
            return open_clip.create_model(model_name, pretrained=None, **kwargs)
    # open_clip itself treats an existing file as a checkpoint and anything else as a tag.
    return open_clip.create_model(model_name, pretrained=spec.value, **kwargs)
