"""The routing-statistics callback counts expert assignments per layer and measures balance."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from callbacks.routing_stats import RoutingStatistics
from detectors.output import RoutingInfo


def _routing(indices: list[list[int]], num_experts: int) -> RoutingInfo:
    idx = torch.tensor(indices)
    return RoutingInfo(indices=idx, weights=torch.ones_like(idx, dtype=torch.float), probs=torch.zeros(len(indices), num_experts), num_experts=num_experts)


class _Module:
    def __init__(self):
        self.logged: dict[str, float] = {}
        self.last_routing = {}

    def log(self, name, value):
        self.logged[name] = value


def test_shares_entropy_and_collapse():
    callback, module = RoutingStatistics(), _Module()
    callback.on_train_epoch_start(None, module)
    module.last_routing = {"block0": _routing([[0, 1], [2, 3]], 4), "block1": _routing([[0], [0]], 4)}
    callback.on_train_batch_end(None, module, None, None, 0)
    module.last_routing = {"block0": _routing([[0, 1], [2, 3]], 4), "block1": _routing([[0], [1]], 4)}
    callback.on_train_batch_end(None, module, None, None, 1)
    callback.on_train_epoch_end(SimpleNamespace(), module)
    assert module.logged["routing/block0/entropy"] == pytest.approx(1.0)
    assert module.logged["routing/block0/expert2"] == pytest.approx(0.25)
    assert module.logged["routing/block1/max_share"] == pytest.approx(0.75)
    expected = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(4)
    assert module.logged["routing/block1/entropy"] == pytest.approx(expected)
