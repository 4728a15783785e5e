"""The loss of a training step, assembled the same way for every detector: the task loss (binary or
two-class cross-entropy, optional label smoothing) plus ``sum(weight * aux)`` over the auxiliary losses
the detector returns, each weight from ``detector.aux_loss_weights``, every component logged and
checked by the loss guard (``detectors/guards.py``). A mixin of :class:`detectors.base.BaseDetector`,
which holds ``aux_loss_weights``, ``label_smoothing`` and ``_loss_guard``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from detectors.output import DetectorOutput


class LossAssembly:
    """``task_loss``, ``combine_losses``, ``log_losses`` and the default ``training_step``."""

    def task_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if logits.ndim == 2 and logits.shape[1] == 2:
            return F.cross_entropy(logits, labels.long(), label_smoothing=self.label_smoothing)
        logits = logits.reshape(-1)
        targets = labels.float()
        if self.label_smoothing:
            targets = targets * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        return F.binary_cross_entropy_with_logits(logits, targets)

    def combine_losses(self, output: DetectorOutput, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``task + sum(weight * aux)``; every aux loss must have a configured weight."""
        components = {"task": self.task_loss(output.logits, batch["label"])}
        total = components["task"]
        unweighted = sorted(set(output.aux_losses) - set(self.aux_loss_weights))
        if unweighted:
            raise KeyError(
                f"{type(self).__name__} returned auxiliary loss(es) {unweighted} with no weight in "
                f"detector.aux_loss_weights (configured: {sorted(self.aux_loss_weights)}); set a weight (0 to only log)"
            )
        for name, value in output.aux_losses.items():
            components[name] = value
            weight = self.aux_loss_weights[name]
            if weight:
                total = total + weight * value.float()
        return total, components

    def log_losses(self, total: torch.Tensor, components: Mapping[str, torch.Tensor], batch_size: int) -> None:
        # Every training step passes here: a NaN / exploding loss stops the run at this step, by name.
        self._loss_guard.check(total, components, self.global_step, self.current_epoch, type(self).__name__)
        self.log("train/loss", total, prog_bar=True, batch_size=batch_size)
        for name, value in components.items():
            self.log(f"train/loss_{name}", value.detach().float(), batch_size=batch_size)

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        output = self(self._images(batch), batch)
        total, components = self.combine_losses(output, batch)
        self.log_losses(total, components, batch_size=batch["label"].shape[0])
        self.last_routing = output.routing
        return total

