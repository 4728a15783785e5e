"""The shared base of every detector: loss assembly, optimisation, and honest evaluation.

A method implements ``forward(images, batch) -> DetectorOutput`` (and, only where its training
differs, its own ``training_step``). The base composes three parts, one job each:
``detectors/loss_assembly.py`` turns outputs into ``task loss + sum(weight * aux)`` with every
component logged; ``detectors/evaluation_collector.py`` scores each validation/test set after
gathering across DDP ranks, computes frame- and video-level metrics and keeps the predictions for
the results files; ``detectors/optimizers.py`` builds the optimiser and schedule. What stays here is
the state they share (settings, the validation threshold buffer, guards) and the checkpoint identity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch

from common.choices import check_choice
from detectors.evaluation_collector import EvaluationCollector
from detectors.guards import GuardSettings, LossGuard
from detectors.loss_assembly import LossAssembly
from detectors.optimizers import OptimizerSetup
from detectors.output import DetectorOutput
from detectors.weights_file import IDENTITY_KEY, check_identity, identity


class BaseDetector(LossAssembly, EvaluationCollector, OptimizerSetup, L.LightningModule):
    """``optimizer``/``scheduler`` are partials from config (``_partial_: true``);
    ``aux_loss_weights`` maps each auxiliary loss the detector returns to its weight."""

    # True where a training step can leave trainable parameters without a gradient (sparse expert
    # routing, phase-wise optimisation, meta-learning's inner-loop parameters): under DDP the pipeline
    # then uses ``ddp_find_unused_parameters_true`` instead of ``ddp`` (engine.pipeline.ddp_strategy).
    ddp_find_unused_parameters: bool = False

    def __init__(
        self,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "epoch",
        aux_loss_weights: Mapping[str, float] | None = None,
        input_size: int = 224,
        normalization: str = "imagenet",
        channels_last: bool = False,
        label_smoothing: float = 0.0,
    ):
        super().__init__()
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_interval = check_choice("detector.scheduler_interval", scheduler_interval, ("epoch", "step"))
        self.aux_loss_weights = {str(k): float(v) for k, v in (aux_loss_weights or {}).items()}
        self.input_size = input_size
        self.normalization = normalization
        self.channels_last = channels_last
        self.label_smoothing = label_smoothing
        # The threshold chosen on validation (EER point) travels inside checkpoints.
        self.register_buffer("val_threshold", torch.tensor(float("nan")))
        self.eval_results: dict[str, dict[str, dict]] = {"validate": {}, "test": {}}
        self._eval_buffers: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        # Routing of the last training step, read by callbacks.RoutingStatistics.
        self.last_routing: dict = {}
        self.configure_guards(GuardSettings())

    def configure_guards(self, settings: GuardSettings) -> None:
        """Non-finite / divergence checks (detectors/guards.py); the pipeline passes ``cfg.guards``."""
        self.guards = settings
        self._loss_guard = LossGuard(settings)

    # -- model ---------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor, batch: Mapping[str, torch.Tensor] | None = None) -> DetectorOutput:
        raise NotImplementedError

    def setup(self, stage: str) -> None:
        if self.channels_last:
            self.to(memory_format=torch.channels_last)

    def on_train_start(self) -> None:
        # Lightning does not call train() when fitting starts (it restores each module's mode after validation),
        # so a detector's own train() (frozen parts kept in eval) runs here, once; docs/ARCHITECTURE.md.
        self.train()

    def _images(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        images = batch["image"]
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    # -- checkpoints ---------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Which detector wrote the file: loading it into another one is refused even if shapes match.
        checkpoint[IDENTITY_KEY] = identity(self)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        check_identity(checkpoint, self, "the checkpoint being loaded")
