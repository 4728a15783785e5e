"""Figures of a run's test (``conf/plots``): PNG files in ``<run dir>/plots/`` and, when a W&B
logger is on, the same images logged to the W&B run under ``plots/<name>``.

While the test sets are scored, a forward hook on the detector keeps what each batch's
``DetectorOutput`` holds beside the scores: the routing of every MoE layer (expert usage) and, for
a fixed random sample of frames, the pooled features (t-SNE). When testing ends, the scores come
from the detector's gathered test results (the rows of ``predictions/<set>.csv``) and every figure
switched on is drawn with ``evaluation.plots``:

- ``roc_det_<level>.png``: ROC and DET curves of every test set, frame and video level;
- ``scores_by_domain.png``, ``scores_by_type.png``: P(fake) histograms, real vs fake;
- ``expert_usage_by_domain.png``, ``expert_usage_by_type.png`` (MoE detectors): per layer, the
  share of each group's routing weight that went to each expert;
- ``tsne.png`` (``plots.tsne=true``): pooled features by domain and by label;
- ``gradcam_<set>.png`` (``plots.gradcam=true``): Grad-CAM of P(fake) on a few faces per set.

A figure that fails does not fail the run (its results are still written): the error is logged
with its traceback and listed in ``plots/failed.json``.

Under DDP, expert usage, t-SNE and Grad-CAM use rank 0's shard of each test set; the ROC, DET and
histograms use every frame. Nothing is drawn for a stage other than test.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.loggers import Logger, WandbLogger

from evaluation import plots
from evaluation.results import atomic_write_json

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "roc": True,
    "histograms": True,
    "expert_usage": True,
    "tsne": False,
    "tsne_max_points": 2000,
    "gradcam": False,
    "gradcam_faces": 8,
    "dpi": 110,
}


def routing_shares(indices: torch.Tensor, weights: torch.Tensor, num_experts: int, batch_size: int) -> torch.Tensor:
    """(B, E) share of each sample's routing weight per expert, from token-level ``indices`` /
    ``weights`` (T, k) whose rows are sample-major (T = B x tokens per sample, as
    ``detectors.moe.routing`` flattens them)."""
    tokens = indices.shape[0]
    if tokens % batch_size:
        raise ValueError(f"routing of {tokens} tokens for a batch of {batch_size}: expected a multiple (sample-major tokens)")
    dense = torch.zeros(tokens, num_experts, dtype=torch.float64)
    dense.scatter_add_(1, indices.long().cpu(), weights.detach().double().cpu())
    per_sample = dense.reshape(batch_size, tokens // batch_size, num_experts).sum(dim=1)
    return per_sample / per_sample.sum(dim=1, keepdim=True).clamp_min(1e-12)


class RunPlots(L.Callback):
    """``out_dir``: where the PNG files go; ``settings``: the ``plots`` config (unknown keys are errors)."""

    def __init__(self, out_dir: str, settings: Mapping[str, Any] | None = None):
        unknown = sorted(set(settings or {}) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"plots: unknown setting(s) {unknown}; known: {sorted(DEFAULTS)}")
        self.out_dir = Path(out_dir)
        self.settings = {**DEFAULTS, **dict(settings or {})}
        self.written: list[Path] = []
        self.failures: dict[str, str] = {}
        self._hook = None
        self._last_output = None
        self._routing: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        self._features: list[tuple[int, np.ndarray, np.ndarray]] = []
        self._feature_rows: dict[int, np.ndarray] = {}

    # -- collecting while the test sets are scored ----------------------------------------------
    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._routing, self._features, self.written = {}, [], []
        self._feature_rows, self.failures = {}, {}
        if self.settings["tsne"]:
            sets = trainer.datamodule.eval_sets("test")
            per_set = max(1, int(self.settings["tsne_max_points"]) // max(1, len(sets)))
            generator = np.random.default_rng(0)
            for index, eval_set in enumerate(sets):
                rows = len(eval_set.frames)
                self._feature_rows[index] = np.sort(generator.choice(rows, size=min(rows, per_set), replace=False))
        if self.settings["expert_usage"] or self.settings["tsne"]:
            self._hook = pl_module.register_forward_hook(self._keep_output)

    def _keep_output(self, module, inputs, output) -> None:
        self._last_output = output

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx: int = 0) -> None:
        output, self._last_output = self._last_output, None
        if output is None:
            return
        rows = batch["index"].detach().cpu().numpy()
        set_index = np.full(len(rows), dataloader_idx)
        if self.settings["expert_usage"] and "expert_usage" not in self.failures:
            try:
                for layer, info in (getattr(output, "routing", None) or {}).items():
                    experts = int(info.num_experts or info.probs.shape[-1])
                    shares = routing_shares(info.indices, info.weights, experts, len(rows)).numpy()
                    self._routing.setdefault(layer, []).append((set_index, rows, shares))
            except Exception as error:  # stop collecting; the test itself goes on
                self._routing = {}
                self._fail("expert_usage", error)
        features = getattr(output, "features", None)
        if self.settings["tsne"] and features is not None:
            keep = np.isin(rows, self._feature_rows.get(dataloader_idx, []))
            if keep.any():
                chosen = features.detach().float().cpu().numpy()[keep]
                self._features.append((dataloader_idx, rows[keep], chosen))

    # -- drawing ----------------------------------------------------------------------------------
    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if not trainer.is_global_zero:
            return
        results = getattr(pl_module, "eval_results", {}).get("test") or {}
        predictions = {name: result["predictions"] for name, result in results.items()}
        if not predictions:
            log.warning("plots: the test produced no predictions; no figure drawn")
            return
        sets = trainer.datamodule.eval_sets("test")
        dpi = int(self.settings["dpi"])
        pooled = pd.concat(predictions.values(), ignore_index=True)
        jobs: list[tuple[str, Any]] = []
        if self.settings["roc"]:
            for level in plots.LEVELS:
                jobs.append((f"roc_det_{level}", lambda level=level: plots.plot_roc_det(predictions, level, self.out_dir / f"roc_det_{level}.png", dpi=dpi)))
        if self.settings["histograms"]:
            for by in ("domain", "type"):
                jobs.append((f"scores_by_{by}", lambda by=by: plots.plot_score_histograms(pooled, by, self.out_dir / f"scores_by_{by}.png", dpi=dpi)))
        if self.settings["expert_usage"] and not self._routing and "expert_usage" not in self.failures:
            log.info("plots: %s returned no routing at test (no MoE layer routes here); no expert-usage heatmap", type(pl_module).__name__)
        if self.settings["expert_usage"] and self._routing:
            for by in ("domain", "type"):
                jobs.append((f"expert_usage_by_{by}", lambda by=by: plots.plot_expert_usage(self._expert_usage(sets, by), by, self.out_dir / f"expert_usage_by_{by}.png", dpi=dpi)))
        if self.settings["tsne"]:
            jobs.append(("tsne", lambda: self._draw_tsne(sets, dpi)))
        if self.settings["gradcam"]:
            from callbacks.gradcam import draw_gradcam

            for eval_set in sets:
                path = self.out_dir / f"gradcam_{eval_set.name}.png"
                jobs.append((path.stem, lambda s=eval_set, p=path: draw_gradcam(pl_module, s, int(self.settings["gradcam_faces"]), p, dpi)))
        for name, job in jobs:
            try:
                written = job()
            except Exception as error:  # a figure must not cost the run its results: logged and listed
                self._fail(name, error)
                continue
            if written is not None:
                self._add(written)
        if self.failures:
            atomic_write_json(self.out_dir / "failed.json", self.failures)
            log.error("plots: %d figure(s) failed, listed in %s", len(self.failures), self.out_dir / "failed.json")
        log_figures(trainer.loggers, self.written)
        self._routing, self._features = {}, []

    def _fail(self, name: str, error: BaseException) -> None:
        self.failures[name] = f"{type(error).__name__}: {error}"
        log.error("plots: %s failed: %s", name, self.failures[name], exc_info=error)

    def _add(self, path: Path) -> None:
        self.written.append(path)
        log.info("wrote %s", path)

    def _group_names(self, sets, set_index: np.ndarray, rows: np.ndarray, by: str) -> np.ndarray:
        names = np.empty(len(rows), dtype=object)
        for index in np.unique(set_index):
            chosen = set_index == index
            names[chosen] = sets[int(index)].frames[by].astype(str).to_numpy()[rows[chosen]]
        return names

    def _expert_usage(self, sets, by: str) -> dict[str, pd.DataFrame]:
        usage = {}
        for layer, parts in self._routing.items():
            set_index = np.concatenate([p[0] for p in parts])
            rows = np.concatenate([p[1] for p in parts])
            shares = np.concatenate([p[2] for p in parts])
            groups = self._group_names(sets, set_index, rows, by)
            table = pd.DataFrame(shares, columns=list(range(shares.shape[1])))
            table[by] = groups
            usage[layer] = table.groupby(by).mean().sort_index()
        return usage

    def _draw_tsne(self, sets, dpi: int) -> Path | None:
        if not self._features:
            log.warning("plots: tsne=true but the detector returned no pooled features; no t-SNE drawn")
            return None
        set_index = np.concatenate([np.full(len(p[1]), p[0]) for p in self._features])
        rows = np.concatenate([p[1] for p in self._features])
        features = np.concatenate([p[2] for p in self._features])
        domains = self._group_names(sets, set_index, rows, "domain")
        labels = np.concatenate(
            [sets[int(i)].frames["label"].to_numpy()[rows[set_index == i]] for i in np.unique(set_index)]
        )
        order = np.argsort(set_index, kind="stable")  # labels were concatenated set by set
        return plots.plot_tsne(features[order], domains[order], labels, self.out_dir / "tsne.png", dpi=dpi)

def log_figures(loggers: Iterable[Logger], paths: Iterable[Path], prefix: str = "plots") -> None:
    """Log PNG files as images to every W&B logger of a run (``<prefix>/<file stem>``): the test
    figures, and figures drawn after testing (the robustness curves of ``+robustness``). Through
    ``log_image``, so a lost W&B connection is reported and counted, not raised
    (callbacks/wandb_logger.py)."""
    paths = list(paths)
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            for path in paths:
                logger.log_image(key=f"{prefix}/{Path(path).stem}", images=[str(path)])
