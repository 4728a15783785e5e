"""SUEDE: equals CLIP at step 0 in every expert placement, routes each token to exactly k experts,
reports its router losses, trains the right parameters; the shared CLIP text head and layer groups."""

from __future__ import annotations

import functools

import pytest
import torch
from conftest import CLIP_TEST_IMAGE_SIZE, compose, tiny_detector, trained_metrics

from detectors.backbones.clip import build_clip
from detectors.backbones.clip_surgery import select_layers, text_blocks, tokenize, vision_blocks
from detectors.clip_text_head import ClipTextHead
from detectors.suede import PLACEMENTS, SuedeDetector
from evaluation.results import load_results

IMAGE_SIZE = CLIP_TEST_IMAGE_SIZE  # the shared clip_file (conftest.py)
WEIGHTS = {"router_z": 1e-3, "load_balance": 1e-2}


def _suede(path: str, **kwargs) -> SuedeDetector:
    return tiny_detector(
        SuedeDetector, WEIGHTS, kwargs, input_size=IMAGE_SIZE, pretrained=path, normalization="clip",
        optimizer=functools.partial(torch.optim.AdamW, lr=1e-5),
    )


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_equals_clip_at_initialisation(placement, clip_file):
    clip, path = clip_file
    torch.manual_seed(1)
    model = _suede(path, placement=placement, class_prompts={"real": ["real face."], "fake": ["fake face.", "spoof face."]}).eval()
    images = torch.randn(3, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        out = model(images)
        image_features = clip.encode_image(images)
        text_features = clip.encode_text(tokenize(["a photo of a real face.", "a photo of a fake face.", "a photo of a spoof face."]))
        clip_logits = clip.logit_scale.exp() * torch.nn.functional.normalize(image_features, dim=-1) @ torch.nn.functional.normalize(text_features, dim=-1).T
    torch.testing.assert_close(out.features, image_features, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.text_head.text_features(), text_features, rtol=1e-5, atol=1e-5)
    expected = torch.stack([clip_logits[:, 0], clip_logits[:, 1:].logsumexp(dim=1)], dim=1)
    torch.testing.assert_close(out.logits, expected, rtol=1e-4, atol=1e-4)
    towers = {"visual_sue": {"visual"}, "visual_moe": {"visual"}, "text_sue": {"text"}, "text_visual_sue": {"visual", "text"}}
    assert {name.split("_")[0] for name in out.routing} == towers[placement]


def test_moe_layers_replace_the_chosen_blocks_only(clip_file):
    _, path = clip_file
    model = _suede(path, moe_layers="late", num_experts=6, top_k=2)
    late = select_layers("late", len(vision_blocks(model.visual)))
    assert list(model.moe_layers) == [f"visual_{i}" for i in late]
    assert all(type(vision_blocks(model.visual)[i].mlp).__name__ == "RoutedMLP" for i in late)
    assert all(type(block.mlp).__name__ == "Sequential" for i, block in enumerate(vision_blocks(model.visual)) if i not in late)
    assert all(type(block.mlp).__name__ == "Sequential" for block in text_blocks(model.text_head))
    assert model.moe_layers[f"visual_{late[0]}"].layer.bank.num_experts == 6


def test_each_token_goes_to_exactly_k_experts_and_only_they_count(clip_file):
    _, path = clip_file
    torch.manual_seed(2)
    model = _suede(path, moe_layers=[0], num_experts=4, top_k=2).eval()
    layer = model.moe_layers["visual_0"].layer
    with torch.no_grad():
        layer.bank.w_out.normal_(std=0.1)  # trained-looking experts, so each one changes the output
    tokens = torch.randn(2, 17, layer.bank.dim)
    out, routing = layer(tokens)
    assert routing.indices.shape == (2 * 17, 2)
    assert (routing.indices[:, 0] != routing.indices[:, 1]).all()  # two different experts per token
    torch.testing.assert_close(routing.weights.sum(dim=1), torch.ones(34))
    # Perturbing an expert changes exactly the tokens routed to it.
    expert = 3
    with torch.no_grad():
        layer.bank.w_out[expert] += 1.0
    perturbed, _ = layer(tokens)
    changed = (perturbed - out).abs().reshape(34, -1).amax(dim=1) > 1e-6
    routed_to_expert = (routing.indices == expert).any(dim=1)
    assert routed_to_expert.any() and (~routed_to_expert).any()
    assert torch.equal(changed, routed_to_expert)


def test_router_losses_are_returned_with_their_configured_names(clip_file):
    _, path = clip_file
    model = _suede(path).train()
    batch = {"image": torch.randn(4, 3, IMAGE_SIZE, IMAGE_SIZE), "label": torch.tensor([0, 1, 0, 1])}
    out = model(batch["image"], batch)
    assert set(out.aux_losses) == {"router_z", "load_balance"}
    # Near-uniform routing at init: the balance loss is close to its minimum 1, the z-loss positive.
    assert 0.95 < out.aux_losses["load_balance"].item() < 1.3
    assert out.aux_losses["router_z"].item() > 0
    total, components = model.combine_losses(out, batch)
    expected = components["task"] + 1e-3 * components["router_z"] + 1e-2 * components["load_balance"]
    torch.testing.assert_close(total, expected)
    total.backward()
    router = model.moe_layers["visual_0"].layer.router
    assert router.gate.gate.weight.grad is not None and router.gate.gate.weight.grad.abs().sum() > 0


def test_training_step_logs_every_loss_component(clip_file, monkeypatch):
    _, path = clip_file
    model = _suede(path).train()
    logged: dict[str, float] = {}
    monkeypatch.setattr(model, "log", lambda name, value, **_: logged.__setitem__(name, float(value)))
    batch = {"image": torch.randn(4, 3, IMAGE_SIZE, IMAGE_SIZE), "label": torch.tensor([0, 1, 0, 1])}
    loss = model.training_step(batch, 0)
    assert {"train/loss", "train/loss_task", "train/loss_router_z", "train/loss_load_balance"} <= set(logged)
    assert logged["train/loss"] == pytest.approx(loss.item())


def test_trainable_parts_and_learning_rates(clip_file):
    _, path = clip_file
    model = _suede(path, placement="text_visual_sue", train_visual_backbone=False, new_parameter_lr=1e-3, learnable_context=True)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert not any(name.startswith("visual.conv1") for name in trainable)  # frozen backbone
    assert any(".mlp.layer.shared." in name for name in trainable)  # shared experts (CLIP MLPs) train
    assert any(name.startswith("text_head.transformer") and ".mlp.layer.router" in name for name in trainable)
    assert not any(name.startswith("text_head.token_embedding") or name == "text_head.logit_scale" for name in trainable)
    assert "text_head.prompts.context_vectors" in trainable
    groups = {g["name"]: g for g in model.parameter_groups()}
    assert groups["new"]["lr"] == 1e-3 and "lr" not in groups["clip"]
    new_ids = {id(p) for p in groups["new"]["params"]}
    assert id(model.text_head.prompts.context_vectors) in new_ids
    assert id(model.moe_layers["visual_0"].layer.shared[0].weight) not in new_ids
    grouped = [id(p) for g in groups.values() for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters() if p.requires_grad)  # each once


def test_class_prompts_must_be_real_then_fake(clip_file):
    _, path = clip_file
    with pytest.raises(ValueError, match="real', 'fake'"):
        _suede(path, class_prompts={"fake": ["fake face."], "real": ["real face."]})
    with pytest.raises(ValueError, match="placement"):
        _suede(path, placement="everywhere")


def test_text_head_learnable_context_starts_at_the_prompt_and_learns(clip_file):
    clip, _ = clip_file
    torch.manual_seed(0)
    fresh = build_clip("ViT-B-16", size="tiny", image_size=IMAGE_SIZE)
    fresh.load_state_dict(clip.state_dict())
    head = ClipTextHead(fresh, {"real": ["real face."], "fake": ["fake face."]}, context="a photo of a", learnable_context=True)
    assert head.prompts.num_context == 4
    reference = clip.encode_text(tokenize(head.prompt_texts))
    torch.testing.assert_close(head.text_features(), reference, rtol=1e-5, atol=1e-5)
    images = torch.randn(4, clip.visual.output_dim)
    loss = torch.nn.functional.cross_entropy(head(images), torch.tensor([0, 1, 0, 1]))
    loss.backward()
    assert head.prompts.context_vectors.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="longer than the context length"):
        ClipTextHead(fresh, {"real": ["real " * 80], "fake": ["fake face."]})  # would be truncated silently


def test_class_logits_are_log_sum_exp_of_their_prompts():
    torch.manual_seed(0)
    head = ClipTextHead(build_clip("ViT-B-16", size="tiny", image_size=IMAGE_SIZE), {"a": ["one.", "two."], "b": ["three."]})
    prompt_logits = torch.randn(5, 3)
    class_logits = head.class_logits(prompt_logits)
    torch.testing.assert_close(class_logits[:, 0], prompt_logits[:, :2].logsumexp(dim=1))
    torch.testing.assert_close(class_logits[:, 1], prompt_logits[:, 2])
    # softmax over classes = summed probability of each class's prompts
    torch.testing.assert_close(class_logits.softmax(dim=1)[:, 0], prompt_logits.softmax(dim=1)[:, :2].sum(dim=1))


@pytest.mark.parametrize(
    ("spec", "depth", "expected"),
    [
        ("all", 4, [0, 1, 2, 3]),
        ("early", 12, [0, 1, 2]),
        ("middle", 12, [4, 5, 6]),
        ("late", 12, [9, 10, 11]),
        ("early", 4, [0]),
        ("late", 4, [3]),
        ([-1, 0, 0], 4, [0, 3]),
        (2, 4, [2]),
    ],
)
def test_select_layers(spec, depth, expected):
    assert select_layers(spec, depth) == expected


def test_select_layers_rejects_unknown_groups_and_indices():
    with pytest.raises(ValueError, match=r"layer group='first': expected one of \[.*\] \(or a list of indices\)"):
        select_layers("first", 12)
    with pytest.raises(ValueError, match="out of range"):
        select_layers([12], 12)


@pytest.mark.slow
def test_suede_trains_end_to_end_and_logs_router_losses(tmp_path, synthetic_root):
    overrides = ["experiment=suede_uniattack_p1", "scale=demo", "trainer.max_epochs=1", "+trainer.limit_train_batches=3",
                 "trainer.log_every_n_steps=1"]
    metrics = trained_metrics(overrides, tmp_path, synthetic_root)
    assert {"train/loss_task", "train/loss_router_z", "train/loss_load_balance"} <= set(metrics.columns)
    assert metrics["train/loss_load_balance"].dropna().between(0.9, 4.0).all()  # 1 = uniform, 4 = one expert
    tests = load_results(tmp_path / "results.json")["tests"]
    assert {"acer", "acc", "auc", "eer", "tpr@fpr=0.01"} <= set(tests["uniattack_p1"]["frame"])


# --------------------------------------------------------------------------- paper fidelity (issue 19)


def test_table2_reads_the_cross_dataset_test_lists(tmp_path):
    """Table II is "cross domain testing in the joint training protocol": every column reads jfsfdb_cross,
    which selects the reader's cross_test role, not jfsfdb (intra + cross together)."""
    from sweeps.tables import TABLES

    table = TABLES["suede_table2"]
    assert {column.measure.test_sets for column in table.columns} == {("jfsfdb_cross",)}
    cfg = compose(["experiment=suede_jfsfdb"], tmp_path)
    test_set = cfg.protocol.test["jfsfdb_cross"]
    assert test_set.dataset == "jfsfdb_cross"
    assert dict(cfg.data.datasets[test_set.dataset].where) == {"role": "cross_test"}


@pytest.mark.parametrize("experiment", ["suede_uniattack_p1", "suede_uniattack_p2", "suede_jfsfdb"])
def test_optimiser_is_the_papers_adam(experiment, tmp_path):
    cfg = compose([f"experiment={experiment}"], tmp_path)
    assert cfg.detector.optimizer._target_ == "torch.optim.Adam" and cfg.detector.optimizer.weight_decay == 0


@pytest.mark.parametrize("fraction", [0.25, 1.0])
def test_routed_expert_width_is_a_fraction_of_the_clip_mlp(fraction, clip_file):
    clip, path = clip_file
    hidden = vision_blocks(clip)[0].mlp.c_fc.out_features
    model = _suede(path, routed_hidden_fraction=fraction, num_experts=4)
    bank = model.moe_layers["visual_0"].layer.bank
    assert bank.hidden_dim == round(hidden * fraction) and bank.w_in.shape[-1] == bank.hidden_dim
    with pytest.raises(ValueError, match="routed_hidden_fraction"):
        _suede(path, routed_hidden_fraction=0)


def test_fig5_counts_every_routed_expert_number_from_2_to_8(tmp_path):
    from sweeps.tables import TABLES

    rows = TABLES["suede_fig5"].rows
    assert [row.match["detector.num_experts"] for row in rows] == list(range(2, 9))
    from conftest import CONF
    from omegaconf import OmegaConf

    sweep = OmegaConf.load(CONF / "sweep" / "suede_num_experts.yaml")
    assert str(sweep.hydra.sweeper.params["detector.num_experts"]).split(",") == [str(n) for n in range(2, 9)]
