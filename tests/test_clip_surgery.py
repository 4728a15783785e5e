"""The open_clip edits change nothing until a method trains them: same outputs as CLIP."""

from __future__ import annotations

import torch

from detectors.backbones.clip import build_clip
from detectors.backbones.clip_surgery import (
    RecordingAttention,
    encode_text_embeddings,
    record_attention,
    tokenize,
    vision_blocks,
)


def _clip():
    torch.manual_seed(0)
    return build_clip("ViT-B-16", size="tiny", image_size=32).eval()


def test_recording_attention_matches_multihead_attention_and_records_maps():
    clip = _clip()
    images = torch.randn(2, 3, 32, 32)
    reference = clip.encode_image(images)
    recorders = record_attention(clip, layers=[0, 2])
    assert all(isinstance(vision_blocks(clip)[i].attn, RecordingAttention) for i in (0, 2))
    torch.testing.assert_close(clip.encode_image(images), reference, rtol=1e-5, atol=1e-5)
    attention = recorders[0].last_attention
    tokens = (32 // 8) ** 2 + 1
    assert attention.shape == (2, 4, tokens, tokens)
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 4, tokens))
    # per-head values through the per-head out_proj slices rebuild the attention output
    rec = recorders[0]
    x = vision_blocks(clip)[0].ln_1(torch.randn(2, tokens, 64))
    out, _ = rec(x)
    heads = torch.einsum("bhnd,hde->bne", rec.last_head_values, rec.head_out_proj()) + rec.attn.out_proj.bias
    torch.testing.assert_close(heads, out)


def test_text_from_embeddings_equals_encode_text():
    clip = _clip()
    tokens = tokenize(["a photo of a real face", "a photo of a fake face"])
    reference = clip.encode_text(tokens)
    ours = encode_text_embeddings(clip, clip.token_embedding(tokens), tokens.argmax(dim=-1))
    torch.testing.assert_close(ours, reference)
