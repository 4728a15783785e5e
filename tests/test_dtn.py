"""DTN: paper-size parameter and FLOP counts of the LEVT blocks (Tables 6 and 9), MAS in S-MHSA and as a
pluggable wrapper for timm ViTs (Table 8), the noisy attention MoE and its perturbations, the Ct-c loss."""

from __future__ import annotations

import copy
import functools

import pytest
import timm
import torch
from conftest import CONF
from omegaconf import OmegaConf
from torch.utils.flop_counter import FlopCounterMode

from detectors.attention_scaling import (
    HeadScaledProjection,
    MASTimmDetector,
    apply_multi_attention_scaling,
    attention_head_scales,
)
from detectors.dtn import DTN
from detectors.dtn_parts import (
    PERTURBATIONS,
    FeaturePerturbation,
    LocallyEnhancedBlock,
    LocallyEnhancedViT,
    NoisyAttentionMoE,
    ScaledMultiHeadSelfAttention,
)
from losses.contrastive_center import ContrastiveCenterLoss, contrastive_center_loss

OPTIMIZER = functools.partial(torch.optim.Adam, lr=1e-3)
# The widths DTN has at scale=demo (conf/scaled/detector/demo/dtn.yaml).
TINY_WIDTHS = dict(OmegaConf.load(CONF / "scaled" / "detector" / "demo" / "dtn.yaml").detector)
# DTN Table 9 (params, M): depth 4..7 -> 23.590, 26.751, 29.912, 33.073, i.e. +3.161 M per block;
# Table 6: without LC 29.876 M (-0.036 M over 6 blocks). FLOPs: +0.203 G per block (multiply-adds).
PAPER_BLOCK_PARAMS_M = 3.161
PAPER_LC_PARAMS_M = 0.036
PAPER_BLOCK_GMACS = 0.203


def parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def tiny_dtn(**overrides) -> DTN:
    return DTN(**{"size": "tiny", "input_size": 64, "optimizer": OPTIMIZER, **TINY_WIDTHS, **overrides})


def test_levt_parameters_at_paper_sizes_match_table_9_increments():
    """Width 512, 8 heads, MLP ratio 4 on the 8x8 map of a stride-32 backbone at 256 px."""
    counts = {depth: parameters(LocallyEnhancedViT(512, (8, 8), depth, 8, 4.0)) for depth in (4, 5, 6, 7)}
    increments = {counts[d + 1] - counts[d] for d in (4, 5, 6)}
    assert increments == {3_158_536}  # every extra block adds the same count
    block = increments.pop()
    assert block / 1e6 == pytest.approx(PAPER_BLOCK_PARAMS_M, rel=2e-3)  # 3.1585 M vs 3.161 M
    without_lc = parameters(LocallyEnhancedViT(512, (8, 8), 6, 8, 4.0, local_connection=False))
    saved = (counts[6] - without_lc) / 1e6
    assert saved == pytest.approx(PAPER_LC_PARAMS_M, abs=1e-3)  # 6 x (depthwise 3x3 + BN) = 0.0369 M
    mas_parameters = sum(p.numel() for n, p in LocallyEnhancedBlock(512).named_parameters() if "head_scaling" in n)
    assert mas_parameters == 8  # MAS: one scalar per head, "a slight increase"


def test_levt_block_flops_match_table_9():
    block = LocallyEnhancedBlock(512, 8, 4.0).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        block(torch.randn(1, 512, 8, 8))
    gmacs = counter.get_total_flops() / 2e9
    assert gmacs == pytest.approx(PAPER_BLOCK_GMACS, rel=0.02)  # 0.2016 vs 0.203


def test_scaled_attention_equals_sigmoid_scaled_attention_weights():
    """Eq. 20: A_h = sigmoid(lambda_h) softmax(Q K^T / sqrt(d)); MAS scales each head's output alike."""
    torch.manual_seed(0)
    attention = ScaledMultiHeadSelfAttention(16, num_heads=4).eval()
    with torch.no_grad():
        attention.head_scaling.logits.copy_(torch.tensor([-2.0, 0.0, 1.0, 3.0]))
    tokens = torch.randn(2, 5, 16)
    q, k, v = attention.qkv(tokens).reshape(2, 5, 3, 4, 4).permute(2, 0, 3, 1, 4)
    weights = torch.softmax(q @ k.transpose(-1, -2) / 2.0, dim=-1)
    weights = weights * torch.sigmoid(attention.head_scaling.logits).reshape(1, 4, 1, 1)
    expected = attention.proj((weights @ v).transpose(1, 2).reshape(2, 5, 16))
    torch.testing.assert_close(attention(tokens), expected, atol=1e-5, rtol=1e-5)
    plain = ScaledMultiHeadSelfAttention(16, num_heads=4, mas=False)
    assert parameters(attention) - parameters(plain) == 4


def test_mas_wrapper_plugs_into_a_timm_vit_and_scales_each_head():
    torch.manual_seed(1)
    vit = timm.create_model("test_vit", num_classes=0).eval()
    wrapped = copy.deepcopy(vit)
    count = apply_multi_attention_scaling(wrapped, init_logit=30.0)  # sigmoid(30) = 1: the original model
    assert count == len(vit.blocks)
    assert apply_multi_attention_scaling(wrapped) == 0  # never wraps twice
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(wrapped(images), vit(images))
        heads = vit.blocks[0].attn.num_heads
        head_dim = vit.blocks[0].attn.head_dim
        wrapped.blocks[0].attn.proj.head_scaling.logits[1] = -30.0  # switch off head 1 of block 0
        reference = copy.deepcopy(vit)
        reference.blocks[0].attn.proj.weight[:, head_dim : 2 * head_dim] = 0.0
        torch.testing.assert_close(wrapped(images), reference(images), atol=1e-5, rtol=1e-5)
    assert isinstance(wrapped.blocks[0].attn.proj, HeadScaledProjection)
    assert parameters(wrapped) - parameters(vit) == heads * len(vit.blocks)
    with pytest.raises(ValueError, match="no attention module"):
        apply_multi_attention_scaling(torch.nn.Sequential(torch.nn.Linear(2, 2)))


def test_vit_detector_with_and_without_mas(tmp_path):
    with_mas = MASTimmDetector(backbone="vit_base_patch16_224", size="tiny", input_size=64, optimizer=OPTIMIZER)
    without = MASTimmDetector(
        backbone="vit_base_patch16_224", size="tiny", input_size=64, optimizer=OPTIMIZER, multi_attention_scaling=False
    )
    scales = attention_head_scales(with_mas)
    assert len(scales) == len(with_mas.backbone.blocks) and attention_head_scales(without) == {}
    assert all(torch.allclose(s, torch.full_like(s, 0.5)) for s in scales.values())  # init logit 0
    assert with_mas(torch.randn(2, 3, 64, 64)).logits.shape == (2,)
    from conftest import compose
    from hydra.utils import instantiate

    cfg = compose(["experiment=baseline_ffpp", "detector=vit_b16_mas", "scale=demo"], tmp_path)
    assert isinstance(instantiate(cfg.detector, _convert_="all"), MASTimmDetector)


@pytest.mark.parametrize("kind", [k for k in PERTURBATIONS if k != "none"])
def test_perturbations_act_in_training_only(kind):
    torch.manual_seed(2)
    perturbation = FeaturePerturbation(kind, noise_std=0.5, contrast_range=0.5).train()
    features = (torch.rand(3, 4, 6, 6) * 3).requires_grad_(True)
    perturbed = perturbation(features)
    assert perturbed.shape == features.shape and not torch.allclose(perturbed, features)
    perturbed.sum().backward()
    assert features.grad is not None and features.grad.abs().sum() > 0  # compression: straight-through
    perturbation.eval()
    assert torch.equal(perturbation(features), features)
    assert torch.equal(FeaturePerturbation("none").train()(features), features)


def test_noisy_moe_max_fusion_with_expert_scaling():
    torch.manual_seed(3)
    moe = NoisyAttentionMoE(8, num_experts=3, hidden_channels=4, perturbation=FeaturePerturbation("gaussian_noise"))
    with torch.no_grad():
        moe.expert_scaling.logits.copy_(torch.tensor([-1.0, 0.5, 2.0]))
    features = torch.randn(2, 8, 5, 5)
    moe.eval()
    output, maps, routing = moe(features)
    assert maps.shape == (2, 3, 5, 5)
    raw = torch.cat([expert(features) for expert in moe.experts], dim=1)
    torch.testing.assert_close(maps, raw * torch.sigmoid(moe.expert_scaling.logits).reshape(1, 3, 1, 1))
    torch.testing.assert_close(output, features * maps.max(dim=1, keepdim=True).values)
    # routing: the expert whose map is the maximum, per position (sample-major), weight 1
    assert routing.indices.shape == routing.weights.shape == (2 * 25, 1) and routing.num_experts == 3
    assert torch.equal(routing.indices[:, 0], maps.argmax(dim=1).reshape(-1))
    assert torch.equal(routing.weights, torch.ones(50, 1)) and torch.equal(routing.probs.argmax(dim=1), routing.indices[:, 0])
    torch.testing.assert_close(moe(features)[0], output)  # eval: no noise, deterministic
    moe.train()
    assert not torch.allclose(moe(features)[0], output)  # training: noisy experts
    vanilla = NoisyAttentionMoE(8, num_experts=3, hidden_channels=4, mode="vanilla", expert_scaling=False).eval()
    mixed, maps, routing = vanilla(features)
    assert routing is not None and routing.weights.shape == (2, 3)
    torch.testing.assert_close(mixed, features * (maps * routing.weights[:, :, None, None]).sum(1, keepdim=True))


def test_contrastive_center_loss_formula_and_gradient():
    points = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    centres = torch.eye(2)
    labels = torch.tensor([0, 1])
    own = torch.tensor([0.02, 0.08])
    other = torch.tensor([1.62, 1.28])
    torch.testing.assert_close(contrastive_center_loss(points, labels, centres, 1.0), (own / (other + 1.0)).mean())
    module = ContrastiveCenterLoss(2, 2)
    torch.testing.assert_close(module.centres.detach(), torch.eye(2))
    moving = points.clone().requires_grad_(True)
    module(moving, labels).backward()
    assert moving.grad[0, 0] < 0 and moving.grad[1, 1] < 0  # descent pulls each point to its own centre
    with pytest.raises(ValueError, match="labels must be in"):
        contrastive_center_loss(points, torch.tensor([0, 2]), centres)


def test_dtn_forward_losses_and_component_switches():
    torch.manual_seed(4)
    model = tiny_dtn(task_loss_weight=4.0, aux_loss_weights={"contrastive_center": 0.6, "kd": 0.4})
    images = torch.randn(4, 3, 64, 64)
    batch = {"label": torch.tensor([0, 1, 0, 1])}
    model.train()
    output = model(images, batch)
    assert output.logits.shape == (4, 2) and output.features.shape == (4, 64)
    assert set(output.aux_losses) == {"contrastive_center"}  # no teacher: no KD
    total, components = model.combine_losses(output, batch)
    ce = torch.nn.functional.cross_entropy(output.logits, batch["label"])
    torch.testing.assert_close(components["task"], 4 * ce)
    torch.testing.assert_close(total, 4 * ce + 0.6 * components["contrastive_center"])
    model.eval()
    assert model(images).aux_losses == {}
    baseline = tiny_dtn(moe_enabled=False, levt_depth=0)  # Table 3 "Baseline": backbone + GAP + FC
    assert baseline.moe is None and baseline.levt is None and baseline(images).logits.shape == (4, 2)
    vanilla = tiny_dtn(moe_mode="vanilla").eval()
    assert "moe" in vanilla(images).routing
    features_ctc = tiny_dtn(ctc_space="features").train()
    assert features_ctc.contrastive_center.centres.shape == (2, 64)
    assert tiny_dtn(ctc_space="none").train()(images, batch).aux_losses == {}


def test_dtn_errors_name_the_value():
    with pytest.raises(ValueError, match="ctc_space='logits'"):
        tiny_dtn(ctc_space="logits")
    with pytest.raises(ValueError, match="no tiny stand-in"):
        tiny_dtn(backbone="densenet121")  # vgg* now has one (the tiny VGG)
    with pytest.raises(ValueError, match="moe_mode|mode='soft'"):
        tiny_dtn(moe_mode="soft")
    with pytest.raises(FileNotFoundError, match="teacher checkpoint"):
        tiny_dtn(teacher_checkpoint="/nowhere/gen0.ckpt")


def test_demo_config_builds_and_a_64px_training_step_backpropagates(tmp_path):
    """The demo experiment builds DTN as configured and one training step gives every trainable tensor
    a finite gradient path (step time: benchmarks/train_step.py, docs/BENCHMARKS.md; no timed test)."""
    from conftest import compose
    from hydra.utils import instantiate

    cfg = compose(["experiment=dtn_ffpp", "scale=demo"], tmp_path)
    # depths stay the paper's; the widths are the demo's (conf/scaled/detector/demo/dtn.yaml), said in the config
    assert cfg.detector.levt_depth == 6 and cfg.detector.num_heads == 4 and cfg.detector.task_loss_weight == 4
    assert cfg.detector.embed_dim == 64 and cfg.detector.expert_hidden_channels == 16
    model = instantiate(cfg.detector, _convert_="all").train()
    images, batch = torch.randn(8, 3, 64, 64), {"label": torch.arange(8) % 2}
    loss = model.combine_losses(model(images, batch), batch)[0]
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_vanilla_moe_has_no_noise_and_no_expert_scaling_even_when_asked():
    """Table 7: the vanilla MoE is what DTN's MoE adds noise and sigma(s_i) scaling to."""
    torch.manual_seed(0)
    noisy = NoisyAttentionMoE(8, num_experts=3, hidden_channels=4, perturbation=FeaturePerturbation("gaussian_noise"))
    vanilla = NoisyAttentionMoE(
        8, num_experts=3, hidden_channels=4, mode="vanilla", perturbation=FeaturePerturbation("gaussian_noise"),
        expert_scaling=True,
    )
    assert noisy.expert_scaling is not None and noisy.perturbation.kind == "gaussian_noise"
    assert vanilla.expert_scaling is None and vanilla.perturbation.kind == "none"
    features = torch.randn(2, 8, 5, 5)
    vanilla.train()
    first, maps, routing = vanilla(features)
    torch.testing.assert_close(vanilla(features)[0], first)  # training: still deterministic (no noise)
    raw = torch.cat([expert(features) for expert in vanilla.experts], dim=1)
    torch.testing.assert_close(maps, raw)  # unscaled expert maps
    model = tiny_dtn(moe_mode="vanilla")  # the detector config's defaults (noise, scaling) do not leak in
    assert model.moe.perturbation.kind == "none" and model.moe.expert_scaling is None


def test_vgg_is_the_paper_backbone_and_demo_scale_has_a_tiny_vgg(tmp_path):
    from conftest import compose

    paper = compose(["experiment=dtn_ffpp"], tmp_path)
    assert paper.detector.backbone.startswith("vgg")
    demo = compose(["experiment=dtn_ffpp", "scale=demo"], tmp_path)
    model = DTN(**{k: v for k, v in dict(demo.detector).items() if k not in {"_target_", "optimizer", "scheduler"}},
                optimizer=OPTIMIZER)
    assert model.backbone.pretrained_cfg["architecture"] == "facemoe_test_vgg"
    assert parameters(model.backbone) < 200_000
    assert model(torch.randn(2, 3, 64, 64)).logits.shape == (2, 2)


def test_dtn_with_vgg11_at_paper_size_matches_table_9_parameters():
    """Table 9 re-measured with the paper's backbone family: VGG-11 + MoE (2 experts, 128 hidden) + LEVT."""
    counts = {}
    for depth in (4, 6):
        model = DTN(backbone="vgg11", pretrained=None, levt_depth=depth, input_size=256, optimizer=OPTIMIZER)
        counts[depth] = parameters(model) / 1e6
    assert counts[6] - counts[4] == pytest.approx(2 * PAPER_BLOCK_PARAMS_M, rel=2e-3)
    assert counts[6] == pytest.approx(29.912, abs=0.6)  # 29.388 M vs the paper's 29.912 M
    assert counts[4] == pytest.approx(23.590, abs=0.6)
