"""Expert layers: sort-by-expert dispatch, sparse ExpertBank == naive loop, no work for unselected experts,
heterogeneous dispatch, and SUEDE's SharedRoutedMoE built from a CLIP MLP."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from detectors.moe.experts import (
    ExpertBank,
    SharedRoutedMoE,
    dispatch_by_expert,
    mlp_dims,
    run_selected_experts,
)
from detectors.moe.routing import DomainRouter, TopKRouter
from detectors.output import RoutingInfo


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def fixed_routing(indices: list[list[int]], num_experts: int) -> RoutingInfo:
    index_tensor = torch.tensor(indices)
    weights = torch.rand(index_tensor.shape)
    weights = weights / weights.sum(-1, keepdim=True)
    return RoutingInfo(
        indices=index_tensor,
        weights=weights,
        probs=torch.rand(len(indices), num_experts),
        num_experts=num_experts,
    )


def naive_bank_output(bank: ExpertBank, tokens: torch.Tensor, routing: RoutingInfo) -> torch.Tensor:
    rows = []
    for token, experts, weights in zip(tokens, routing.indices, routing.weights):
        row = torch.zeros(bank.dim)
        for expert, weight in zip(experts.tolist(), weights):
            hidden = bank.activation(token @ bank.w_in[expert] + bank.b_in[expert])
            row = row + weight * (hidden @ bank.w_out[expert] + bank.b_out[expert])
        rows.append(row)
    return torch.stack(rows)


def test_dispatch_groups_assignments_by_expert_in_stable_order() -> None:
    dispatch = dispatch_by_expert(torch.tensor([[2, 0], [0, 1], [2, 0]]), num_experts=4)
    assert dispatch.counts == [3, 1, 2, 0]
    assert dispatch.token_ids.tolist() == [0, 1, 2, 1, 0, 2]
    assert dispatch.slot_ids.tolist() == [1, 2, 5, 3, 0, 4]


@pytest.mark.parametrize(
    ("indices", "message"), [([[0, 3]], "0 negative and 1 >= 3"), ([[-1, 0]], "1 negative")]
)
def test_dispatch_rejects_expert_index_out_of_range(indices: list[list[int]], message: str) -> None:
    with pytest.raises(ValueError, match=rf"must be in \[0, 2\], got {message}"):
        dispatch_by_expert(torch.tensor(indices), num_experts=3)


def test_expert_bank_equals_naive_per_token_loop() -> None:
    bank = ExpertBank(num_experts=4, dim=8, hidden_dim=16)
    tokens = torch.randn(11, 8)
    routing = TopKRouter(dim=8, num_experts=4, k=2)(tokens)
    torch.testing.assert_close(bank(tokens, routing), naive_bank_output(bank, tokens, routing))


def test_every_token_is_sent_to_exactly_k_distinct_experts() -> None:
    tokens = torch.randn(50, 8)
    routing = TopKRouter(dim=8, num_experts=6, k=3)(tokens)
    assert all(len(set(row)) == 3 for row in routing.indices.tolist())
    dispatch = dispatch_by_expert(routing.indices, 6)
    assert sum(dispatch.counts) == 50 * 3
    assert torch.equal(torch.bincount(dispatch.token_ids, minlength=50), torch.full((50,), 3))


def test_unselected_experts_get_no_gradient() -> None:
    bank = ExpertBank(num_experts=4, dim=8, hidden_dim=16)
    routing = fixed_routing([[0, 1], [1, 0], [0, 1]], num_experts=4)
    bank(torch.randn(3, 8), routing).pow(2).sum().backward()
    for parameter in (bank.w_in, bank.b_in, bank.w_out, bank.b_out):
        assert parameter.grad[2:].abs().sum() == 0
        assert parameter.grad[:2].abs().sum() > 0


def test_flops_count_only_the_selected_token_expert_pairs() -> None:
    num_tokens, dim, hidden, num_experts, k = 32, 16, 64, 4, 2
    bank = ExpertBank(num_experts, dim, hidden)
    tokens = torch.randn(num_tokens, dim)
    routing = TopKRouter(dim, num_experts, k)(tokens)
    with FlopCounterMode(display=False) as sparse_counter:
        bank(tokens, routing)
    with FlopCounterMode(display=False) as dense_counter:
        bank.forward_all(tokens)
    # Two matmuls (dim->hidden, hidden->dim) per (token, expert) pair, 2 flops per multiply-add.
    assert sparse_counter.get_total_flops() == num_tokens * k * 2 * (2 * dim * hidden)
    assert dense_counter.get_total_flops() == num_tokens * num_experts * 2 * (2 * dim * hidden)


def test_forward_all_matches_each_expert() -> None:
    bank = ExpertBank(num_experts=3, dim=8, hidden_dim=4, activation="quick_gelu")
    tokens = torch.randn(5, 8)
    every_expert = bank.forward_all(tokens)
    for expert in range(3):
        torch.testing.assert_close(every_expert[:, expert], bank.expert_forward(expert, tokens))


def test_parameters_keep_their_names_and_order() -> None:
    """The optimiser and the gradient norm see parameters() in this order; earlier results were measured with it."""
    assert [name for name, _ in ExpertBank(2, 4, 4).named_parameters()] == ["w_in", "b_in", "w_out", "b_out"]
    assert [name for name, _ in ExpertBank(2, 4, 4, bias=False).named_parameters()] == ["w_in", "w_out"]


def test_bias_free_linear_experts_are_x_w_in_w_out() -> None:
    """``bias=False`` + ``activation="identity"``: each expert is ``x W1 W2`` (MoA-CLIP's Eq. 4), one expert
    (``expert_forward``) and all at once (``forward_all``) alike."""
    bank = ExpertBank(num_experts=3, dim=8, hidden_dim=4, activation="identity", bias=False)
    assert bank.b_in is None and bank.b_out is None and len(list(bank.parameters())) == 2
    tokens = torch.randn(5, 8)
    every_expert = bank.forward_all(tokens)
    for expert in range(3):
        expected = tokens @ bank.w_in[expert] @ bank.w_out[expert]
        torch.testing.assert_close(bank.expert_forward(expert, tokens), expected)
        torch.testing.assert_close(every_expert[:, expert], expected)
    torch.testing.assert_close(bank.expert_forward(1, 3.0 * tokens), 3.0 * bank.expert_forward(1, tokens))  # linear
    bank.zero_init_output_()
    assert torch.count_nonzero(bank.forward_all(tokens)) == 0


def test_zero_init_output_makes_the_bank_output_zero() -> None:
    bank = ExpertBank(num_experts=3, dim=8, hidden_dim=4, zero_init_output=True)
    tokens = torch.randn(5, 8)
    assert torch.count_nonzero(bank(tokens, TopKRouter(8, 3, 2)(tokens))) == 0


def test_unknown_activation_is_rejected() -> None:
    with pytest.raises(ValueError, match="activation='swish2'"):
        ExpertBank(num_experts=2, dim=4, hidden_dim=4, activation="swish2")


class CountingExpert(nn.Module):
    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)
        self.calls = 0
        self.rows_seen = 0

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.rows_seen += inputs.shape[0]
        return self.linear(inputs.flatten(1))


def test_run_selected_experts_calls_only_selected_experts_once_each() -> None:
    experts = [CountingExpert(12, 5) for _ in range(4)]
    images = torch.randn(4, 3, 2, 2)
    routing = fixed_routing([[0, 2], [2, 0], [0, 2], [2, 0]], num_experts=4)
    slots = run_selected_experts(images, routing, experts)
    assert [expert.calls for expert in experts] == [1, 0, 1, 0]
    assert [expert.rows_seen for expert in experts] == [4, 0, 4, 0]
    for sample in range(4):
        for slot, expert in enumerate(routing.indices[sample].tolist()):
            torch.testing.assert_close(slots[sample, slot], experts[expert](images[sample : sample + 1])[0])


def clip_like_mlp(dim: int = 16, hidden: int = 64) -> nn.Sequential:
    from collections import OrderedDict

    return nn.Sequential(
        OrderedDict(
            [("c_fc", nn.Linear(dim, hidden)), ("gelu", nn.GELU()), ("c_proj", nn.Linear(hidden, dim))]
        )
    )


def test_from_mlp_equals_the_original_mlp_at_init_and_copies_it() -> None:
    open_clip = pytest.importorskip("open_clip")
    block = open_clip.transformer.ResidualAttentionBlock(d_model=16, n_head=2)
    layer = SharedRoutedMoE.from_mlp(block.mlp, num_experts=4, k=2, routed_hidden_dim=8)
    tokens = torch.randn(2, 5, 16)
    output, routing = layer(tokens)
    assert torch.equal(output, block.mlp(tokens))
    assert routing.indices.shape == (10, 2)
    assert mlp_dims(block.mlp) == (16, 64) and layer.bank.hidden_dim == 8
    with torch.no_grad():
        layer.shared.c_fc.weight.add_(1.0)
    assert not torch.equal(layer.shared.c_fc.weight, block.mlp.c_fc.weight)


def test_zero_initialised_routed_experts_still_learn() -> None:
    layer = SharedRoutedMoE.from_mlp(clip_like_mlp(), num_experts=4, k=2)
    tokens = torch.randn(3, 7, 16)
    output, _ = layer(tokens)
    output.pow(2).sum().backward()
    # With W_out = 0 only the output projection (and the shared MLP) get gradient at step 0.
    assert layer.bank.w_out.grad.abs().sum() > 0
    assert layer.shared.c_fc.weight.grad.abs().sum() > 0
    with torch.no_grad():
        layer.bank.w_out.sub_(0.1 * layer.bank.w_out.grad)
    assert not torch.equal(layer(tokens)[0], layer.shared(tokens))


def test_shared_routed_moe_sums_shared_and_routed_outputs_with_domain_router() -> None:
    shared = clip_like_mlp()
    bank = ExpertBank(num_experts=3, dim=16, hidden_dim=8)
    layer = SharedRoutedMoE(shared, bank, DomainRouter(3))
    tokens = torch.randn(2, 4, 16)
    output, routing = layer(tokens, domain_ids=torch.tensor([2, 0]))
    expected = shared(tokens) + torch.stack(
        [bank.expert_forward(2, tokens[0]), bank.expert_forward(0, tokens[1])]
    )
    torch.testing.assert_close(output, expected)
    assert routing.indices.view(-1).tolist() == [2] * 4 + [0] * 4


def test_shared_routed_moe_rejects_router_bank_mismatch() -> None:
    with pytest.raises(ValueError, match="router has 3 experts but the bank has 4"):
        SharedRoutedMoE(clip_like_mlp(), ExpertBank(4, 16, 8), TopKRouter(16, 3, 2))


def test_shared_routed_moe_under_bf16_autocast_keeps_fp32_routing() -> None:
    layer = SharedRoutedMoE.from_mlp(clip_like_mlp(), num_experts=4, k=2, zero_init_routed=False)
    tokens = torch.randn(2, 5, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output, routing = layer(tokens)
    assert output.dtype == torch.bfloat16 and routing.logits.dtype == torch.float32
    torch.testing.assert_close(output.float(), layer(tokens)[0], atol=0.1, rtol=0.05)
