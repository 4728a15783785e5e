"""Adapters: zero-init bottleneck, MoA-CLIP Eq. 6 under softmax / top-k / domain routing, routing-mode switch
and the separate adapter / router parameter groups of the alternating schedule."""

from __future__ import annotations

import pytest
import torch

from detectors.moe.adapters import BottleneckAdapter, MixtureOfAdapters


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_bottleneck_adapter_outputs_zero_at_init_by_default() -> None:
    hidden_states = torch.randn(2, 5, 12)
    assert torch.count_nonzero(BottleneckAdapter(12, 4)(hidden_states)) == 0
    trained_like = BottleneckAdapter(12, 4, zero_init_output=False)
    output = trained_like(hidden_states)
    assert output.shape == (2, 5, 12) and torch.count_nonzero(output) > 0
    torch.testing.assert_close(
        output, trained_like.up(torch.nn.functional.gelu(trained_like.down(hidden_states)))
    )


def adapter_output(moa: MixtureOfAdapters, adapter: int, tokens: torch.Tensor) -> torch.Tensor:
    return moa.adapters.expert_forward(adapter, tokens)


def test_softmax_router_gives_shared_plus_alpha_weighted_adapters() -> None:
    moa = MixtureOfAdapters(dim=12, hidden_dim=4, num_adapters=3, router="softmax", zero_init_output=False)
    hidden_states = torch.randn(2, 5, 12)
    delta, routing = moa(hidden_states)
    tokens = hidden_states.reshape(10, 12)
    alpha = routing.probs
    expected = moa.shared(tokens) + sum(alpha[:, [k]] * adapter_output(moa, k, tokens) for k in range(3))
    torch.testing.assert_close(delta, expected.reshape(2, 5, 12))
    torch.testing.assert_close(alpha.sum(-1), torch.ones(10))


def test_domain_routing_uses_each_samples_domain_adapter_only() -> None:
    moa = MixtureOfAdapters(dim=12, hidden_dim=4, num_adapters=3, zero_init_output=False)
    moa.routing_mode = "domain"
    hidden_states = torch.randn(2, 5, 12)
    delta, routing = moa(hidden_states, domain_ids=torch.tensor([1, 2]))
    for sample, domain in enumerate([1, 2]):
        expected = moa.shared(hidden_states[sample]) + adapter_output(moa, domain, hidden_states[sample])
        torch.testing.assert_close(delta[sample], expected)
    assert routing.indices.view(-1).tolist() == [1] * 5 + [2] * 5


def test_topk_router_mixes_exactly_k_adapters_per_token() -> None:
    moa = MixtureOfAdapters(
        dim=12, hidden_dim=4, num_adapters=4, router="topk", top_k=2, shared_adapter=False
    )
    delta, routing = moa(torch.randn(3, 6, 12))
    assert moa.shared is None
    assert routing.indices.shape == (18, 2) and all(len(set(row)) == 2 for row in routing.indices.tolist())
    assert torch.count_nonzero(delta) == 0  # zero-init adapters, no shared adapter


def test_mean_gate_input_routes_all_tokens_of_a_sample_alike() -> None:
    moa = MixtureOfAdapters(dim=12, hidden_dim=4, num_adapters=3, gate_input="mean")
    _, routing = moa(torch.randn(2, 5, 12))
    assert torch.equal(routing.weights[:5], routing.weights[:1].expand(5, 3))


def test_routing_mode_switch_is_validated() -> None:
    moa = MixtureOfAdapters(dim=12, hidden_dim=4, num_adapters=2)
    assert moa.routing_mode == "learned"
    moa.routing_mode = "domain"
    with pytest.raises(ValueError, match="needs domain_ids"):
        moa(torch.randn(2, 3, 12))
    with pytest.raises(ValueError, match="routing_mode='oracle'"):
        moa.routing_mode = "oracle"  # type: ignore[assignment]
    domain_only = MixtureOfAdapters(dim=12, hidden_dim=4, num_adapters=2, router="domain")
    assert domain_only.routing_mode == "domain" and domain_only.router_parameters() == []
    with pytest.raises(ValueError, match="needs a learned router"):
        domain_only.routing_mode = "learned"


def test_parameter_groups_are_disjoint_and_cover_the_module() -> None:
    moa = MixtureOfAdapters(dim=12, hidden_dim=4, num_adapters=3, router_hidden_dim=8)
    adapter_ids = {id(p) for p in moa.adapter_parameters()}
    router_ids = {id(p) for p in moa.router_parameters()}
    assert adapter_ids and router_ids and not adapter_ids & router_ids
    assert adapter_ids | router_ids == {id(p) for p in moa.parameters()}


def test_alternating_schedule_trains_one_group_at_a_time() -> None:
    moa = MixtureOfAdapters(dim=12, hidden_dim=4, num_adapters=3)
    hidden_states = torch.randn(2, 5, 12)
    target = torch.randn(2, 5, 12)  # a linear loss: delta is 0 at init, so delta^2 would have no gradient
    # Step 1: adapters on oracle routing; the router is not in the graph.
    moa.routing_mode = "domain"
    (moa(hidden_states, domain_ids=torch.tensor([0, 2]))[0] * target).sum().backward()
    assert all(p.grad is None for p in moa.router_parameters())
    assert moa.adapters.w_out.grad[[0, 2]].abs().sum() > 0 and moa.adapters.w_out.grad[1].abs().sum() == 0
    # Step 2: adapters frozen, learned routing; only the router receives gradient.
    moa.zero_grad(set_to_none=True)
    with torch.no_grad():
        moa.adapters.w_out.normal_()  # trained adapters: non-zero outputs to route between
    for parameter in moa.adapter_parameters():
        parameter.requires_grad_(False)
    moa.routing_mode = "learned"
    (moa(hidden_states)[0] * target).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in moa.router_parameters())
    assert all(p.grad is None for p in moa.adapter_parameters())
