"""evaluation.cost: parameter counts, FLOPs by FlopCounterMode (exact on a known model; a top-K MoE counts
only the experts that ran), latency, and that the model is left as it was."""

from __future__ import annotations

import functools
import json

import pytest
import torch
from torch import nn

from detectors.dfmoe import DFMoE
from evaluation.cost import count_parameters, measure_cost

KEYS = {
    "params_total", "params_trainable", "params_total_m", "params_trainable_m", "gflops_per_image",
    "gmacs_per_image", "latency_ms_per_image", "latency_ms_per_batch", "batch_size", "input_size", "device",
    "dtype", "repeats", "flop_counter",
}


class LinearProbe(nn.Module):
    input_size = 8

    def __init__(self) -> None:
        super().__init__()
        self.frozen = nn.Linear(3 * 8 * 8, 4)
        self.frozen.requires_grad_(False)
        self.head = nn.Linear(4, 1)

    def forward(self, images: torch.Tensor, batch=None) -> torch.Tensor:
        return self.head(self.frozen(images.flatten(1)))


def test_counts_are_exact_on_a_known_model_and_json_serialisable():
    model = LinearProbe().train()
    cost = measure_cost(model, batch_size=4, repeats=2, warmup=1)
    assert set(cost) == KEYS
    assert cost["params_total"] == 192 * 4 + 4 + 4 + 1 and cost["params_trainable"] == 5
    assert count_parameters(model) == {"params_total": 777, "params_trainable": 5}
    # FlopCounterMode: 2 FLOPs per multiply-add, biases not counted: (192*4 + 4*1) * 2 per image.
    assert cost["gflops_per_image"] == pytest.approx((192 * 4 + 4) * 2 / 1e9)
    assert cost["gmacs_per_image"] == pytest.approx(cost["gflops_per_image"] / 2)
    assert cost["latency_ms_per_image"] == pytest.approx(cost["latency_ms_per_batch"] / 4) and cost["latency_ms_per_image"] > 0
    assert cost["input_size"] == [8, 8] and cost["device"] == "cpu"
    assert model.training  # mode restored
    json.dumps(cost)


def test_input_size_is_required_when_the_model_has_none():
    with pytest.raises(ValueError, match="no input_size attribute"):
        measure_cost(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="batch_size >= 1"):
        measure_cost(LinearProbe(), batch_size=0)


def test_moe_flops_count_only_the_selected_experts():
    """Tiny DFMoE experts are identical networks, so each extra selected expert adds the same FLOPs."""
    common = dict(
        size="tiny", pretrained=None, expert_pretrained=None, input_size=64, num_experts=3,
        optimizer=functools.partial(torch.optim.Adam),
    )
    flops = {}
    for top_k in (1, 2, 3):
        torch.manual_seed(0)
        flops[top_k] = measure_cost(DFMoE(top_k=top_k, **common), batch_size=4, repeats=1, warmup=0)["gflops_per_image"]
    assert flops[1] < flops[2] < flops[3]
    assert flops[3] - flops[2] == pytest.approx(flops[2] - flops[1], rel=1e-6)
