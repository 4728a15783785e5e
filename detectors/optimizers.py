"""Building a detector's optimiser from its config factory, with ``fused: auto``.

``detector.optimizer.fused`` is passed to torch's optimiser as it is (``true``/``false``), except
``auto``: the fused (single-kernel) implementation where every parameter is on a CUDA device and the
optimiser has one (Adam, AdamW, SGD), the default (foreach) implementation elsewhere, e.g. on the CPU
of a demo run. Add it to a run with ``+detector.optimizer.fused=auto`` (the GPU benchmark,
``benchmarks/gpu.sh``, uses fused AdamW the same way).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any

import torch

log = logging.getLogger(__name__)


def _tensors(params: Iterable[Any]) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    for item in params:
        if isinstance(item, dict):
            out.extend(item["params"])
        else:
            out.append(item)
    return out


def build_optimizer(factory: Callable[..., torch.optim.Optimizer], params: Any) -> torch.optim.Optimizer:
    """``factory(params=params)``, with a ``fused="auto"`` keyword of a ``functools.partial`` resolved first."""
    keywords = getattr(factory, "keywords", None) or {}
    if keywords.get("fused") != "auto":
        return factory(params=params)
    params = list(params)
    base = factory.func
    rest = {k: v for k, v in keywords.items() if k != "fused"}
    accepts = "fused" in inspect.signature(base).parameters
    on_cuda = all(t.is_cuda for t in _tensors(params))
    fused = accepts and on_cuda and bool(_tensors(params))
    if not accepts:
        log.info("optimizer %s has no fused implementation: fused=auto uses the default one", getattr(base, "__name__", base))
    return functools.partial(base, *factory.args, **rest, **({"fused": True} if fused else {}))(params=params)
