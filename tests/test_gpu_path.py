"""The GPU path, checked on the CPU: fused optimiser fallback, the compile option, the device peak table,
and benchmarks/gpu.sh's dry run (tiny models)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO, compose

from detectors.optimizers import build_optimizer
from engine.compilation import maybe_compile


def test_fused_auto_falls_back_to_the_default_optimiser_on_cpu():
    params = [torch.nn.Parameter(torch.randn(3))]
    optimizer = build_optimizer(functools.partial(torch.optim.AdamW, lr=1e-3, fused="auto"), params)
    assert isinstance(optimizer, torch.optim.AdamW) and not optimizer.defaults["fused"]
    assert optimizer.defaults["lr"] == 1e-3
    groups = [{"params": params, "lr": 0.5}]
    assert build_optimizer(functools.partial(torch.optim.Adam, fused="auto"), groups).param_groups[0]["lr"] == 0.5
    # an explicit value and a factory without the keyword pass through unchanged
    assert build_optimizer(functools.partial(torch.optim.AdamW, lr=1e-3, fused=False), params).defaults["fused"] is False

    def no_fused(params, lr=0.1):
        return torch.optim.SGD(params, lr=lr)

    assert isinstance(build_optimizer(functools.partial(no_fused, fused="auto"), params), torch.optim.SGD)


def test_detector_optimizer_accepts_fused_auto(tmp_path):
    from hydra.utils import instantiate

    cfg = compose(["experiment=baseline_multidomain", "scale=demo", "+detector.optimizer.fused=auto"], tmp_path)
    model = instantiate(cfg.detector, _convert_="all")
    model._trainer = type("T", (), {"estimated_stepping_batches": 10})()
    configured = model.configure_optimizers()
    optimizer = configured["optimizer"] if isinstance(configured, dict) else configured
    assert not optimizer.defaults.get("fused")  # CPU: the default implementation


def test_compile_option_compiles_in_place_and_checks_its_keys():
    model = torch.nn.Linear(4, 2)
    x = torch.randn(3, 4)
    expected = model(x)
    assert maybe_compile(model, {"enabled": False}) is False and model._compiled_call_impl is None
    assert maybe_compile(model, {"enabled": True, "backend": "eager", "mode": None}) is True
    assert model._compiled_call_impl is not None and isinstance(model, torch.nn.Linear)
    assert torch.allclose(model(x), expected)
    assert list(model.state_dict()) == ["weight", "bias"]  # checkpoint keys unchanged
    with pytest.raises(ValueError, match=r"compile: unknown key\(s\) \['backends'\]"):
        maybe_compile(torch.nn.Linear(1, 1), {"backends": "eager"})
    with pytest.raises(ValueError, match="compile.enabled='yes'"):
        maybe_compile(torch.nn.Linear(1, 1), {"enabled": "yes"})


def test_bf16_peak_table():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from gpu_bench import bf16_peak_tflops
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    assert bf16_peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert bf16_peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert bf16_peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert bf16_peak_tflops("Some Future GPU") is None


def test_a_failing_method_is_reported_the_others_still_run_and_the_json_keeps_both(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import gpu_bench
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    row = {"train_images_per_s": 1.0, "infer_images_per_s": 2.0, "loader_images_per_s": 3.0, "mfu": None,
           "peak_memory_gib": None, "compile_s": None, "input_size": 64, "params_m": 0.1}

    def measure(method, *args):
        if method == "xception":
            raise RuntimeError("CUDA out of memory (simulated)")
        return dict(row)

    monkeypatch.setattr(gpu_bench, "measure", measure)
    out = tmp_path / "gpu.json"
    monkeypatch.setattr(sys, "argv", ["gpu_bench.py", "--dry-run", "--methods", "xception", "efficientnet_b4", "--json", str(out)])
    with pytest.raises(SystemExit, match="1 of 2 methods failed: xception"):
        gpu_bench.main()
    report = json.loads(out.read_text())
    assert report["failed"] == ["xception"] and "out of memory" in report["methods"]["xception"]["error"]
    assert report["methods"]["efficientnet_b4"]["train_images_per_s"] == 1.0  # measured after the failure


@pytest.mark.slow
def test_gpu_script_dry_run_on_cpu(tmp_path, synthetic_root):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FACEMOE_CACHE": str(synthetic_root.parent)}
    subprocess.run(
        ["bash", "benchmarks/gpu.sh", "--dry-run", "--methods", "efficientnet_b4", "dfmoe", "--steps", "1", "--warmup", "0",
         "--workers", "2", "--loader-batches", "2", "--batch-size", "4", "--compile", "--compile-backend", "eager",
         "--json", str(out)],
        cwd=REPO, env=env, check=True, timeout=1800,
    )
    report = json.loads(out.read_text())
    assert report["device"] == "cpu" and report["gpus"] == 0
    for method in ("efficientnet_b4", "dfmoe"):
        row = report["methods"][method]
        assert row["train_images_per_s"] > 0 and row["infer_images_per_s"] > 0 and row["loader_images_per_s"] > 0
        assert row["train_tflop_per_step"] > 0 and row["compile_s"] is not None
        assert row["mfu"] is None and row["peak_memory_gib"] is None  # no peak and no CUDA memory on a CPU


@pytest.mark.slow
def test_run_with_compile_enabled(tmp_path, synthetic_root):
    from engine.pipeline import run
    from evaluation.results import load_results

    cfg = compose(["experiment=baseline_multidomain", "scale=demo", "+trainer.fast_dev_run=true", "compile.enabled=true",
                   "compile.backend=eager", "+detector.optimizer.fused=auto"], tmp_path, synthetic_root)
    run(cfg)
    assert load_results(tmp_path / "results.json")["config"]["compile"]["enabled"] is True
