"""The suite-overhead benchmark compares like with like: ``--steps`` caps both sides alike, and the bare
loop trains the same model on the same batches on the Trainer's device. No timing is asserted."""

from __future__ import annotations

import math
import sys

import pytest
import torch
from conftest import compose, load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("suite_overhead")


def test_steps_cap_both_sides_and_the_bare_loop_keeps_the_trainers_device(bench, tmp_path, monkeypatch, synthetic_root):
    cfg = compose(["experiment=baseline_multidomain", "scale=demo", "logger=csv",
                   "+trainer.limit_val_batches=1", "trainer.num_sanity_val_steps=0"], tmp_path, synthetic_root)
    assert bench._device_and_dtype(cfg) == (torch.device("cpu"), None)
    gpu = compose(["experiment=baseline_multidomain", "logger=csv"], tmp_path)  # paper scale: trainer=gpu, bf16-mixed
    assert bench._device_and_dtype(gpu) == (torch.device("cuda", 0), torch.bfloat16)

    steps = []
    real_forward = type(bench.instantiate(cfg.detector, _convert_="all")).forward

    def counting_forward(self, *args, **kwargs):
        steps.append(self.training)
        return real_forward(self, *args, **kwargs)

    monkeypatch.setattr(type(bench.instantiate(cfg.detector, _convert_="all")), "forward", counting_forward)
    assert math.isfinite(bench.bare_epoch(cfg, 2, steps=2))
    assert steps.count(True) == 4  # 2 epochs of 2 steps
    steps.clear()
    assert math.isfinite(bench.suite_epoch(cfg, 1, steps=2))
    assert bench.suite_epoch.steps == 2
    assert steps.count(True) == 2  # training steps (validation runs in eval mode)


def test_the_bare_loop_sets_up_detectors_that_read_the_trainer(bench, tmp_path, synthetic_root, monkeypatch):
    """MoA-CLIP's setup reads the training domains from ``trainer.datamodule`` (GM-DF's its tokenizer data), and
    its per-step hooks alternate the phases by the epoch: the bare loop runs the router phase as the suite does
    (without it, the suite's router epochs, which run every adapter, were timed against adapter epochs: 1.5x)."""
    from detectors.moa_clip import MoAClipDetector

    cfg = compose(["experiment=moa_ffpp", "scale=demo", "demo_pretrained=null"], tmp_path, synthetic_root)
    assert cfg.trainer.gradient_clip_val == 1.0
    phases, models, clipped, real_forward, real_clip = [], [], [], MoAClipDetector.forward, torch.nn.utils.clip_grad_norm_

    def recording_forward(self, *args, **kwargs):
        phases.append(self.phase)
        models.append(self)
        return real_forward(self, *args, **kwargs)

    def recording_clip(params, max_norm, *args, **kwargs):
        params = list(params)
        clipped.append((max_norm, {id(p) for p in params if p.grad is not None}))
        return real_clip(params, max_norm, *args, **kwargs)

    monkeypatch.setattr(MoAClipDetector, "forward", recording_forward)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording_clip)
    assert math.isfinite(bench.bare_epoch(cfg, 2, steps=1))
    assert phases == ["adapters", "router"]
    # each step clips at the run's value, after the detector's hook dropped the inactive group's gradients
    model = models[0]
    assert [value for value, _ in clipped] == [1.0, 1.0]
    assert clipped[0][1] == {id(p) for p in model.active_parameters("adapters")}
    assert clipped[1][1] == {id(p) for p in model.active_parameters("router")}


def test_a_detector_with_its_own_optimisation_step_is_refused(bench, tmp_path):
    cfg = compose(["experiment=gmdf_multidomain", "scale=demo"], tmp_path)
    with pytest.raises(SystemExit, match="GMDFDetector.*meta_step.py"):
        bench.check_comparable(cfg)
    bench.check_comparable(compose(["experiment=moa_ffpp", "scale=demo"], tmp_path))  # MoA-CLIP is compared


def test_both_sides_draw_the_same_randomness_and_route_alike(bench, tmp_path, synthetic_root, monkeypatch):
    """DFMoE's cost depends on its routing, and its routing on the random draws (drop-path, the feature
    augmentation). The Trainer validates between epochs, and creating the validation loader's iterator draws from
    the torch generator; the bare loop draws it too, so every epoch routes alike on both sides (without it the
    expert choices differed from the second epoch on: the suite had measured 1.117-1.189x on other work)."""
    import detectors.dfmoe

    cfg = compose(["experiment=dfmoe_ffpp", "scale=demo", "+trainer.limit_val_batches=1"], tmp_path, synthetic_root)
    routed, real_run = [], detectors.dfmoe.run_selected_experts

    def recording_run(images, routing, experts):
        if torch.is_grad_enabled():  # training steps: each image's chosen experts, and the images themselves
            routed.append((routing.indices.tolist(), round(float(images.double().sum()), 4)))
            sides.append(id(experts))  # which model (side) ran the step
        return real_run(images, routing, experts)

    sides: list[int] = []
    monkeypatch.setattr(detectors.dfmoe, "run_selected_experts", recording_run)
    epochs, steps = 2, 2  # the second epoch is the one the validation draws change
    bench.suite_epoch(cfg, epochs, steps=steps)
    suite_routed, routed[:] = list(routed), []
    bench.bare_epoch(cfg, epochs, steps=steps)
    assert len(suite_routed) == epochs * steps and routed == suite_routed
    # in turns (the default): a bare epoch before each suite epoch, each side in its own random stream, and
    # each still draws and routes as it does alone
    routed.clear()
    sides.clear()
    assert all(math.isfinite(seconds) for seconds in bench.interleaved_epochs(cfg, epochs, steps=steps))
    bare_side, suite_side = sides[0], sides[steps]
    assert bare_side != suite_side and sides == ([bare_side] * steps + [suite_side] * steps) * epochs
    assert [r for r, side in zip(routed, sides) if side == suite_side] == suite_routed
    assert [r for r, side in zip(routed, sides) if side == bare_side] == suite_routed
    monkeypatch.setattr(bench, "validation_draws", lambda cfg, datamodule: (datamodule.val_dataloader(), lambda epoch: False))
    routed.clear()
    bench.bare_epoch(cfg, epochs, steps=steps)  # without the validation draws: the same first epoch, then other choices
    assert routed[:steps] == suite_routed[:steps] and routed[steps:] != suite_routed[steps:]


def test_measure_sums_the_last_epochs_on_both_sides(bench, tmp_path, synthetic_root, monkeypatch):
    """``--measure K`` times the last K epochs of each side (a 2 s epoch is too short to resolve 5 % on a shared
    machine)."""
    cfg = compose(["experiment=baseline_multidomain", "scale=demo", "logger=csv",
                   "+trainer.limit_val_batches=1", "trainer.num_sanity_val_steps=0"], tmp_path, synthetic_root)
    clocks, real_clock = [], bench.PhaseClock

    def recording_clock():
        clocks.append(real_clock())
        return clocks[-1]

    monkeypatch.setattr(bench, "PhaseClock", recording_clock)
    seconds = bench.suite_epoch(cfg, 3, steps=1, measure=2)
    assert len(clocks[0].epochs) == 3
    assert seconds == pytest.approx(sum(epoch["train_s"] for epoch in clocks[0].epochs[1:]))

    # the bare loop reads the clock at each epoch's start and end; a clock reading n**2 at its n-th call gives
    # epochs of 1 - 0, 9 - 4 and 25 - 16 seconds, and the last two sum to 14
    calls = iter(range(1000))
    monkeypatch.setattr(bench, "time", type("Clock", (), {"perf_counter": staticmethod(lambda: float(next(calls)) ** 2)}))
    assert bench.bare_epoch(cfg, 3, steps=1, measure=2) == 14.0


def test_measure_leaves_a_warm_up_epoch(bench, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["suite_overhead.py", "--epochs", "2", "--measure", "2"])
    with pytest.raises(SystemExit):
        bench.main()
    assert "--measure 2: expected 1 to --epochs - 1 = 1" in capsys.readouterr().err


def test_the_command_runs_both_sides_in_turns_and_prints_the_ratio(bench, monkeypatch, capsys, synthetic_root):
    turns = []
    real = bench.interleaved_epochs
    monkeypatch.setattr(bench, "interleaved_epochs", lambda *args: turns.append(args[1:]) or real(*args))
    monkeypatch.setattr(sys, "argv", ["suite_overhead.py", "--rounds", "1", "--epochs", "2", "--steps", "1", "logger=csv",
                                      "+trainer.limit_val_batches=1", "trainer.num_sanity_val_steps=0", f"data.synthetic.root={synthetic_root}"])
    bench.main()
    assert turns == [(2, 1, 1)]  # epochs, steps, measured epochs
    out = capsys.readouterr().out
    assert "round 0: suite" in out and "baseline_multidomain: suite/bare time of the last 1 epoch(s), median" in out
