"""The shared base of every detector: loss assembly, optimisation, and honest evaluation.

A method implements ``forward(images, batch) -> DetectorOutput`` (and, only where its training
differs, its own ``training_step``). The base turns outputs into ``task loss + sum(weight * aux)``
with every component logged, scores each validation/test set after gathering across DDP ranks,
computes frame- and video-level metrics, and keeps the predictions for the results files.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from detectors.guards import (
    GuardSettings,
    LossGuard,
    NonFiniteScoresError,
    check_saturated,
    nonfinite_message,
)
from detectors.optimizers import build_optimizer
from detectors.output import DetectorOutput
from detectors.weights_file import IDENTITY_KEY, check_identity, identity
from evaluation.gather import gather_scores
from evaluation.metrics import all_metrics, eer_threshold, max_eer

log = logging.getLogger(__name__)


class BaseDetector(L.LightningModule):
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
        if scheduler_interval not in {"epoch", "step"}:
            raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        self.scheduler_interval = scheduler_interval
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

    def _images(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        images = batch["image"]
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    # -- loss --------------------------------------------------------------------------------
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

    # -- evaluation ----------------------------------------------------------------------------
    def _eval_step(self, batch: Mapping[str, torch.Tensor], dataloader_idx: int) -> None:
        output = self(self._images(batch), None)
        scores = output.fake_probability().detach().float()
        self._eval_buffers.setdefault(dataloader_idx, []).append((batch["index"].detach(), scores))

    def validation_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch, dataloader_idx)

    def test_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch, dataloader_idx)

    def on_validation_epoch_start(self) -> None:
        self._eval_buffers = {}

    on_test_epoch_start = on_validation_epoch_start

    def _full_evaluation(self, stage: str) -> bool:
        trainer = self.trainer
        limit = trainer.limit_val_batches if stage == "validate" else trainer.limit_test_batches
        # Lightning: a float is a fraction of the batches, an int a number of batches (1 = one batch).
        return not trainer.fast_dev_run and (limit is None or (isinstance(limit, float) and limit == 1.0))

    def _collect(self, stage: str) -> dict[str, dict]:
        """Gather each set's scores across ranks and compute its metrics."""
        eval_sets = self.trainer.datamodule.eval_sets(stage)
        complete = self._full_evaluation(stage)
        threshold = float(self.val_threshold)
        results = {}
        for idx, eval_set in enumerate(eval_sets):
            parts = self._eval_buffers.get(idx, [])
            device = self.device
            indices = torch.cat([p[0] for p in parts]).to(device) if parts else torch.zeros(0, dtype=torch.long, device=device)
            scores = torch.cat([p[1] for p in parts]).to(device) if parts else torch.zeros(0, device=device)
            full = gather_scores(indices, scores, len(eval_set.frames), eval_set.name, require_complete=complete)
            # A second gather tells rows scored NaN / inf apart from rows not scored (limit_*_batches).
            finite = gather_scores(indices, torch.isfinite(scores).float(), len(eval_set.frames), eval_set.name, require_complete=complete)
            scored = ~np.isnan(finite)
            nonfinite = scored & (finite == 0.0)
            skipped = int(nonfinite.sum())
            if skipped:
                message = nonfinite_message(eval_set.name, skipped, int(scored.sum()), eval_set.frames.loc[nonfinite, "path"].tolist())
                if self.guards.nonfinite_scores == "error":
                    raise NonFiniteScoresError(f"{type(self).__name__}: {message}")
                log.warning("%s: counted and dropped (guards.nonfinite_scores=skip)", message)
                scored = scored & ~nonfinite
            if stage == "validate" and self.guards.saturation:
                check_saturated(full[scored], eval_set.name, type(self).__name__)
            frames = eval_set.frames.loc[scored]
            predictions = pd.DataFrame(
                {
                    "path": frames["path"].to_numpy(),
                    "video_id": frames["video_id"].to_numpy(),
                    "label": frames["label"].to_numpy(),
                    "domain": frames["domain"].to_numpy(),
                    "type": frames["type"].to_numpy(),
                    "score": full[scored],
                }
            )
            if predictions.empty:
                if skipped:
                    raise NonFiniteScoresError(f"{type(self).__name__}: every scored frame of set {eval_set.name!r} is non-finite")
                continue
            metrics = all_metrics(
                predictions["score"].to_numpy(),
                predictions["label"].to_numpy(),
                predictions["video_id"].to_numpy(),
                val_threshold=None if stage == "validate" or math.isnan(threshold) else threshold,
            )
            results[eval_set.name] = {
                "metrics": metrics, "predictions": predictions, "complete": complete and not skipped, "nonfinite_scores": skipped,
            }
        return results

    def _log_metrics(self, prefix: str, metrics: Mapping[str, Mapping[str, float]]) -> None:
        for level, values in metrics.items():
            level_prefix = prefix if level == "frame" else f"{prefix}video_"
            for key, value in values.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    self.log(f"{level_prefix}{key}", float(value), sync_dist=False)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        results = self._collect("validate")
        self.eval_results["validate"] = results
        for result in results.values():
            self._log_metrics("val/", result["metrics"])
            predictions = result["predictions"]
            if predictions["label"].nunique() == 2:
                self.val_threshold.fill_(eer_threshold(predictions["score"].to_numpy(), predictions["label"].to_numpy()))
            for domain, part in predictions.groupby("domain"):
                if predictions["domain"].nunique() > 1 and part["label"].nunique() == 2:
                    domain_metrics = all_metrics(part["score"].to_numpy(), part["label"].to_numpy(), part["video_id"].to_numpy())
                    self.log(f"val/{domain}/auc", domain_metrics["frame"]["auc"], sync_dist=False)
                    self.log(f"val/{domain}/video_auc", domain_metrics["video"]["auc"], sync_dist=False)
        self._eval_buffers = {}

    def on_test_epoch_end(self) -> None:
        results = self._collect("test")
        self.eval_results["test"] = results
        for name, result in results.items():
            self._log_metrics(f"test/{name}/", result["metrics"])
        if results:
            for level in ("frame", "video"):
                value = max_eer({n: r["metrics"][level]["eer"] for n, r in results.items()})
                self.log(f"test/{'' if level == 'frame' else 'video_'}m_eer", value, sync_dist=False)
        self._eval_buffers = {}

    # -- checkpoints ---------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Which detector wrote the file: loading it into another one is refused even if shapes match.
        checkpoint[IDENTITY_KEY] = identity(self)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        check_identity(checkpoint, self, "the checkpoint being loaded")

    # -- optimisation --------------------------------------------------------------------------
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
