"""Honest evaluation, the same for every detector: each validation/test batch is scored with
``batch=None`` (no method can peek at labels), the scores of each set are gathered across DDP ranks
(``evaluation/gather.py``), non-finite and saturated scores are checked (``detectors/guards.py``),
frame- and video-level metrics computed, the validation EER threshold kept in the ``val_threshold``
buffer, and the predictions kept in ``eval_results`` for the results files. A mixin of
:class:`detectors.base.BaseDetector`, which holds the buffer, ``guards`` and ``eval_results``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch

from detectors.guards import NonFiniteScoresError, check_saturated, nonfinite_message
from evaluation.gather import gather_scores
from evaluation.metrics import all_metrics, eer_threshold, max_eer

log = logging.getLogger(__name__)


class EvaluationCollector:
    """Validation and test steps and epoch ends: collect scores, compute and log metrics."""

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

