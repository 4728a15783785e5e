"""Expert-use statistics of MoE layers: which experts the routers pick, per layer and epoch.

Reads ``pl_module.last_routing`` (set by ``BaseDetector.training_step`` from
``DetectorOutput.routing``) after every training batch and logs, per layer, the fraction of
assignments each expert received, the normalised entropy of that distribution (1 = perfectly
balanced) and the largest share (collapse shows up as a share near 1).
"""

from __future__ import annotations

import math

import lightning as L
import torch


class RoutingStatistics(L.Callback):
    """The counts so far of the running epoch travel in checkpoints, so an epoch resumed in its middle
    logs the same statistics as one run through."""

    def __init__(self, log_per_expert: bool = True):
        self.log_per_expert = log_per_expert
        self._counts: dict[str, torch.Tensor] = {}
        self._epoch: int | None = None  # the epoch the counts belong to
        self._restored_epoch: int | None = None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self._restored_epoch is not None and self._restored_epoch == trainer.current_epoch:
            self._restored_epoch = None  # resumed inside this epoch: keep its counts so far
            return
        self._restored_epoch = None
        self._counts, self._epoch = {}, trainer.current_epoch

    def state_dict(self) -> dict:
        return {"epoch": self._epoch, "counts": {layer: counts.clone() for layer, counts in self._counts.items()}}

    def load_state_dict(self, state_dict: dict) -> None:
        self._epoch = self._restored_epoch = state_dict.get("epoch")
        self._counts = {layer: counts.double() for layer, counts in state_dict.get("counts", {}).items()}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        for layer, info in (getattr(pl_module, "last_routing", None) or {}).items():
            num_experts = info.num_experts or info.probs.shape[-1]
            counts = torch.bincount(info.indices.detach().reshape(-1).cpu(), minlength=num_experts).double()
            self._counts[layer] = self._counts.get(layer, torch.zeros(num_experts, dtype=torch.float64)) + counts

    def expert_shares(self) -> dict[str, torch.Tensor]:
        return {layer: counts / counts.sum().clamp_min(1) for layer, counts in self._counts.items()}

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        for layer, share in self.expert_shares().items():
            nonzero = share[share > 0]
            entropy = float(-(nonzero * nonzero.log()).sum()) / math.log(len(share)) if len(share) > 1 else 1.0
            pl_module.log(f"routing/{layer}/entropy", entropy)
            pl_module.log(f"routing/{layer}/max_share", float(share.max()))
            if self.log_per_expert:
                for expert, value in enumerate(share.tolist()):
                    pl_module.log(f"routing/{layer}/expert{expert}", value)
