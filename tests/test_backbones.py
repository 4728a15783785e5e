"""``pretrained`` accepts none, a hub/tag name, or a local file; a missing file is an error."""

from __future__ import annotations

import pytest
import torch

from detectors.backbones.clip import build_clip
from detectors.backbones.pretrained import parse_pretrained
from detectors.backbones.timm_backbone import create_timm_backbone


def test_parse_pretrained_kinds(tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"x")
    assert parse_pretrained(None, "m").kind == "none"
    assert parse_pretrained("none", "m").kind == "none"
    assert parse_pretrained(True, "m").value == "default"
    assert parse_pretrained("openai", "m") .value == "openai"
    assert parse_pretrained(str(weights), "m").kind == "file"
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        parse_pretrained(str(tmp_path / "missing.pth"), "m")


def test_timm_local_weights_file_is_loaded(tmp_path):
    source = create_timm_backbone("resnet18", pretrained=None, size="tiny")
    with torch.no_grad():
        for p in source.parameters():
            p.normal_()
    path = tmp_path / "tiny_resnet.pth"
    torch.save(source.state_dict(), path)
    loaded = create_timm_backbone("resnet18", pretrained=str(path), size="tiny")
    fresh = create_timm_backbone("resnet18", pretrained=None, size="tiny")
    for (name, a), b in zip(source.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    assert any(not torch.equal(a, c) for a, c in zip(source.state_dict().values(), fresh.state_dict().values()))


def test_clip_local_checkpoint_file_is_loaded(tmp_path):
    source = build_clip("ViT-B-16", size="tiny", image_size=32)
    with torch.no_grad():
        source.visual.proj.normal_()
    path = tmp_path / "tiny_clip.pt"
    torch.save(source.state_dict(), path)
    loaded = build_clip("ViT-B-16", pretrained=str(path), size="tiny", image_size=32)
    assert torch.equal(loaded.visual.proj, source.visual.proj)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded.encode_image(x), source.encode_image(x))


def test_unknown_architectures_are_named():
    with pytest.raises(ValueError, match="resnet9000"):
        create_timm_backbone("resnet9000")
    with pytest.raises(ValueError, match="ViT-Z-99"):
        build_clip("ViT-Z-99", size="tiny")
