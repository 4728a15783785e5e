"""Building a detector's optimiser from its config factory, with ``fused: auto``, and the detector's
optimiser set-up (:class:`OptimizerSetup`, a mixin of :class:`detectors.base.BaseDetector`: which
parameters, which schedule, stepped per epoch or per step).

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


class OptimizerSetup:
    """``parameter_groups`` and Lightning's ``configure_optimizers`` from ``optimizer_factory``,
    ``scheduler_factory`` and ``scheduler_interval`` (set by :class:`detectors.base.BaseDetector`)."""

    def parameter_groups(self) -> list[dict[str, Any]] | Any:
        """What the optimiser updates; methods with frozen parts or per-group lrs override this."""
        return [p for p in self.parameters() if p.requires_grad]

    def configure_optimizers(self):
        groups = self.parameter_groups()
        optimizer = build_optimizer(self.optimizer_factory, groups)  # resolves fused: auto (detectors/optimizers.py)
        if self.scheduler_factory is None:
            return optimizer
        kwargs = {"optimizer": optimizer}
        keywords = getattr(self.scheduler_factory, "keywords", {})
        if "total_steps" in inspect.signature(self.scheduler_factory).parameters and "total_steps" not in keywords:
            # Step schedules over the whole run (warm-up cosine) learn their length from the trainer.
            kwargs["total_steps"] = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(**kwargs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval}}
