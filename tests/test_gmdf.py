"""GM-DF: each part on its own (DNorm, expert attention, second-order features, prompts, masking, the DA
and MIM losses), the model equals CLIP at step 0, the meta-optimiser moves the right tensors, the
parameter budget and the paper readings. Its demo training: tests/test_clip_demos.py."""

from __future__ import annotations

import copy
import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_detector

from detectors.backbones.clip import build_clip
from detectors.backbones.clip_surgery import RecordingAttention, tokenize
from detectors.gmdf import GMDFDetector
from detectors.gmdf_parts import (
    PROMPT_TEMPLATES,
    DomainClassPrompts,
    DomainNorm,
    aggregate_expert_views,
    resolve_template,
    sample_patch_mask,
    second_order_contribution,
)
from detectors.meta_learning import inner_sgd_step, split_meta_batch
from losses.domain_alignment import second_order_alignment_loss
from losses.masked_image_modeling import masked_pixel_loss, masked_token_loss, patchify

AUX_WEIGHTS = {"sis": 1.0, "mim": 1.0, "da": 1.0}


def tiny_gmdf(**overrides) -> GMDFDetector:
    # the tiny ViT's blocks (conf/scaled/detector/demo/gmdf.yaml) unless a test names its own
    overrides = {**overrides, "second_order": {"layers": [0, 1, 2], **overrides.get("second_order", {})}}
    return tiny_detector(GMDFDetector, AUX_WEIGHTS, overrides, normalization="clip", mim={"target": "pixels"})


def batch_of(domains: list[int], labels: list[int] | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    count = len(domains)
    labels = labels if labels is not None else [i % 2 for i in range(count)]
    return {
        "image": torch.randn(count, 3, 64, 64, generator=generator),
        "label": torch.tensor(labels),
        "domain": torch.tensor(domains),
        "type": torch.tensor(labels),
        "video": torch.arange(count),
        "index": torch.arange(count),
    }


# -- parts ------------------------------------------------------------------------------------------
def test_domain_norm_starts_as_the_layer_norm_and_is_modulated_per_sample():
    layer_norm = torch.nn.LayerNorm(8)
    with torch.no_grad():
        layer_norm.weight.uniform_(0.5, 1.5)
        layer_norm.bias.uniform_(-0.5, 0.5)
    norm = DomainNorm(layer_norm, embedding_dim=3)
    x = torch.randn(2, 5, 8)
    embeddings = torch.randn(2, 3)
    assert torch.allclose(norm(x, embeddings), layer_norm(x), atol=1e-6)
    with torch.no_grad():
        norm.to_gamma.weight.normal_()
        norm.to_beta.weight.normal_()
    out = norm(x, embeddings)
    expected_first = F.layer_norm(x[0], (8,)) * (norm.gamma0 + norm.to_gamma(embeddings[0])) + norm.beta0 + norm.to_beta(embeddings[0])
    assert torch.allclose(out[0], expected_first, atol=1e-5)
    assert not torch.allclose(out[0], layer_norm(x)[0], atol=1e-3)
    assert torch.allclose(norm(x, None), layer_norm(x), atol=1e-6)  # no embedding: the base LayerNorm


def test_expert_view_attention_matches_eq_4_5_and_its_limits():
    assert torch.equal(aggregate_expert_views(torch.zeros(4, 3, 8))[0], torch.zeros(4, 8))
    same = torch.randn(4, 1, 8).expand(4, 3, 8)
    assert torch.allclose(aggregate_expert_views(same)[0], same[:, 0], atol=1e-6)
    views = torch.randn(5, 3, 8)
    attention = torch.softmax(views @ views.transpose(1, 2) / math.sqrt(8), dim=-1)
    aggregated, shares = aggregate_expert_views(views)
    assert torch.allclose(aggregated, (attention @ views).mean(dim=1), atol=1e-6)
    assert torch.allclose(aggregate_expert_views(views[:, [2, 0, 1]])[0], aggregated, atol=1e-6)
    # the shares are the expert weights of the aggregated view, a distribution over the N experts per token
    assert shares.shape == (5, 3) and torch.allclose(shares.sum(dim=1), torch.ones(5), atol=1e-6)
    assert torch.allclose(torch.einsum("tn,tnd->td", shares, views), aggregated, atol=1e-6)


def test_second_order_contribution_decomposes_the_class_token_attention_output():
    """The contribution of the *whole* residual stream plus the bias terms (LN bias through V, the
    value and output biases) must give back the attention output at the class token exactly."""
    torch.manual_seed(0)
    dim, heads = 16, 4
    attn = torch.nn.MultiheadAttention(dim, heads, batch_first=True)
    recorder = RecordingAttention(attn)
    ln = torch.nn.LayerNorm(dim)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.uniform_(-0.3, 0.3)
    residual = torch.randn(2, 7, dim) * 3 + 1
    h = ln(residual)
    out, _ = recorder(h, h, h)
    value_weight = attn.in_proj_weight[2 * dim :]
    value_bias = attn.in_proj_bias[2 * dim :]
    contribution = second_order_contribution(
        residual, residual, ln.weight, ln.eps, recorder.last_attention[:, :, 0], value_weight, recorder.head_out_proj()
    )
    constant = attn.out_proj(ln.bias @ value_weight.T + value_bias)
    assert torch.allclose(contribution + constant, out[:, 0], atol=1e-5)
    # Linear in the summand: two parts of the stream add up to the whole.
    part = torch.randn_like(residual)
    args = (ln.weight, ln.eps, recorder.last_attention[:, :, 0], value_weight, recorder.head_out_proj())
    split = second_order_contribution(part, residual, *args) + second_order_contribution(residual - part, residual, *args)
    assert torch.allclose(split, contribution, atol=1e-5)


@pytest.mark.parametrize("template", sorted(PROMPT_TEMPLATES))
def test_every_table_6_template_encodes_all_domain_class_prompts(template):
    torch.manual_seed(0)
    clip = build_clip("ViT-B-16", size="tiny", image_size=64)
    prompts = DomainClassPrompts(clip, num_domains=3, template=template, domain_tokens=2)
    text = prompts(clip).detach()
    assert text.shape == (4, 2, clip.text_projection.shape[1])
    # Every (domain, class) pair gets its own embedding (wildcard row 0 included).
    flat = F.normalize(text.reshape(8, -1), dim=-1)
    off_diagonal = (flat @ flat.T) - torch.eye(8)
    assert float(off_diagonal.max()) < 1 - 1e-6


def test_prompt_placeholders_land_where_the_words_would_be():
    """With the learnable vectors set to the embedding of the word 'x', the prompt path must equal
    CLIP's own text encoder on the same sentence."""
    torch.manual_seed(0)
    clip = build_clip("ViT-B-16", size="tiny", image_size=64)
    prompts = DomainClassPrompts(clip, num_domains=2, template="p5", domain_tokens=1)
    x_embedding = clip.token_embedding(tokenize(["x"])[0, 1])
    with torch.no_grad():
        prompts.domain_tokens.copy_(x_embedding.expand_as(prompts.domain_tokens))
        prompts.class_tokens.copy_(x_embedding.expand_as(prompts.class_tokens))
    expected = clip.encode_text(tokenize(["This is how a x x face looks like"]))[0]
    assert torch.allclose(prompts(clip)[1, 0], expected, atol=1e-5)


def test_templates_are_checked():
    assert resolve_template("p1") == "A photo of {domain} {class} face"
    assert "{caption}" not in resolve_template("p3", caption="A face.")
    with pytest.raises(ValueError, match="exactly one"):
        resolve_template("A photo of {class} face")
    with pytest.raises(ValueError, match="caption"):
        resolve_template("p3", caption="")


@pytest.mark.parametrize("strategy", ["random", "block"])
def test_patch_masks_hide_exactly_the_ratio(strategy):
    generator = torch.Generator().manual_seed(0)
    mask = sample_patch_mask(16, (14, 14), 0.4, strategy, generator=generator)
    assert mask.shape == (16, 196) and mask.dtype == torch.bool
    assert mask.sum(dim=1).tolist() == [round(0.4 * 196)] * 16
    assert len({tuple(m.tolist()) for m in mask}) == 16  # different per sample
    assert sample_patch_mask(2, (8, 8), 1.0, strategy).all()
    with pytest.raises(ValueError, match="strategy"):
        sample_patch_mask(2, (8, 8), 0.2, "checkerboard")


def test_block_masks_are_more_clustered_than_random_ones():
    def neighbours(mask: torch.Tensor) -> float:
        grid = mask.reshape(-1, 14, 14).float()
        return float((grid[:, 1:] * grid[:, :-1]).sum() + (grid[:, :, 1:] * grid[:, :, :-1]).sum())

    generator = torch.Generator().manual_seed(1)
    block = sample_patch_mask(32, (14, 14), 0.3, "block", generator=generator)
    random = sample_patch_mask(32, (14, 14), 0.3, "random", generator=generator)
    assert neighbours(block) > 2 * neighbours(random)


# -- losses -----------------------------------------------------------------------------------------
def test_domain_alignment_is_zero_for_one_distribution_and_grows_with_a_shift():
    torch.manual_seed(0)
    features = torch.randn(64, 8)
    domains = torch.arange(64) % 2
    aligned = second_order_alignment_loss(torch.cat([features, features]), torch.cat([domains * 0, domains * 0 + 1]))
    assert float(aligned) == pytest.approx(0.0, abs=1e-10)
    shifted = features + domains[:, None] * 2.0
    scaled = features * (1 + domains[:, None] * 2.0)
    base = float(second_order_alignment_loss(features, domains))
    assert float(second_order_alignment_loss(shifted, domains)) > base + 1.0  # mean gap
    assert float(second_order_alignment_loss(scaled, domains, mean_weight=0.0)) > base + 1.0  # covariance gap
    single = second_order_alignment_loss(features.requires_grad_(), torch.zeros(64, dtype=torch.long))
    assert float(single.detach()) == 0.0
    single.backward()  # connected to the graph, zero gradient
    assert float(features.grad.abs().sum()) == 0.0


def test_domain_alignment_gradient_pulls_domain_means_together():
    features = torch.cat([torch.randn(16, 4), torch.randn(16, 4) + 3]).requires_grad_()
    domains = torch.cat([torch.zeros(16), torch.ones(16)]).long()
    second_order_alignment_loss(features, domains).backward()
    stepped = features.detach() - 0.1 * features.grad
    gap_before = (features[:16].mean(0) - features[16:].mean(0)).norm().detach()
    gap_after = (stepped[:16].mean(0) - stepped[16:].mean(0)).norm()
    assert float(gap_after) < float(gap_before)


def test_masked_losses_only_count_masked_positions():
    images = torch.randn(2, 3, 16, 16)
    patches = patchify(images, 8)
    assert patches.shape == (2, 4, 192)
    assert torch.equal(patches[0, 1], images[0, :, :8, 8:].permute(1, 2, 0).reshape(-1))
    mask = torch.tensor([[True, False, False, False], [False, False, True, False]])
    predictions = torch.randn(2, 4, 192)
    predictions[mask] = patches[mask]
    assert float(masked_pixel_loss(predictions, images, mask, 8, normalize_target=False)) == pytest.approx(0.0, abs=1e-10)
    logits = torch.full((2, 4, 5), -10.0)
    targets = torch.tensor([[1, 2, 3, 4], [0, 1, 2, 3]])
    logits[0, 0, 1] = 10.0  # right at the first sample's masked position
    logits[1, 2, 2] = 10.0
    assert float(masked_token_loss(logits, targets, mask)) < 1e-6
    with pytest.raises(ValueError, match="no position is masked"):
        masked_token_loss(logits, targets, torch.zeros(2, 4, dtype=torch.bool))


# -- the model at step 0 ----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["domain", "aggregate", "shared"])
def test_gmdf_equals_clip_at_initialisation(mode):
    torch.manual_seed(0)
    reference = build_clip("ViT-B-16", size="tiny", image_size=64)
    torch.manual_seed(0)
    detector = tiny_gmdf()
    images = torch.randn(4, 3, 64, 64)
    expected = reference.encode_image(images)
    domains = torch.tensor([0, 1, 2, 1]) if mode == "domain" else None
    got = detector.network(images, mode, domains).embedding
    assert torch.allclose(got, expected, atol=1e-5), float((got - expected).abs().max())
    # ... but every GM-DF part is live: nudging it changes the embedding.
    with torch.no_grad():
        detector.network.second_order_weights.fill_(0.5)
    assert not torch.allclose(detector.network(images, mode, domains).embedding, expected, atol=1e-3)


def test_domain_experts_and_dnorm_make_domains_differ_once_trained():
    torch.manual_seed(0)
    detector = tiny_gmdf()
    with torch.no_grad():
        for name, parameter in detector.domain_parameters().items():
            if "experts.w_out" in name:
                parameter.normal_(std=0.2)
    images = torch.randn(2, 3, 64, 64)
    as_domain_0 = detector.network(images, "domain", torch.tensor([0, 0])).embedding
    as_domain_1 = detector.network(images, "domain", torch.tensor([1, 1])).embedding
    aggregated = detector.network(images, "aggregate").embedding
    assert not torch.allclose(as_domain_0, as_domain_1, atol=1e-4)
    assert not torch.allclose(aggregated, as_domain_0, atol=1e-4)


def test_evaluation_reports_the_expert_shares_of_the_aggregated_view_as_routing():
    """At evaluation (an unknown domain) every block with experts reports how much of the aggregated view
    each domain expert gave, per token: the expert-usage figures' input (callbacks/plots.py)."""
    from callbacks.plots import routing_shares

    torch.manual_seed(0)
    detector = tiny_gmdf().eval()
    with torch.no_grad():
        for name, parameter in detector.domain_parameters().items():
            if "experts.w_out" in name:
                parameter.normal_(std=0.2)
        output = detector(torch.randn(2, 3, 64, 64))
    expert_blocks = [i for i, block in enumerate(detector.network.blocks) if getattr(block, "experts", None) is not None]
    assert expert_blocks and sorted(output.routing) == sorted(f"visual_{i}" for i in expert_blocks)
    for info in output.routing.values():
        assert info.num_experts == 3 and info.weights.shape == info.indices.shape == (2 * 65, 3)  # 64 patches + the class token
        shares = routing_shares(info.indices, info.weights, info.num_experts, batch_size=2)
        assert torch.allclose(shares.sum(dim=1), torch.ones(2, dtype=torch.float64))
        assert not torch.allclose(shares, torch.full_like(shares, 1 / 3), atol=1e-4)  # trained experts differ
    # read once: a training forward in domain mode reports none
    assert all(block.last_expert_shares is None for block in detector.network.blocks if hasattr(block, "last_expert_shares"))


def test_temperatures_and_sis_loss_follow_eq_10_11():
    torch.manual_seed(0)
    detector = tiny_gmdf(prompt={"tau_base": 0.05, "phi": 0.1})
    prompts = detector.network.prompts
    norms = prompts.domain_tokens.detach().flatten(1).norm(dim=1)
    assert torch.allclose(prompts.temperatures(0.05, 0.1), 0.05 + 0.1 * norms)
    out = detector.network(torch.randn(2, 3, 64, 64), "aggregate")
    # An image embedding equal to the (domain 2, fake) text embedding is classified as that pair.
    out.embedding = out.text[3, 1].detach().expand(2, -1).clone()
    right = detector.sis_loss(out, torch.tensor([1, 1]), torch.tensor([2, 2]))
    wrong = detector.sis_loss(out, torch.tensor([0, 0]), torch.tensor([0, 0]))
    assert right.item() < wrong.item()


def test_sis_wildcard_roles():
    torch.manual_seed(0)
    out = tiny_gmdf().network(torch.randn(3, 3, 64, 64), "aggregate")
    labels, domains = torch.tensor([0, 1, 1]), torch.tensor([0, 2, 1])
    logits = F.normalize(out.embedding, dim=-1) @ F.normalize(out.text.reshape(8, -1), dim=-1).T / out.temperatures[domains + 1][:, None]
    targets = (domains + 1) * 2 + labels
    losses = {role: tiny_gmdf(prompt={"sis_wildcard": role}).sis_loss(out, labels, domains).item() for role in ("negative", "positive", "exclude")}
    assert losses["negative"] == pytest.approx(F.cross_entropy(logits, targets).item(), rel=1e-5)
    assert losses["exclude"] == pytest.approx(F.cross_entropy(logits[:, 2:], targets - 2).item(), rel=1e-5)
    log_probs = logits.log_softmax(dim=1)
    rows = torch.arange(3)
    expected = -(0.5 * log_probs[rows, targets] + 0.5 * log_probs[rows, labels]).mean()
    assert losses["positive"] == pytest.approx(expected.item(), rel=1e-5)


# -- meta-learning ----------------------------------------------------------------------------------
def test_meta_split_holds_out_whole_domains():
    domains = torch.tensor([0, 1, 2, 0, 1, 2, 2])
    train, test = split_meta_batch(domains, 1, generator=torch.Generator().manual_seed(0))
    assert sorted(train.tolist() + test.tolist()) == list(range(7))
    assert not set(domains[train].tolist()) & set(domains[test].tolist())
    assert len(set(domains[test].tolist())) == 1
    train, test = split_meta_batch(torch.zeros(6, dtype=torch.long), 1)
    assert len(train) == 3 and len(test) == 3 and not set(train.tolist()) & set(test.tolist())


def test_inner_step_is_sgd_and_second_order_keeps_the_graph():
    weight = torch.tensor([1.0, 2.0], requires_grad=True)
    outer = torch.tensor(3.0, requires_grad=True)
    loss = outer * (weight**2).sum()
    updated = inner_sgd_step(loss, {"w": weight}, lr=0.1)
    assert torch.allclose(updated["w"], weight.detach() - 0.1 * 2 * 3.0 * weight.detach())
    assert not updated["w"].requires_grad
    second = inner_sgd_step(outer * (weight**2).sum(), {"w": weight}, lr=0.1, second_order=True)
    (d_outer,) = torch.autograd.grad(second["w"].sum(), outer)
    assert float(d_outer) == pytest.approx(-0.1 * 2 * 3.0)  # d/d outer of (w - 0.1 * 2 * outer * w)


def _snapshot(detector: GMDFDetector) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in detector.network.named_parameters()}


def _changed(before: dict[str, torch.Tensor], detector: GMDFDetector) -> set[str]:
    return {name for name, p in detector.network.named_parameters() if not torch.equal(before[name], p.detach())}


def test_inner_loop_changes_only_domain_parameters_and_outer_loop_only_the_rest():
    torch.manual_seed(0)
    detector = tiny_gmdf(meta={"inner_lr": 0.5})
    batch = batch_of([0, 0, 1, 1, 2, 2, 2, 2])
    domain_names = set(detector.domain_parameters())
    outer_names = set(detector.outer_parameters())
    assert domain_names and outer_names and not domain_names & outer_names
    assert {n for n, p in detector.network.named_parameters() if p.requires_grad} == domain_names | outer_names

    before = _snapshot(detector)
    fast, losses, inner_output = detector.meta_inner_update(batch["image"][:4], batch["label"][:4], batch["domain"][:4])
    assert set(fast) == domain_names and set(losses) == {"cls", "sis"}
    assert _changed(before, detector) == set()  # the inner update is functional until committed
    moved = {name for name in fast if not torch.equal(fast[name], before[name])}
    # At step 0 the experts' input layers (their output layer is 0) and the domain embeddings (DNorm's
    # projections are 0) get no gradient; the experts' output layers and the prompt vectors move.
    frozen_at_start = {n for n in domain_names if n.endswith(("experts.w_in", "experts.b_in")) or n == "domain_embeddings"}
    assert moved == domain_names - frozen_at_start
    # Meta-train domains 0 and 1 moved their own experts' output layers; domain 2's did not move.
    w_out = [n for n in fast if n.endswith("resblocks.3.experts.w_out")][0]
    assert not torch.equal(fast[w_out][0], before[w_out][0]) and torch.equal(fast[w_out][2], before[w_out][2])

    total, components = detector.meta_outer_losses(
        batch["image"][4:], batch["label"][4:], batch["domain"][4:], fast, inner_output, batch["domain"][:4]
    )
    assert set(components) == {"task", "sis", "mim", "da"}
    optimizer = torch.optim.SGD(detector.parameter_groups(), lr=0.1)
    total.backward()
    optimizer.step()
    changed_by_outer = _changed(before, detector)
    assert changed_by_outer and changed_by_outer <= outer_names
    assert "second_order_weights" in changed_by_outer and "clip.visual.conv1.weight" in changed_by_outer

    after_outer = _snapshot(detector)
    detector.commit_domain_parameters(fast)
    assert _changed(after_outer, detector) == moved
    assert all(p.grad is None for p in detector.domain_parameters().values())


def test_second_order_meta_gradient_flows_through_the_inner_update():
    def outer_gradients(second_order: bool) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor | None]]:
        torch.manual_seed(0)
        detector = tiny_gmdf(meta={"inner_lr": 0.5, "second_order": second_order}, components={"mim": False, "domain_alignment": False, "meta_moe": True})
        with torch.no_grad():  # experts already away from 0, so their gradients depend on theta_O
            for name, parameter in detector.domain_parameters().items():
                if "experts.w_out" in name:
                    parameter.normal_(std=0.05)
        batch = batch_of([0, 0, 1, 1, 2, 2], seed=3)
        fast, _, _ = detector.meta_inner_update(batch["image"][:4], batch["label"][:4], batch["domain"][:4])
        total, _ = detector.meta_outer_losses(batch["image"][4:], batch["label"][4:], batch["domain"][4:], fast)
        total.backward()
        outer = {n: p.grad.clone() for n, p in detector.outer_parameters().items() if p.grad is not None}
        domain = {n: p.grad for n, p in detector.domain_parameters().items()}
        return outer, domain

    first_outer, first_domain = outer_gradients(False)
    second_outer, second_domain = outer_gradients(True)
    assert all(g is None for g in first_domain.values())  # first-order: theta_E' is a constant
    assert any(g is not None and float(g.abs().sum()) > 0 for g in second_domain.values())
    name = "clip.visual.conv1.weight"
    assert not torch.allclose(first_outer[name], second_outer[name], rtol=1e-4, atol=1e-9)


def test_mldg_option_adds_the_meta_train_losses_to_the_outer_loss():
    torch.manual_seed(0)
    detector = tiny_gmdf(meta={"meta_train_weight": 0.5}, components={"mim": False, "domain_alignment": False, "meta_moe": True},
                         aux_loss_weights={**AUX_WEIGHTS, "sis": 0.25})
    batch = batch_of([0, 0, 1, 1, 2, 2])
    fast, losses, inner_output = detector.meta_inner_update(batch["image"][:4], batch["label"][:4], batch["domain"][:4])
    total, components = detector.meta_outer_losses(
        batch["image"][4:], batch["label"][4:], batch["domain"][4:], fast, inner_output, batch["domain"][:4], losses
    )
    # the meta-train term weighs its losses as the outer loss does: cls 1, sis aux_loss_weights.sis
    assert components["meta_train"].item() == pytest.approx((losses["cls"] + 0.25 * losses["sis"]).item(), rel=1e-6)
    expected = components["task"] + 0.25 * components["sis"] + 0.5 * components["meta_train"]
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)


def test_fake_type_domains_and_domain_count_checks():
    detector = tiny_gmdf(num_domains=3, domains_from="fake_type")
    with pytest.raises(RuntimeError, match="configure_type_domains"):
        detector.training_domains(batch_of([0, 0]))
    with pytest.raises(ValueError, match="num_domains=2"):
        detector.configure_type_domains(["Deepfakes", "FaceSwap", "real"], ["Deepfakes", "FaceSwap"])
    detector.configure_type_domains(["Face2Face", "FaceSwap", "NeuralTextures", "real"], ["Face2Face", "FaceSwap", "NeuralTextures"])
    batch = {"type": torch.tensor([0, 1, 2, 3, 3, 3]), "video": torch.tensor([0, 0, 0, 4, 5, 6]), "domain": torch.zeros(6, dtype=torch.long)}
    assert detector.training_domains(batch).tolist() == [0, 1, 2, 1, 2, 0]
    protocol_detector = tiny_gmdf(num_domains=2)
    with pytest.raises(ValueError, match="outside"):
        protocol_detector.training_domains(batch_of([0, 2]))


def test_config_errors_name_the_value():
    with pytest.raises(ValueError, match="unknown key"):
        tiny_gmdf(meta={"inner_learning_rate": 0.1})
    with pytest.raises(ValueError, match="classifier='svm'"):
        tiny_gmdf(classifier="svm")
    with pytest.raises(ValueError, match=r"second_order.layers: \[3\]"):
        tiny_gmdf(second_order={"layers": [2, 3]})  # block 3 is the tiny ViT's last: nothing after it
    with pytest.raises(ValueError, match="propagation='all'"):
        tiny_gmdf(second_order={"propagation": "all"})
    with pytest.raises(ValueError, match="dnorm_placement='middle'"):
        tiny_gmdf(experts={"dnorm_placement": "middle"})


def test_ablations_switch_components_off():
    detector = tiny_gmdf(components={"domain_alignment": False, "mim": False, "meta_moe": False})
    assert detector.automatic_optimization and not detector.domain_parameters().keys() - {"prompts.domain_tokens", "prompts.class_tokens"}
    output = detector(batch_of([0, 1, 2, 0])["image"], batch_of([0, 1, 2, 0]))
    assert set(output.aux_losses) == {"sis"}
    frozen = tiny_gmdf(train_image_encoder=False)
    trainable_visual = {n for n, p in frozen.network.clip.visual.named_parameters() if p.requires_grad}
    assert trainable_visual and all(".experts." in n or ".norm_2.to_" in n for n in trainable_visual)
    assert frozen.network.second_order_weights.requires_grad and frozen.network.mim_head.weight.requires_grad
    linear = tiny_gmdf(classifier="linear", second_order={"enabled": False})
    assert linear(torch.randn(2, 3, 64, 64)).logits.shape == (2,)
    assert linear.network.second_order_layers == []


# -- parameter budget -------------------------------------------------------------------------------
def test_added_parameters_at_the_paper_configuration_are_under_one_percent():
    """ViT-B/16 (random weights: the count does not depend on them), three training domains,
    every part on. The paper claims fewer than 1 % extra parameters over CLIP."""
    detector = GMDFDetector(size="paper", pretrained=None, num_domains=3, optimizer=partial(torch.optim.Adam, lr=3e-6),
                            aux_loss_weights=AUX_WEIGHTS, mim={"target": "dvae", "tokenizer": {"vocab_size": 512}})
    report = detector.network.parameter_report()
    print({k: round(v, 4) for k, v in report.items()})
    assert report["clip"] == pytest.approx(149.6e6, rel=1e-3)
    assert report["inference_added_percent"] < 1.0
    assert report["added_percent"] < 1.0  # even with the training-only MIM head and mask token


# -- training under Lightning -----------------------------------------------------------------------
def test_meta_training_step_runs_under_lightning_and_moves_both_groups(tmp_path):
    import lightning as L
    from torch.utils.data import DataLoader

    torch.manual_seed(0)
    detector = tiny_gmdf(meta={"inner_lr": 0.5})
    samples = [{k: v[i] for k, v in batch_of([0, 1, 2] * 4, seed=5).items()} for i in range(12)]
    loader = DataLoader(samples, batch_size=6, shuffle=False)
    before = _snapshot(detector)
    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path))
    trainer.fit(detector, train_dataloaders=loader)
    changed = _changed(before, detector)
    assert changed & set(detector.domain_parameters()) and changed & set(detector.outer_parameters())
    assert {"train/loss", "train/loss_task", "train/loss_inner_cls", "train/loss_mim"} <= set(trainer.logged_metrics)
    assert math.isfinite(float(trainer.logged_metrics["train/loss"]))


def test_dvae_mim_needs_a_tokenizer_before_training():
    detector = tiny_gmdf(mim={"target": "dvae", "tokenizer": {"vocab_size": 16, "hidden_channels": 8, "codebook_dim": 8}})
    batch = batch_of([0, 1, 2, 0])
    with pytest.raises(RuntimeError, match="tokenizer"):
        detector(batch["image"], batch)
    from detectors.dvae import DiscreteVAE

    detector.set_tokenizer(DiscreteVAE(8, 16, 8, 8))
    assert "mim" in detector(batch["image"], batch).aux_losses
    clone = copy.deepcopy(detector)
    assert bool(clone.tokenizer_ready)


# -- end to end on the synthetic domains ------------------------------------------------------------
def test_gmdf_multidomain_runs_end_to_end_and_caches_its_tokenizer(tmp_path, synthetic_root):
    """The README job at a tiny budget: the tiny CLIP is pretrained on the embedded data and loaded, the
    dVAE is trained on the training frames, both are cached under paths.cache_dir, training is the
    meta-optimiser, every test set is scored, M_EER is logged. The tiny ViT at patch 8 (a quarter of the
    demo's patch-4 tokens: 28 s -> 8 s here) and no figures; the patch reaching the detector and the
    pretraining is tests/test_synthetic_pretraining.py's, the demo at patch 4 learning tests/test_clip_demos.py's (slow)."""
    import pandas as pd
    from conftest import NO_FIGURES, compose

    from engine.pipeline import run
    from evaluation.results import load_results

    overrides = [
        "experiment=gmdf_multidomain", "scale=demo", "trainer.max_epochs=1", "+trainer.limit_train_batches=2", "trainer.log_every_n_steps=1",
        f"paths.cache_dir={tmp_path / 'cache'}", "detector.mim.tokenizer.steps=5", "detector.mim.tokenizer.max_images=64",
        "synthetic_pretraining.epochs=1", "synthetic_pretraining.domains=[jfsfdb]", "demo_clip_patch_size=8", *NO_FIGURES,
    ]
    run(compose(overrides, tmp_path / "run", synthetic_root))
    results = load_results(tmp_path / "run" / "results.json")
    assert set(results["tests"]) == {"ffpp", "wilddeepfake", "dfdc"}
    assert results["extra"]["complete_evaluation"] is True
    tokenizers = list((tmp_path / "cache" / "dvae").glob("dvae_*.pt"))
    assert len(tokenizers) == 1
    clips = list((tmp_path / "cache" / "synthetic_clip").glob("clip_*.pt"))
    assert len(clips) == 1 and results["config"]["detector"]["pretrained"] == str(clips[0])
    metrics = pd.read_csv(tmp_path / "run" / "csv" / "metrics.csv")
    assert {"train/loss_task", "train/loss_sis", "train/loss_mim", "train/loss_da", "train/loss_inner_cls", "test/m_eer"} <= set(metrics.columns)
    checkpoint = torch.load(results["validation"]["checkpoint"], map_location="cpu", weights_only=True)
    assert bool(checkpoint["state_dict"]["tokenizer_ready"])  # a restored model keeps its MIM targets


# GM-DF's demo (the README's main job) against the CLIP fine-tune from the same start, and its inner-loop
# prompt training, are held in tests/test_clip_demos.py (slow).


# -- paper fidelity (issue 19) ----------------------------------------------------------------------
def _fused_by_hand(detector, images, layer, targets, alpha):
    """v(x) of Eq. 8 for one layer l: Proj(LN_post(z_cls + alpha Norm(Delta_so^l))), Delta_so^l (Eq. 7) summed
    over ``targets`` from the blocks' recordings of one forward."""
    network = detector.network
    blocks = network.blocks
    captured = {}

    def keep(index):
        def hook(module, args, output):
            attention = module.attn.last_attention if isinstance(module.attn, RecordingAttention) else None
            captured[index] = (module.last_input, module.last_ffn_output, attention, output)
        return hook

    handles = [blocks[i].register_forward_hook(keep(i)) for i in range(len(blocks))]
    network(images, "shared", with_text=False)
    for handle in handles:
        handle.remove()
    delta = 0
    for target in targets:
        later = blocks[target]
        delta = delta + second_order_contribution(
            captured[layer][1], captured[target][0], later.ln_1.weight, later.ln_1.eps, captured[target][2][:, :, 0],
            later.value_weight(), later.attn.head_out_proj(),
        )
    visual = network.clip.visual
    z_cls = captured[len(blocks) - 1][3][:, 0]
    return visual.ln_post(z_cls + alpha * F.layer_norm(delta, (network.width,))) @ visual.proj


@pytest.mark.parametrize(("propagation", "targets"), [("subsequent", [1, 2, 3]), ("next", [1])])
def test_second_order_features_propagate_through_the_subsequent_attention_blocks(propagation, targets):
    """Eq. 7-8 for layer l = 0 of the 4-block tiny ViT: through every later block (the paper's reading) or l + 1."""
    torch.manual_seed(0)
    detector = tiny_gmdf(second_order={"layers": [0], "propagation": propagation}, components={"mim": False, "domain_alignment": False, "meta_moe": False})
    assert detector.network.second_order_targets == {0: targets}
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        detector.network.second_order_weights.fill_(0.7)
        fused = detector.network(images, "shared", with_text=False).embedding
        expected = _fused_by_hand(detector, images, 0, targets, 0.7)
        only_next = _fused_by_hand(detector, images, 0, [1], 0.7)
    assert torch.allclose(fused, expected, atol=1e-5)
    assert propagation == "next" or not torch.allclose(fused, only_next, atol=1e-4)


def test_second_order_default_layers_are_0_based_blocks_8_to_10_through_all_later_blocks():
    from conftest import CONF
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(CONF / "detector" / "gmdf.yaml").second_order
    assert list(cfg.layers) == [8, 9, 10] and cfg.propagation == "subsequent"
    assert list(OmegaConf.load(CONF / "scaled" / "detector" / "demo" / "gmdf.yaml").detector.second_order.layers) == [0, 1, 2]
    torch.manual_seed(0)
    clip = build_clip("ViT-B-16", size="paper", image_size=64)  # random ViT-B/16 weights: only the wiring is checked
    from detectors.gmdf import ExpertSettings, GMDFNetwork, PromptSettings

    network = GMDFNetwork(clip, 0, 3, ExpertSettings(), [8, 9, 10], PromptSettings())
    assert network.second_order_targets == {8: [9, 10, 11], 9: [10, 11], 10: [11]}


def test_dnorm_post_placement_normalises_the_ffn_output_per_domain():
    torch.manual_seed(0)
    detector = tiny_gmdf(experts={"dnorm_placement": "post"}, components={"mim": False, "domain_alignment": False, "meta_moe": True})
    block = detector.network.blocks[0]
    assert block.dnorm_out is not None and isinstance(block.norm_2, torch.nn.LayerNorm)
    x = torch.randn(2, 5, block.dnorm_out.dim)
    context = detector.network.context("domain", torch.tensor([0, 1]))
    with torch.no_grad():
        block.dnorm_out.to_gamma.weight.normal_()
        out = block(x, context)
        first = block.ln_1(x)
        x_att = x + block.attn(first, first, first, need_weights=False)[0]
        h = block.norm_2(x_att)
        ffn = block.mlp(h) + block.expert_delta(h, context)
        expected = x_att + block.dnorm_out(ffn, context.embedding)
    assert torch.allclose(out, expected, atol=1e-6)
    assert "added_domain_norm" in detector.network.parameter_report()
    frozen = tiny_gmdf(experts={"dnorm_placement": "post"}, train_image_encoder=False)
    assert frozen.network.blocks[0].dnorm_out.gamma0.requires_grad


def test_mim_combined_token_and_pixel_target():
    torch.manual_seed(0)
    from detectors.dvae import DiscreteVAE

    detector = tiny_gmdf(mim={"target": "dvae+pixels", "pixel_weight": 0.5, "tokenizer": {"vocab_size": 16, "hidden_channels": 8, "codebook_dim": 8}})
    vocab, patch = 16, detector.network.patch_size
    assert detector.network.mim_head.out_features == vocab + patch * patch * 3
    detector.set_tokenizer(DiscreteVAE(patch, vocab, 8, 8))
    images = torch.randn(2, 3, 64, 64)
    torch.manual_seed(1)
    combined = detector.mim_loss(images, "shared")
    torch.manual_seed(1)
    from detectors.gmdf_parts import sample_patch_mask as draw

    mask = draw(2, detector.network.grid_size, detector.mim_settings.mask_ratio, detector.mim_settings.strategy)
    predictions = detector._run(images, "shared", None, None, patch_mask=mask, with_text=False).mim_predictions
    tokens = masked_token_loss(predictions[..., :vocab], detector.tokenizer.tokenize(images), mask)
    pixels = masked_pixel_loss(predictions[..., vocab:], images, mask, patch, True)
    assert combined.item() == pytest.approx((tokens + 0.5 * pixels).item(), rel=1e-5)


def test_sis_objective_and_inference_classifier_agree_by_default(caplog, tmp_path):
    """The default trains the wildcard pair as a positive and classifies with the wildcard prompts; the
    printed Eq. 11 (wildcard only a negative) stays as an ablation, consistent with inference over the
    training domains' prompts, and warned about beside wildcard inference."""
    from conftest import CONF
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(CONF / "detector" / "gmdf.yaml")
    assert cfg.prompt.sis_wildcard == "positive" and cfg.inference_prompts == "wildcard"
    torch.manual_seed(0)
    detector = tiny_gmdf(prompt={"sis_wildcard": "positive"})
    out = detector.network(torch.randn(3, 3, 64, 64), "aggregate")
    labels, domains = torch.tensor([0, 1, 1]), torch.tensor([0, 2, 1])
    # L_sis's gradient raises the wildcard logit of the true class, which is what inference reads
    text = out.text.detach().requires_grad_(True)
    loss = detector.sis_loss(type(out)(out.embedding.detach(), None, text, out.temperatures.detach()), labels, domains)
    loss.backward()
    wildcard_true = text.grad[0][labels]  # gradient on the wildcard prompt of each sample's class
    assert (torch.einsum("be,be->b", -wildcard_true, F.normalize(out.embedding.detach(), dim=-1)) > 0).all()
    with caplog.at_level("WARNING"):
        tiny_gmdf(prompt={"sis_wildcard": "negative"})
    assert "training and inference disagree" in caplog.text
    domains_only = tiny_gmdf(prompt={"sis_wildcard": "negative"}, inference_prompts="domains")
    embedding = torch.randn(3, domains_only.network.clip.visual.output_dim)
    text, temperatures = domains_only.network.text_embeddings()
    logits = domains_only.network.classify(embedding, text, temperatures)
    from losses.image_text_contrastive import image_text_logits

    expected = image_text_logits(embedding, text[1:].reshape(-1, text.shape[-1]), (1.0 / temperatures[1:]).repeat_interleave(2))
    assert torch.allclose(logits, expected.reshape(3, -1, 2).logsumexp(dim=1), atol=1e-5)


def test_table4_gmdf_row_has_its_sweep_over_the_four_protocols():
    from conftest import CONF
    from omegaconf import OmegaConf

    from sweeps.tables import TABLES

    row = next(r for r in TABLES["gmdf_table4"].rows if r.key == "gmdf")
    assert row.sweep == "gmdf_multidomain"
    params = OmegaConf.load(CONF / "sweep" / "gmdf_multidomain.yaml").hydra.sweeper.params
    assert params.experiment == "gmdf_multidomain"
    assert sorted(params.protocol.split(",")) == sorted(f"multidomain_leave_{d}" for d in ("wdf", "diff", "celebdf", "ffpp"))
