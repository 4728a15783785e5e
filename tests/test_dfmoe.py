"""DFMoE: per-sample dispatch runs only the selected experts, routing weights renormalise over the top K,
the three fusion modes, the adaptive feature augmentation, the frozen gate layers and the losses."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import CONF, tiny_detector, trained_aucs
from omegaconf import OmegaConf
from torch import nn

from detectors.dfmoe import DFMoE
from detectors.dfmoe_parts import (
    AdaptiveFeatureAugmentation,
    fuse_expert_features,
    gate_uncertainty,
    normalised_feature_entropy,
)
from losses.expert_entropy import negative_expert_usage_entropy
from losses.expert_parameter_penalty import expert_parameter_penalty
from losses.feature_consistency import feature_consistency_loss

WEIGHTS = {"expert_param_penalty": 0.1, "expert_entropy": 0.1, "augmentation_consistency": 0.05}


def tiny_dfmoe(**overrides) -> DFMoE:
    demo_widths = OmegaConf.load(CONF / "scaled" / "detector" / "demo" / "dfmoe.yaml").detector
    return tiny_detector(DFMoE, WEIGHTS, overrides, pretrained=None, expert_pretrained=None, **demo_widths)


def training_batch(batch_size: int = 6, seed: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, 3, 64, 64, generator=generator)
    batch = {
        "image": images,
        "label": torch.arange(batch_size) % 2,
        "type": torch.arange(batch_size) % 3,
        "domain": torch.zeros(batch_size, dtype=torch.long),
    }
    return images, batch


class CountingExpert(nn.Module):
    """Wraps an expert and records every input block it is called with."""

    def __init__(self, expert: nn.Module) -> None:
        super().__init__()
        self.expert = expert
        self.calls: list[torch.Tensor] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.calls.append(images.detach().clone())
        return self.expert(images)


@pytest.mark.parametrize("top_k", [1, 2])
def test_only_the_selected_experts_compute_and_each_on_its_own_samples(top_k):
    torch.manual_seed(0)
    model = tiny_dfmoe(num_experts=4, top_k=top_k).eval()
    model.experts = nn.ModuleList(CountingExpert(e) for e in model.experts)
    images = torch.randn(3, 3, 64, 64)
    output = model(images)
    indices = output.routing["experts"].indices
    assert indices.shape == (3, top_k)
    used = set(indices.flatten().tolist())
    for expert_id, expert in enumerate(model.experts):
        rows = [b for b in range(3) if expert_id in indices[b].tolist()]
        if not rows:
            assert expert.calls == [], f"expert {expert_id} ran although no sample selected it"
            continue
        assert len(expert.calls) == 1, f"expert {expert_id} was called {len(expert.calls)} times, expected once"
        torch.testing.assert_close(expert.calls[0], images[rows])
    assert sum(bool(e.calls) for e in model.experts) == len(used)
    if top_k == 1:
        assert len(used) < 4  # 3 samples, one expert each: at least one of the 4 experts never ran


def test_routing_weights_renormalise_over_the_selected_k():
    torch.manual_seed(1)
    model = tiny_dfmoe(num_experts=5, top_k=2).eval()
    routing = model(torch.randn(4, 3, 64, 64)).routing["experts"]
    assert routing.probs.shape == (4, 5) and routing.weights.shape == (4, 2)
    torch.testing.assert_close(routing.probs.sum(1), torch.ones(4))
    torch.testing.assert_close(routing.weights.sum(1), torch.ones(4))
    selected = routing.probs.gather(1, routing.indices)
    torch.testing.assert_close(routing.weights, selected / selected.sum(1, keepdim=True))
    assert bool((routing.weights[:, 0] >= routing.weights[:, 1]).all())  # top-K in descending order


def test_fusion_modes_follow_their_definitions():
    slots = torch.tensor([[[1.0, -2.0, 3.0], [3.0, 2.0, -1.0]]])  # (B=1, K=2, D=3)
    weights = torch.tensor([[0.75, 0.25]])
    torch.testing.assert_close(fuse_expert_features(slots, weights, "weighted"), torch.tensor([[1.5, -1.0, 2.0]]))
    torch.testing.assert_close(fuse_expert_features(slots, weights, "max"), torch.tensor([[3.0, 2.0, 3.0]]))
    torch.testing.assert_close(fuse_expert_features(slots, weights, "mean"), torch.tensor([[2.0, 0.0, 1.0]]))
    with pytest.raises(ValueError, match="expected one of"):
        fuse_expert_features(slots, weights, "sum")


def test_fusion_mode_changes_the_model_output_except_with_one_expert_selected():
    torch.manual_seed(2)
    images = torch.randn(3, 3, 64, 64)
    reference = tiny_dfmoe(num_experts=3, top_k=2, fusion="weighted").eval()
    features = {}
    for mode in ("weighted", "max", "mean"):
        model = tiny_dfmoe(num_experts=3, top_k=2, fusion=mode).eval()
        model.load_state_dict(reference.state_dict())
        features[mode] = model(images).features
    assert not torch.allclose(features["weighted"], features["max"])
    assert not torch.allclose(features["weighted"], features["mean"])
    single = {}
    for mode in ("weighted", "max", "mean"):
        model = tiny_dfmoe(num_experts=3, top_k=1, fusion=mode).eval()
        model.load_state_dict(reference.state_dict())
        single[mode] = model(images).features
    torch.testing.assert_close(single["weighted"], single["max"])
    torch.testing.assert_close(single["weighted"], single["mean"])


def test_training_forward_returns_the_three_weighted_losses_and_eval_none():
    torch.manual_seed(3)
    model = tiny_dfmoe(num_experts=3, top_k=2).train()
    images, batch = training_batch()
    output = model(images, batch)
    assert set(output.aux_losses) == set(WEIGHTS)
    total, components = model.combine_losses(output, batch)
    expected = components["task"] + sum(WEIGHTS[name] * components[name] for name in WEIGHTS)
    torch.testing.assert_close(total, expected)
    total.backward()
    router_grad = model.router.gate.gate[-1].weight.grad
    assert router_grad is not None and router_grad.abs().sum() > 0
    model.eval()
    assert model(images).aux_losses == {}
    no_augmentation = tiny_dfmoe(num_experts=3, top_k=2, augmentation=False).train()
    assert set(no_augmentation(images, batch).aux_losses) == {"expert_param_penalty", "expert_entropy"}


def test_early_gate_layers_are_frozen_and_their_batchnorms_stay_in_eval():
    torch.manual_seed(4)
    model = tiny_dfmoe(num_experts=2, top_k=1, gate_frozen_scales=2)
    gate = model.gate
    frozen = {n for n, p in gate.backbone.named_parameters() if not p.requires_grad}
    trainable = {n for n, p in gate.backbone.named_parameters() if p.requires_grad}
    assert frozen == gate.frozen_parameter_names and frozen and trainable
    assert all(not n.startswith(("stages_2", "final_conv")) for n in frozen)  # late stages keep training
    model.train()
    assert gate._frozen_norms and all(not norm.training for norm in gate._frozen_norms)
    before = {n: p.detach().clone() for n, p in gate.backbone.named_parameters()}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    images, batch = training_batch()
    for _ in range(2):
        optimizer.zero_grad()
        model.combine_losses(model(images, batch), batch)[0].backward()
        optimizer.step()
    after = dict(gate.backbone.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in frozen)
    assert any(not torch.equal(before[n], after[n]) for n in trainable)
    unfrozen = tiny_dfmoe(num_experts=2, top_k=1, gate_frozen_scales=0)
    assert all(p.requires_grad for p in unfrozen.gate.parameters())


def test_parameter_penalty_entropy_and_consistency_losses():
    sizes = torch.tensor([1280.0, 1536.0, 2048.0])
    uniform = torch.full((4, 3), 1 / 3)
    torch.testing.assert_close(expert_parameter_penalty(uniform, sizes), (sizes / 2048).mean())
    on_largest = torch.tensor([[0.0, 0.0, 1.0]]).repeat(4, 1)
    torch.testing.assert_close(expert_parameter_penalty(on_largest, sizes), torch.tensor(1.0))
    logits = torch.zeros(4, 3, requires_grad=True)
    expert_parameter_penalty(logits.softmax(1), sizes).backward()
    assert logits.grad[0, 0] < 0 < logits.grad[0, 2]  # descending the loss favours the small expert
    with pytest.raises(ValueError, match="must be > 0"):
        expert_parameter_penalty(uniform, [1.0, 0.0, 2.0])
    torch.testing.assert_close(negative_expert_usage_entropy(uniform, True), torch.tensor(-math.log(3) / 3))
    collapsed = torch.tensor([[1.0, 0.0, 0.0]]).repeat(4, 1)
    assert negative_expert_usage_entropy(collapsed) > negative_expert_usage_entropy(uniform)
    original, shifted = torch.zeros(2, 4), torch.ones(2, 4)
    torch.testing.assert_close(feature_consistency_loss(original, original), torch.tensor(0.0))
    torch.testing.assert_close(feature_consistency_loss(original, shifted, reduction="mean"), torch.tensor(1.0))
    torch.testing.assert_close(feature_consistency_loss(original, shifted), torch.tensor(4.0))  # Eq. 12: sum over dims


def test_adaptive_weight_is_high_for_flat_features_and_hesitant_gates():
    flat, spiked = torch.zeros(1, 8), torch.tensor([[50.0] + [0.0] * 7])
    assert normalised_feature_entropy(flat).item() == pytest.approx(1.0)
    assert normalised_feature_entropy(spiked).item() < 0.01
    assert gate_uncertainty(torch.full((1, 4), 0.25)).item() == pytest.approx(1.0)
    assert gate_uncertainty(torch.tensor([[1.0, 0.0, 0.0, 0.0]])).item() == pytest.approx(0.0)


def _augment(strategies, slots=None, seed=0):
    torch.manual_seed(seed)
    augmentation = AdaptiveFeatureAugmentation(4, num_centres=2, strategies=strategies, score_floor=0.05).train()
    fused = torch.randn(8, 4)
    slots = torch.randn(8, 2, 4) if slots is None else slots
    weights = torch.full((8, 2), 0.5)
    probs = torch.full((8, 3), 1 / 3)  # a hesitant gate: adaptive weight > 0
    centre_ids = torch.arange(8) % 2
    augmented, chosen = augmentation(fused, slots, weights, probs, centre_ids)
    return augmentation, fused, slots, augmented, chosen, centre_ids


def test_stretching_moves_features_away_from_their_domain_centre():
    augmentation, fused, _, augmented, chosen, centre_ids = _augment(["stretch"])
    assert bool((chosen == 0).all())
    centres = augmentation.centres.prototypes[centre_ids]
    torch.testing.assert_close(centres[0], fused[centre_ids == 0].mean(0))  # first update = batch mean
    step, outward = augmented - fused, fused - centres
    cosine = torch.nn.functional.cosine_similarity(step, outward, dim=1)
    moved = step.norm(dim=1) > 1e-6
    assert moved.any() and torch.allclose(cosine[moved], torch.ones(int(moved.sum())), atol=1e-4)


def test_perturbation_and_cross_expert_fusion():
    _, fused, _, augmented, chosen, _ = _augment(["perturb"])
    assert bool((chosen == 0).all()) and not torch.allclose(augmented, fused)
    slots = torch.stack([torch.zeros(8, 4), torch.ones(8, 4)], dim=1)
    _, _, _, mixed, chosen, _ = _augment(["cross_expert"], slots=slots)
    # lambda * 0 + (1 - lambda) * 1: every dimension of a sample equals the same 1 - lambda in [0, 1]
    assert bool((mixed >= 0).all() and (mixed <= 1).all())
    torch.testing.assert_close(mixed, mixed[:, :1].expand_as(mixed))
    with pytest.raises(ValueError, match="K >= 2"):
        augmentation = AdaptiveFeatureAugmentation(4, 2, ["cross_expert"], score_floor=0.0)
        augmentation(torch.randn(2, 4), torch.randn(2, 1, 4), torch.ones(2, 1), torch.ones(2, 1), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="subset"):
        AdaptiveFeatureAugmentation(4, 2, ["mixup"])


def test_config_errors_name_the_value():
    with pytest.raises(ValueError, match="top_k=4"):
        tiny_dfmoe(num_experts=3, top_k=4)
    with pytest.raises(ValueError, match="num_experts=7"):
        tiny_dfmoe(num_experts=7)
    with pytest.raises(ValueError, match="centre_key"):
        tiny_dfmoe(centre_key="video")


def test_demo_config_builds_and_a_64px_training_step_backpropagates(tmp_path):
    """The demo experiment builds DFMoE as configured and one training step reaches the gate and the
    selected experts (step time: benchmarks/train_step.py, docs/BENCHMARKS.md; no timed test)."""
    from conftest import compose
    from hydra.utils import instantiate

    cfg = compose(["experiment=dfmoe_ffpp", "scale=demo"], tmp_path)
    assert cfg.detector.top_k == 2 and cfg.detector.num_experts == 5 and cfg.detector.fusion == "weighted"
    assert dict(cfg.detector.aux_loss_weights) == WEIGHTS
    model = instantiate(cfg.detector, _convert_="all")
    assert isinstance(model, DFMoE) and len(model.experts) == 5
    images, batch = training_batch(8)
    model.train()
    loss = model.combine_losses(model(images, batch), batch)[0]
    loss.backward()
    assert torch.isfinite(loss)
    with_gradient = [i for i, expert in enumerate(model.experts) if any(p.grad is not None and p.grad.abs().sum() > 0 for p in expert.parameters())]
    assert len(with_gradient) >= cfg.detector.top_k, with_gradient


# Measured on the 2-core CPU machine (seed 0, synthetic generator version 5, the settings below, with the demo
# scale's output stride 8 and flip_crop): best validation (in-domain) frame AUC 0.735, FF++ test 0.734 (before
# them 0.688 / 0.736; 0.675 / 0.770 on a draft of the generator).
# Re-measure when the synthetic data changes.
DEMO_VAL_AUC = 0.58
DEMO_FFPP_AUC = 0.55
# Three experts and lr 1e-3 for 6 epochs: the multi-domain protocol has the most synthetic training data.
DEMO_OVERRIDES = [
    "experiment=dfmoe_ffpp", "scale=demo", "protocol=multidomain_leave_wdf", "detector.num_experts=3",
    "detector.optimizer.lr=1e-3", "trainer.max_epochs=6",
]


@pytest.mark.slow
def test_dfmoe_learns_on_the_embedded_data(tmp_path, synthetic_root):
    val_auc, aucs = trained_aucs(DEMO_OVERRIDES, tmp_path, synthetic_root)
    assert val_auc >= DEMO_VAL_AUC and aucs["ffpp"] >= DEMO_FFPP_AUC, (val_auc, aucs)


# The demo recipe of experiment=dfmoe_ffpp as a user types it (lr 3e-3, warm-up + cosine, 30 epochs, flip_crop,
# output_stride 8), the frozen gate BatchNorms in eval: measured seed 0 on the 2-core AVX-512 machine, FF++ test
# frame AUC 0.946 (FF-DF 0.996, F2F 0.970, FS 0.886, NT 0.933), validation 0.986; seeds 0-2: 0.900 +- 0.050, the
# lowest 0.847 (docs/CNN_METHODS.md, "Demo scale"); inside this test (pytest's worker threads) 0.914 / 0.983 (0.949 / 0.985 before the fix).
# Before the stand-ins kept the 8 x 8 map and the shifts: 0.738 / 0.845 (20 epochs, lr 2e-3, flip).
DEMO_RECIPE_FFPP_AUC = 0.84
DEMO_RECIPE_VAL_AUC = 0.92


@pytest.mark.slow
def test_dfmoe_ffpp_demo_recipe_learns_the_embedded_ffpp(tmp_path, synthetic_root):
    from conftest import compose

    from engine.pipeline import run
    from evaluation.results import load_results

    run(compose(["experiment=dfmoe_ffpp", "scale=demo"], tmp_path, synthetic_root))
    results = load_results(tmp_path / "results.json")
    val_auc = results["validation"]["metrics"]["frame"]["auc"]
    ffpp_auc = results["tests"]["ffpp"]["frame"]["auc"]
    print("validation", round(val_auc, 4), "ffpp", round(ffpp_auc, 4))
    assert results["config"]["trainer"]["max_epochs"] == 30
    assert results["config"]["data"]["augment"]["name"] == "flip_crop"
    assert results["config"]["detector"]["output_stride"] == 8
    assert val_auc >= DEMO_RECIPE_VAL_AUC and ffpp_auc >= DEMO_RECIPE_FFPP_AUC, (val_auc, ffpp_auc)


# --------------------------------------------------------------------------- fidelity (issue 15)


def test_augmentation_changes_fake_samples_only_by_default_and_every_sample_as_an_ablation():
    torch.manual_seed(0)
    images, batch = training_batch(8)
    for target, expected in (("fake", batch["label"].bool()), ("all", torch.ones(8, dtype=torch.bool))):
        model = tiny_dfmoe(
            num_experts=3, top_k=2, augmentation_target=target, augmentation_strategies=["perturb"], perturb_beta=10.0
        ).train()
        seen = {}

        def classifier_hook(module, inputs, _output, seen=seen):
            seen["input"] = inputs[0].detach()

        model.classifier.register_forward_hook(classifier_hook)
        torch.manual_seed(1)
        output = model(images, batch)
        changed = (seen["input"] - output.features.detach()).abs().amax(dim=1) > 1e-6
        assert torch.equal(changed & ~expected, torch.zeros_like(changed)), f"{target}: a sample outside the target changed"
        assert bool(changed[expected].any()), f"{target}: no target sample was augmented"
        assert output.aux_losses["augmentation_consistency"] > 0


def test_augmentation_target_and_part_normalization_are_checked():
    with pytest.raises(ValueError, match="augmentation_target='real'"):
        tiny_dfmoe(augmentation_target="real")
    with pytest.raises(ValueError, match="part_normalization='clip'"):
        tiny_dfmoe(part_normalization="clip")


def test_consistency_loss_is_the_per_sample_squared_distance_summed_over_dimensions_at_paper_scale(tmp_path):
    from conftest import compose

    cfg = compose(["experiment=dfmoe_ffpp"], tmp_path)
    assert cfg.detector.consistency_reduction == "sum"
    assert cfg.detector.augmentation_target == "fake"
    assert cfg.detector.part_normalization == "pretrained"
    original, augmented = torch.zeros(4, 512), torch.full((4, 512), 0.1)
    # 512 dims of 0.01 each: 5.12 per sample (Eq. 12), not 0.01 (the mean over dims, 512x weaker).
    torch.testing.assert_close(feature_consistency_loss(original, augmented), torch.tensor(5.12))


def test_paper_scale_turns_the_cudnn_autotuner_off_on_the_gpu_trainer(tmp_path):
    """Per-expert batch sizes change every step: with cuDNN's autotuner each new size is re-timed (the likely
    cause of 12 s steps on an H200, docs/BENCHMARKS.md). The GPU trainer keeps it on for the others (the
    baseline here)."""
    from conftest import compose

    assert compose(["experiment=dfmoe_ffpp"], tmp_path).trainer.benchmark is False
    assert compose(["experiment=dfmoe_ffpp", "trainer=ddp"], tmp_path).trainer.benchmark is False
    assert compose(["experiment=baseline_multidomain"], tmp_path).trainer.benchmark is True


def test_every_expert_of_every_table_row_and_every_gate_resolves_to_pretrained_weights(tmp_path):
    """Paper scale, no download: each timm name (with its default tag) has a pretrained config with a
    weight source (hub id or URL), for all 6 experts of Table 6 and the 3 gates of Table 4."""
    from conftest import compose
    from timm.models import get_pretrained_cfg

    from detectors.dfmoe import DEFAULT_EXPERT_POOL
    from sweeps.tables import TABLES

    cfg = compose(["experiment=dfmoe_ffpp"], tmp_path)
    pool = list(cfg.detector.expert_pool)
    assert pool == list(DEFAULT_EXPERT_POOL)
    largest = max(int(v) for row in TABLES["dfmoe_table6"].rows for k, v in row.match.items() if k == "detector.num_experts")
    assert largest == 6 == len(pool)
    gates = {cfg.detector.gate_backbone}
    gates |= {str(row.match["detector.gate_backbone"]) for row in TABLES["dfmoe_table4"].rows}
    for name in [*pool, *sorted(gates)]:
        config = get_pretrained_cfg(name)
        assert config is not None, f"{name}: timm has no pretrained config"
        assert config.hf_hub_id or config.url or config.file, f"{name}: its default tag {config.tag!r} has no weights"


def test_each_part_reads_the_statistics_its_weights_were_trained_with():
    """The Xception gate and the default B1 weights expect mean/std 0.5, B2-B5 ImageNet: the DFMoE input
    (ImageNet-normalised) is re-mapped per part, exactly."""
    from timm.models import get_pretrained_cfg

    from datamodules.transforms import NORMALIZATION
    from detectors.backbones.input_statistics import InputRenormalization
    from detectors.dfmoe_parts import part_renormalization

    assert get_pretrained_cfg("legacy_xception").mean == (0.5, 0.5, 0.5)
    assert get_pretrained_cfg("efficientnet_b1").mean == (0.5, 0.5, 0.5)
    assert get_pretrained_cfg("efficientnet_b2").mean == NORMALIZATION["imagenet"][0]
    pixels = torch.rand(2, 3, 8, 8)
    mean, std = (torch.tensor(v).reshape(1, 3, 1, 1) for v in NORMALIZATION["imagenet"])
    remap = InputRenormalization(NORMALIZATION["imagenet"], NORMALIZATION["half"])
    torch.testing.assert_close(remap((pixels - mean) / std), (pixels - 0.5) / 0.5)
    assert InputRenormalization(NORMALIZATION["imagenet"], NORMALIZATION["imagenet"]).identity

    class Part(nn.Module):
        pretrained_cfg = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}

    assert not part_renormalization(Part(), NORMALIZATION["imagenet"], "pretrained").identity
    assert part_renormalization(Part(), NORMALIZATION["imagenet"], "input").identity
    model = tiny_dfmoe(num_experts=2)  # tiny stand-ins declare ImageNet statistics: identity at demo scale
    assert model.gate.renormalize.identity and all(e.renormalize.identity for e in model.experts)


def test_docs_name_dfmoe_keys_that_exist_and_the_entropy_loss_cites_eq_11():
    import re
    from pathlib import Path

    from omegaconf import OmegaConf

    from losses.expert_entropy import expert_usage_entropy

    repo = Path(__file__).resolve().parent.parent
    keys = set(OmegaConf.load(repo / "conf" / "detector" / "dfmoe.yaml"))
    line = next(text for text in (repo / "docs" / "BENCHMARKS.md").read_text().splitlines() if "DFMoE's experts and gate" in text)
    named = re.findall(r"`([a-z_]+)`", line)
    assert named and set(named) <= keys, f"BENCHMARKS.md names {named}; dfmoe.yaml has no {sorted(set(named) - keys)}"
    assert "Eq. 11" in expert_usage_entropy.__doc__ and "Eq. 12" not in expert_usage_entropy.__doc__


def test_output_stride_keeps_the_paper_scale_map_at_demo_size():
    """scale=demo sets output_stride 8: the 64 px stand-ins end in the 8 x 8 map the paper's models give
    at 256 px (stride 32); null keeps the models' own stride and their weights' layout."""
    native = tiny_dfmoe(num_experts=2, top_k=1, output_stride=None)
    dilated = tiny_dfmoe(num_experts=2, top_k=1)  # the demo widths: output_stride 8
    images = torch.randn(2, 3, 64, 64)
    assert [f.shape[-1] for f in native.gate.backbone(images)] == [16, 8, 4, 2]
    assert [f.shape[-1] for f in dilated.gate.backbone(images)] == [16, 8, 8, 8]
    assert dilated.experts[0].backbone.forward_features(images).shape[-1] == 8
    assert native.experts[0].backbone.forward_features(images).shape[-1] == 2
    # dilation changes no weight: the same parameters, so a checkpoint of either loads into the other
    assert {k: v.shape for k, v in native.state_dict().items()} == {k: v.shape for k, v in dilated.state_dict().items()}
