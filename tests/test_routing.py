"""Routers: top-k selection and renormalisation, gate inputs, fp32 gating, noisy gating, dense and oracle routing."""

from __future__ import annotations

import pytest
import torch

from detectors.moe.routing import DenseRouter, DomainRouter, TopKRouter, expand_routing, route


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_topk_router_selects_largest_probs_and_renormalises() -> None:
    router = TopKRouter(dim=8, num_experts=5, k=2)
    routing = router(torch.randn(7, 8))
    assert (
        routing.indices.shape == (7, 2) and routing.weights.shape == (7, 2) and routing.probs.shape == (7, 5)
    )
    assert routing.num_experts == 5
    torch.testing.assert_close(routing.probs, routing.logits.softmax(-1))
    expected_top = routing.probs.topk(2, dim=-1)
    assert torch.equal(routing.indices, expected_top.indices)
    torch.testing.assert_close(
        routing.weights, expected_top.values / expected_top.values.sum(-1, keepdim=True)
    )
    torch.testing.assert_close(routing.weights.sum(-1), torch.ones(7))


def test_token_gate_input_routes_every_token_of_a_batch() -> None:
    router = TopKRouter(dim=8, num_experts=4, k=1)
    tokens = torch.randn(3, 5, 8)
    batched = router(tokens)
    flat = router(tokens.reshape(15, 8))
    assert batched.indices.shape == (15, 1)
    assert torch.equal(batched.indices, flat.indices)


def test_mean_gate_input_routes_each_sample_on_its_mean_token() -> None:
    router = TopKRouter(dim=8, num_experts=4, k=2, gate_input="mean")
    tokens = torch.randn(3, 5, 8)
    routing = router(tokens)
    assert router.routes_per_sample
    assert routing.logits.shape == (3, 4)
    torch.testing.assert_close(routing.logits, tokens.mean(1) @ router.gate.gate.weight.T)


def test_external_gate_input_reads_the_gate_feature_and_requires_it() -> None:
    router = TopKRouter(dim=6, num_experts=3, k=2, gate_input="external")
    gate_feature = torch.randn(4, 6)
    routing = router(torch.randn(4, 10, 32), gate_feature=gate_feature)
    torch.testing.assert_close(routing.logits, gate_feature @ router.gate.gate.weight.T)
    with pytest.raises(ValueError, match="gate_feature"):
        router(torch.randn(4, 10, 32))


@pytest.mark.parametrize("bad_k", [0, 5])
def test_topk_router_rejects_k_outside_range(bad_k: int) -> None:
    with pytest.raises(ValueError, match="k must be in"):
        TopKRouter(dim=4, num_experts=4, k=bad_k)


def test_unknown_gate_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="gate_input"):
        TopKRouter(dim=4, num_experts=4, k=1, gate_input="cls")  # type: ignore[arg-type]


def test_gate_runs_in_fp32_under_autocast_and_with_bf16_weights() -> None:
    router = TopKRouter(dim=8, num_experts=4, k=2, hidden_dim=16)
    tokens = torch.randn(6, 8)
    reference = router(tokens)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast_routing = router(tokens)
    assert autocast_routing.logits.dtype == torch.float32 and autocast_routing.weights.dtype == torch.float32
    torch.testing.assert_close(autocast_routing.logits, reference.logits)
    bf16_routing = router.to(torch.bfloat16)(tokens.to(torch.bfloat16))
    assert bf16_routing.logits.dtype == torch.float32


def test_noisy_gating_adds_noise_only_in_training_and_learns_its_scale() -> None:
    router = TopKRouter(dim=8, num_experts=8, k=2, noisy_gating=True, noise_std=1.0)
    tokens = torch.randn(64, 8)
    router.eval()
    clean_a, clean_b = router(tokens), router(tokens)
    assert torch.equal(clean_a.indices, clean_b.indices)
    torch.testing.assert_close(clean_a.probs, clean_a.logits.softmax(-1))
    router.train()
    noisy = router(tokens)
    # Clean logits are reported even in training; selection came from the noisy ones.
    torch.testing.assert_close(noisy.logits, clean_a.logits)
    assert not torch.equal(noisy.indices, clean_a.indices)
    (noisy.weights * torch.randn_like(noisy.weights)).sum().backward()
    assert router.noise.weight.grad is not None and router.noise.weight.grad.abs().sum() > 0


def test_dense_router_weights_every_expert_by_softmax() -> None:
    router = DenseRouter(dim=8, num_experts=3, hidden_dim=4)
    routing = router(torch.randn(2, 5, 8))
    assert torch.equal(routing.indices, torch.arange(3).expand(10, 3))
    torch.testing.assert_close(routing.weights, routing.probs)
    torch.testing.assert_close(routing.weights.sum(-1), torch.ones(10))


def test_domain_router_is_one_hot_with_unit_weight() -> None:
    routing = DomainRouter(num_experts=3)(torch.tensor([2, 0, 2]))
    assert torch.equal(routing.indices, torch.tensor([[2], [0], [2]]))
    assert torch.equal(routing.weights, torch.ones(3, 1))
    assert torch.equal(routing.probs, torch.tensor([[0.0, 0, 1], [1, 0, 0], [0, 0, 1]]))


@pytest.mark.parametrize("domain_ids", [[0, 3], [-1, 0]])
def test_domain_router_rejects_out_of_range_domain(domain_ids: list[int]) -> None:
    with pytest.raises(ValueError, match=r"must be in \[0, 2\]"):
        DomainRouter(num_experts=3)(torch.tensor(domain_ids))


def test_expand_routing_repeats_each_sample_for_its_tokens() -> None:
    routing = DomainRouter(num_experts=3)(torch.tensor([1, 2]))
    expanded = expand_routing(routing, tokens_per_sample=3)
    assert torch.equal(expanded.indices.view(-1), torch.tensor([1, 1, 1, 2, 2, 2]))
    assert expanded.probs.shape == (6, 3)


def test_route_gives_token_level_routing_for_every_router_kind() -> None:
    tokens = torch.randn(2, 4, 8)
    domain = route(DomainRouter(3), tokens, domain_ids=torch.tensor([2, 1]))
    assert torch.equal(domain.indices.view(-1), torch.tensor([2, 2, 2, 2, 1, 1, 1, 1]))
    pooled = route(TopKRouter(8, 3, 1, gate_input="mean"), tokens)
    assert pooled.indices.shape == (8, 1)
    assert torch.equal(pooled.indices[:4], pooled.indices[:1].expand(4, 1))
    assert route(DenseRouter(8, 3), tokens).indices.shape == (8, 3)
    with pytest.raises(ValueError, match="sample-level routings cannot cover"):
        route(DomainRouter(3), tokens, domain_ids=torch.tensor([0, 1, 2]))
