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
    callback.on_train_epoch_start(SimpleNamespace(current_epoch=0), module)
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


def test_an_epoch_resumed_in_its_middle_logs_what_one_run_through_logs():
    """The counts so far travel in the checkpoint (callback state): kept when the run resumes inside that
    epoch, dropped when the next epoch starts (a checkpoint written at an epoch's end)."""
    batches = [_routing([[0], [1]], 2), _routing([[1], [1]], 2), _routing([[0], [0]], 2)]

    def run_through(callback, epoch, start=0, stop=3):
        module = _Module()
        callback.on_train_epoch_start(SimpleNamespace(current_epoch=epoch), module)
        for index in range(start, stop):
            module.last_routing = {"b": batches[index]}
            callback.on_train_batch_end(None, module, None, None, index)
        return module

    uninterrupted = RoutingStatistics()
    whole = run_through(uninterrupted, epoch=2)
    uninterrupted.on_train_epoch_end(None, whole)
    interrupted = RoutingStatistics()
    run_through(interrupted, epoch=2, stop=2)  # preempted after 2 of 3 batches
    state = interrupted.state_dict()
    resumed = RoutingStatistics()
    resumed.load_state_dict(state)
    module = run_through(resumed, epoch=2, start=2)
    resumed.on_train_epoch_end(None, module)
    assert module.logged == whole.logged and module.logged["routing/b/expert1"] == pytest.approx(0.5)
    # a checkpoint of epoch 2 restored when epoch 3 starts: epoch 3 counts from zero
    later = RoutingStatistics()
    later.load_state_dict(state)
    module = run_through(later, epoch=3, start=2)
    later.on_train_epoch_end(None, module)
    assert module.logged["routing/b/expert0"] == pytest.approx(1.0)
