"""What a detector configuration costs: parameters (total, trainable), GFLOPs and latency per image.

Used for DFMoE Table 6 (number of experts vs inference time and FLOPs) and the parameter / FLOP columns
of DTN Tables 6, 8 and 9; :func:`measure_cost` works for any ``nn.Module`` whose ``forward`` takes an
image batch (every detector: ``forward(images, batch=None)``).

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one forward pass in eval mode:
a multiply-add counts as 2 FLOPs (so ``gmacs_per_image = gflops_per_image / 2``; papers that print
"FLOPs" usually mean MACs, e.g. DTN's 0.203 G per transformer block). Only operations with a FLOP formula
are counted (matmuls, convolutions, attention); elementwise ops, norms and pooling are not. For a
mixture of experts the count is of what actually ran: with top-K routing only the selected experts'
FLOPs appear, averaged over the probe batch (random images, so the routing is the untrained router's).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> dict[str, int]:
    """``{"params_total", "params_trainable"}``; shared parameters are counted once."""
    parameters = list(model.parameters())
    return {
        "params_total": sum(p.numel() for p in parameters),
        "params_trainable": sum(p.numel() for p in parameters if p.requires_grad),
    }


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_cost(
    model: nn.Module,
    input_size: int | tuple[int, int] | None = None,
    batch_size: int = 1,
    device: str | torch.device | None = None,
    warmup: int = 3,
    repeats: int = 10,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> dict[str, Any]:
    """Parameters, forward GFLOPs per image and median forward latency per image of ``model``.

    ``input_size``: square side or ``(H, W)``; default ``model.input_size`` (every detector has it).
    ``device``: default the model's. Latency: ``warmup`` untimed forwards, then the median of ``repeats``
    timed forwards of a ``batch_size`` batch (CUDA synchronised), divided by ``batch_size``; under
    ``torch.no_grad`` in eval mode. ``dtype`` other than float32 runs the forward under autocast.
    The model's train/eval mode is restored afterwards. Returns a JSON-serialisable dict:
    ``params_total``, ``params_trainable`` (ints), ``params_total_m``, ``params_trainable_m`` (millions),
    ``gflops_per_image``, ``gmacs_per_image``, ``latency_ms_per_image``, ``latency_ms_per_batch``,
    ``batch_size``, ``input_size`` ([H, W]), ``device``, ``dtype``, ``repeats``, ``flop_counter``.
    """
    if batch_size < 1 or repeats < 1 or warmup < 0:
        raise ValueError(f"measure_cost: need batch_size >= 1, repeats >= 1, warmup >= 0; got {batch_size}, {repeats}, {warmup}")
    if input_size is None:
        input_size = getattr(model, "input_size", None)
        if input_size is None:
            raise ValueError(f"measure_cost: {type(model).__name__} has no input_size attribute; pass input_size")
    height, width = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    parameters = list(model.parameters())
    target = torch.device(device) if device is not None else (parameters[0].device if parameters else torch.device("cpu"))
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, 3, height, width, generator=generator).to(target)
    autocast = torch.autocast(device_type=target.type, dtype=dtype, enabled=dtype != torch.float32)

    was_training = model.training
    original_device = parameters[0].device if parameters else target
    model.to(target).eval()
    try:
        with torch.no_grad(), autocast:
            counter = FlopCounterMode(display=False)
            with counter:
                model(images)
            flops = counter.get_total_flops()
            for _ in range(warmup):
                model(images)
            timings = []
            for _ in range(repeats):
                _synchronize(target)
                started = time.perf_counter()
                model(images)
                _synchronize(target)
                timings.append(time.perf_counter() - started)
    finally:
        model.train(was_training)
        model.to(original_device)
    counts = count_parameters(model)
    batch_ms = 1000 * statistics.median(timings)
    return {
        **counts,
        "params_total_m": counts["params_total"] / 1e6,
        "params_trainable_m": counts["params_trainable"] / 1e6,
        "gflops_per_image": flops / batch_size / 1e9,
        "gmacs_per_image": flops / batch_size / 2e9,
        "latency_ms_per_image": batch_ms / batch_size,
        "latency_ms_per_batch": batch_ms,
        "batch_size": batch_size,
        "input_size": [height, width],
        "device": str(target),
        "dtype": str(dtype).removeprefix("torch."),
        "repeats": repeats,
        "flop_counter": "torch.utils.flop_counter.FlopCounterMode (multiply-add = 2 FLOPs)",
    }
