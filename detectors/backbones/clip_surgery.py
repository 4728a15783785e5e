"""Editing open_clip models in place, for the CLIP-family methods (SUEDE, MoA-CLIP, GM-DF).

- ``vision_blocks`` / ``text_blocks``: the residual blocks (``ln_1, attn, ln_2, mlp``).
- ``RoutedMLP``: a block's MLP replaced by a token-level MoE layer that still returns a tensor
  (open_clip calls ``block.mlp(x)``) and keeps its routing for losses and statistics.
- ``RecordingAttention``: a drop-in for ``nn.MultiheadAttention`` computing the same output
  explicitly, so per-head attention maps and per-head values can be read.
- ``encode_text_embeddings``: the CLIP text tower from token *embeddings*, so learnable prompt
  vectors (CoOp-style) can replace some tokens.
- ``select_layers``: block indices by group (``all`` / ``early`` / ``middle`` / ``late``) or by index.
- ``mlp_activation``: which activation a block MLP uses (experts copying it must match).
- ``AdaptedMLP`` / ``adapt_mlps``: a parallel side branch added to a block MLP's output (adapters).

Load weights before replacing modules (``build_clip`` does it at construction).
"""

from __future__ import annotations

import math

import open_clip
import torch
import torch.nn as nn
import torch.nn.functional as F

from common.choices import check_choice
from detectors.output import RoutingInfo


def vision_blocks(clip: nn.Module) -> nn.ModuleList:
    visual = getattr(clip, "visual", clip)
    return visual.transformer.resblocks


def text_blocks(clip: nn.Module) -> nn.ModuleList:
    return clip.transformer.resblocks


class RoutedMLP(nn.Module):
    """Wraps a layer ``(tokens (T, D)) -> (out (T, D), RoutingInfo)`` as a block MLP on (B, N, D).

    The last routing is kept in ``last_routing`` (token order = batch-major flattening).
    """

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer
        self.last_routing: RoutingInfo | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        out, routing = self.layer(x.reshape(-1, shape[-1]))
        self.last_routing = routing
        return out.reshape(shape)


class RecordingAttention(nn.Module):
    """Same computation as the wrapped ``nn.MultiheadAttention`` (batch-first, self-attention),
    written out so that ``last_attention`` (B, H, N, N) and ``last_head_values`` (B, H, N, d_head,
    the per-head attention outputs before ``out_proj``) can be kept when ``record`` is on."""

    def __init__(self, attn: nn.MultiheadAttention, record: bool = True):
        super().__init__()
        if not attn.batch_first or not attn._qkv_same_embed_dim:
            raise ValueError("RecordingAttention supports batch-first self-attention with packed in_proj only")
        self.attn = attn
        self.num_heads = attn.num_heads
        self.record = record
        self.last_attention: torch.Tensor | None = None
        self.last_head_values: torch.Tensor | None = None

    @property
    def batch_first(self) -> bool:
        return True

    def head_out_proj(self) -> torch.Tensor:
        """``out_proj`` weight split per head: (H, d_head, D), so head h maps v_h @ W[h]."""
        weight = self.attn.out_proj.weight  # (D, D): out = concat(heads) @ weight.T
        dim = weight.shape[0]
        return weight.T.reshape(self.num_heads, dim // self.num_heads, dim)

    def forward(self, query, key=None, value=None, need_weights=False, attn_mask=None, **_):
        x = query
        batch, tokens, dim = x.shape
        heads, head_dim = self.num_heads, dim // self.num_heads
        qkv = F.linear(x, self.attn.in_proj_weight, self.attn.in_proj_bias)
        q, k, v = qkv.reshape(batch, tokens, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(head_dim)
        if attn_mask is not None:
            scores = scores + attn_mask.to(scores.dtype)
        attention = scores.softmax(dim=-1)
        attention = F.dropout(attention, p=self.attn.dropout, training=self.training)
        head_values = attention @ v  # (B, H, N, d_head)
        if self.record:
            self.last_attention = attention
            self.last_head_values = head_values
        out = self.attn.out_proj(head_values.transpose(1, 2).reshape(batch, tokens, dim))
        return out, (attention.mean(dim=1) if need_weights else None)


def record_attention(clip: nn.Module, layers: list[int] | None = None) -> list[RecordingAttention]:
    """Swap the attention of the chosen vision blocks (default all) for ``RecordingAttention``."""
    blocks = vision_blocks(clip)
    chosen = range(len(blocks)) if layers is None else layers
    recorders = []
    for i in chosen:
        block = blocks[i]
        if not isinstance(block.attn, RecordingAttention):
            block.attn = RecordingAttention(block.attn)
        recorders.append(block.attn)
    return recorders


def tokenize(texts: list[str], context_length: int = 77) -> torch.Tensor:
    """CLIP BPE tokens (the vocabulary ships inside open_clip: no download)."""
    return open_clip.tokenize(texts, context_length=context_length)


def _text_cast_dtype(clip: nn.Module) -> torch.dtype:
    """open_clip's ``transformer.get_cast_dtype()`` reads ``resblocks[0].mlp.c_fc``, which a replaced
    MLP (``RoutedMLP``, ``AdaptedMLP``) does not have; then the MLP's first weight's dtype is used."""
    try:
        return clip.transformer.get_cast_dtype()
    except AttributeError:
        return next(clip.transformer.resblocks[0].mlp.parameters()).dtype


def encode_text_embeddings(clip: nn.Module, embeddings: torch.Tensor, eot_positions: torch.Tensor) -> torch.Tensor:
    """The text tower of ``clip.encode_text`` starting after the token embedding.

    ``embeddings``: (P, L, D) token embeddings (some may be learnable vectors);
    ``eot_positions``: (P,) index of the end-of-text token whose state is pooled.
    """
    cast_dtype = _text_cast_dtype(clip)
    x = embeddings.to(cast_dtype) + clip.positional_embedding.to(cast_dtype)
    x = clip.transformer(x, attn_mask=clip.attn_mask)
    x = clip.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), eot_positions]
    projection = clip.text_projection
    if projection is None:
        return x
    return projection(x) if isinstance(projection, nn.Linear) else x @ projection


# -- additions for SUEDE / MoA-CLIP (general: any method editing open_clip blocks) -----------------

LAYER_GROUPS = ("all", "early", "middle", "late")


def select_layers(spec: str | int | list[int] | tuple[int, ...], depth: int) -> list[int]:
    """Block indices named by ``spec`` in a tower of ``depth`` blocks.

    ``"all"``; ``"early"`` / ``"middle"`` / ``"late"``: a group of ``max(1, round(depth / 4))`` blocks
    at the start, centre or end (ViT-B: 3 of 12, so early = 0-2 as in SUEDE Table IV, middle = 4-6,
    late = 9-11); or explicit indices (negative ones count from the end). Sorted, no duplicates.
    """
    if depth < 1:
        raise ValueError(f"select_layers: depth must be >= 1, got {depth}")
    if isinstance(spec, str):
        check_choice("select_layers: layer group", spec, LAYER_GROUPS, note="or a list of indices")
        if spec == "all":
            return list(range(depth))
        size = max(1, round(depth / 4))
        start = {"early": 0, "middle": (depth - size) // 2, "late": depth - size}[spec]
        return list(range(start, start + size))
    indices = [spec] if isinstance(spec, int) else list(spec)
    if not indices:
        raise ValueError("select_layers: an empty list of layers selects nothing; give at least one index")
    resolved = []
    for index in indices:
        if not -depth <= int(index) < depth:
            raise ValueError(f"select_layers: layer {index} out of range for a tower of {depth} blocks")
        resolved.append(int(index) % depth)
    return sorted(set(resolved))


def mlp_activation(mlp: nn.Module) -> str:
    """The name (``gelu`` / ``quick_gelu``, as ``detectors.moe.activation_function`` knows them) of an
    open_clip block MLP's activation: OpenAI checkpoints use QuickGELU, so experts that copy or sit
    beside that MLP must use the same function."""
    activations = [m for m in mlp.modules() if isinstance(m, nn.GELU | open_clip.transformer.QuickGELU)]
    if len(activations) != 1:
        raise ValueError(f"mlp_activation: expected one GELU/QuickGELU in {type(mlp).__name__}, found {len(activations)}")
    activation = activations[0]
    if isinstance(activation, open_clip.transformer.QuickGELU):
        return "quick_gelu"
    if activation.approximate != "none":
        raise ValueError(f"mlp_activation: GELU(approximate={activation.approximate!r}) has no expert equivalent; expected 'none'")
    return "gelu"


class AdaptedMLP(nn.Module):
    """A block MLP with a parallel side branch: ``mlp(x) + adapter(x, **side_inputs)`` (MoA-CLIP Eq. 6,
    GM-DF's per-domain FFN experts). The adapter returns a tensor, or ``(tensor, RoutingInfo)`` whose
    routing is kept in ``last_routing``. ``side_inputs`` (e.g. ``{"domain_ids": ids}``) is set by the
    owning detector before each forward, because open_clip calls ``block.mlp(x)`` with ``x`` only."""

    def __init__(self, mlp: nn.Module, adapter: nn.Module):
        super().__init__()
        self.mlp = mlp
        self.adapter = adapter
        self.side_inputs: dict[str, torch.Tensor] = {}
        self.last_routing: RoutingInfo | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        side = self.adapter(x, **self.side_inputs)
        delta, self.last_routing = side if isinstance(side, tuple) else (side, None)
        return self.mlp(x) + delta


def adapt_mlps(clip: nn.Module, layers: list[int], make_adapter) -> list[AdaptedMLP]:
    """Wrap the MLP of each chosen vision block in :class:`AdaptedMLP` with ``make_adapter(block_index,
    width)`` as its side branch; returns the wrappers in layer order."""
    blocks = vision_blocks(clip)
    wrappers = []
    for index in layers:
        block = blocks[index]
        if isinstance(block.mlp, AdaptedMLP):
            raise ValueError(f"adapt_mlps: block {index} already has an adapter")
        width = block.ln_2.normalized_shape[0]
        block.mlp = AdaptedMLP(block.mlp, make_adapter(index, width))
        wrappers.append(block.mlp)
    return wrappers
