"""``compile`` in conf/train.yaml: the detector through ``torch.compile`` (off by default).

``compile.enabled=true`` compiles the LightningModule in place (``nn.Module.compile``: its calls go
through the compiled graph, its type, hooks and checkpoint keys stay the same). ``backend`` and
``mode`` are torch.compile's (``inductor``; ``default``, ``reduce-overhead``, ``max-autotune``).
Compiling happens at the first step and its time shows in the first epoch of ``extra.timings``
(callbacks/timings.py); benchmarks/gpu.sh reports it per method. Detectors whose routing gives
data-dependent shapes (DFMoE's per-image expert dispatch) break the graph there and gain less.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch

from common.choices import check_known_keys

log = logging.getLogger(__name__)

KEYS = ("enabled", "backend", "mode")


def maybe_compile(model: torch.nn.Module, settings: Mapping | None) -> bool:
    """Compile ``model`` in place when ``settings.enabled``; True when it was."""
    settings = dict(settings or {})
    check_known_keys("compile", settings, KEYS)
    enabled = settings.get("enabled", False)
    if not isinstance(enabled, bool):
        raise ValueError(f"compile.enabled={enabled!r}: expected true or false")
    if not enabled:
        return False
    backend = settings.get("backend") or "inductor"
    mode = settings.get("mode")
    model.compile(backend=backend, mode=mode)
    log.info("torch.compile: %s (backend %s, mode %s); the first step compiles", type(model).__name__, backend, mode or "default")
    return True
