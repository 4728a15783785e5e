"""The suite's figures, drawn from scores, features and routing (matplotlib, Agg backend): ROC and
DET curves, score histograms, expert-usage heatmaps, t-SNE maps and Grad-CAM panels, plus the
atomic PNG writing every figure uses, and the robustness curves of ``engine.robustness`` reports.

Pure functions of arrays and tables: ``callbacks.plots`` collects what a test run produced and
calls them; nothing here knows about Lightning. Every function writes one PNG and returns its path.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation.metrics import video_level
from evaluation.results import atomic_open

LEVELS = ("frame", "video")
REAL_COLOUR, FAKE_COLOUR = "tab:blue", "tab:red"


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed, safe in workers and on clusters)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, out_path: str | os.PathLike, dpi: int = 110) -> Path:
    """Write ``figure`` as PNG atomically (``evaluation.results.atomic_open``) and close it."""
    plt = pyplot()
    target = Path(out_path)
    try:
        with atomic_open(target, binary=True) as handle:
            figure.savefig(handle, format="png", dpi=dpi)
    finally:
        plt.close(figure)
    return target


def level_scores(predictions: pd.DataFrame, level: str) -> tuple[np.ndarray, np.ndarray]:
    """``(scores, labels)`` of a predictions table at frame level, or per video (mean frame score,
    as the video-level metrics)."""
    scores = predictions["score"].to_numpy(dtype=np.float64)
    labels = predictions["label"].to_numpy(dtype=np.int64)
    if level == "frame":
        return scores, labels
    if level != "video":
        raise ValueError(f"level {level!r}: expected one of {list(LEVELS)}")
    video_scores, video_labels, _ = video_level(scores, labels, predictions["video_id"].astype(str).to_numpy())
    return video_scores, video_labels


def plot_roc_det(
    predictions: Mapping[str, pd.DataFrame], level: str, out_path: str | os.PathLike, title: str = "", dpi: int = 110
) -> Path:
    """ROC (left) and DET (right, normal-deviate axes as in NIST's DET plots) of every test set at
    ``level``, one line per set with its AUC / EER in the legend. A one-class set has no curve: it
    is listed in the legend as such instead of silently missing."""
    from scipy.stats import norm
    from sklearn.metrics import det_curve, roc_auc_score, roc_curve

    plt = pyplot()
    figure, (roc_axis, det_axis) = plt.subplots(1, 2, figsize=(10, 4.4))
    ticks = np.array([0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95])
    for name, table in predictions.items():
        scores, labels = level_scores(table, level)
        if len(np.unique(labels)) < 2:
            roc_axis.plot([], [], linestyle="none", label=f"{name}: one class only (n={len(labels)}), no curve")
            continue
        fpr, tpr, _ = roc_curve(labels, scores)
        auc = roc_auc_score(labels, scores)
        line = roc_axis.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f}, n={len(labels)})")[0]
        det_fpr, det_fnr, _ = det_curve(labels, scores)
        clip = (1e-4, 1 - 1e-4)  # 0 and 1 are at infinity on normal-deviate axes
        det_axis.plot(norm.ppf(np.clip(det_fpr, *clip)), norm.ppf(np.clip(det_fnr, *clip)), color=line.get_color())
        eer_index = int(np.argmin(np.abs(det_fpr - det_fnr)))
        eer = (det_fpr[eer_index] + det_fnr[eer_index]) / 2
        det_axis.plot([], [], color=line.get_color(), label=f"{name} (EER~{eer:.3f})")
    roc_axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    roc_axis.set(xlabel="false positive rate (reals flagged fake)", ylabel="true positive rate (fakes caught)", xlim=(0, 1), ylim=(0, 1.01))
    roc_axis.set_title(f"ROC, {level} level", fontsize=10)
    det_axis.set_xticks(norm.ppf(ticks), [f"{t:g}" for t in ticks])
    det_axis.set_yticks(norm.ppf(ticks), [f"{t:g}" for t in ticks])
    limit = norm.ppf([0.0005, 0.97])
    det_axis.set(xlim=limit, ylim=limit, xlabel="false positive rate", ylabel="false negative rate (fakes missed)")
    det_axis.plot(limit, limit, color="grey", linestyle=":", linewidth=1)
    det_axis.set_title(f"DET, {level} level", fontsize=10)
    for axis in (roc_axis, det_axis):
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=7, loc="lower right" if axis is roc_axis else "upper right")
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return save_figure(figure, out_path, dpi)


def _grid(panels: int, max_columns: int = 4) -> tuple[int, int]:
    columns = max(1, min(max_columns, panels))
    return math.ceil(panels / columns), columns


def plot_score_histograms(
    predictions: pd.DataFrame, by: str, out_path: str | os.PathLike, title: str = "", bins: int = 20, dpi: int = 110
) -> Path:
    """One panel per value of ``by`` (``domain`` or ``type``): P(fake) of its real and its fake
    frames, as two histograms over [0, 1] (counts, with n in the legend)."""
    plt = pyplot()
    groups = sorted(predictions[by].astype(str).unique())
    rows, columns = _grid(len(groups))
    # constrained layout: laid out once while drawing (tight_layout draws the whole figure an extra time)
    figure, axes = plt.subplots(rows, columns, figsize=(3.3 * columns, 2.6 * rows), squeeze=False, layout="constrained")
    edges = np.linspace(0.0, 1.0, bins + 1)
    for index, group in enumerate(groups):
        axis = axes[index // columns][index % columns]
        part = predictions[predictions[by].astype(str) == group]
        for label, name, colour in ((0, "real", REAL_COLOUR), (1, "fake", FAKE_COLOUR)):
            scores = part.loc[part["label"] == label, "score"].to_numpy(dtype=np.float64)
            if len(scores):
                # One filled step outline per histogram (``hist`` would draw a patch per bin; same counts)
                counts, _ = np.histogram(scores, bins=edges)
                axis.stairs(counts, edges, fill=True, alpha=0.55, color=colour, label=f"{name} (n={len(scores)})")
        axis.set_title(group, fontsize=9)
        axis.set_xlim(0, 1)
        axis.set_xlabel("P(fake)", fontsize=8)
        axis.set_ylabel("frames", fontsize=8)
        axis.legend(fontsize=7)
        axis.grid(alpha=0.3)
    for index in range(len(groups), rows * columns):
        axes[index // columns][index % columns].axis("off")
    figure.suptitle(title or f"P(fake) by {by}", fontsize=10)
    return save_figure(figure, out_path, dpi)


def plot_expert_usage(
    usage: Mapping[str, pd.DataFrame], by: str, out_path: str | os.PathLike, title: str = "", dpi: int = 110
) -> Path:
    """One heatmap per MoE layer: rows are the values of ``by`` (domains or types), columns the
    experts, each cell the share of that group's routing weight the expert received (rows sum to
    1), on one colour scale for every layer. Different rows = experts specialised by group."""
    plt = pyplot()
    layers = list(usage)
    rows, columns = _grid(len(layers), max_columns=3)
    first = usage[layers[0]]
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(max(3.0, 0.45 * first.shape[1] + 2.2) * columns + 1.5, (0.32 * first.shape[0] + 1.3) * rows),
        squeeze=False,
        layout="constrained",  # room for the group names and the shared colour bar
    )
    image = None
    for index, layer in enumerate(layers):
        axis = axes[index // columns][index % columns]
        table = usage[layer]
        image = axis.imshow(table.to_numpy(dtype=np.float64), vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
        axis.set_xticks(range(table.shape[1]), [str(c) for c in table.columns], fontsize=7)
        axis.set_yticks(range(table.shape[0]), [str(r) for r in table.index], fontsize=7)
        axis.set_title(layer, fontsize=8)
        axis.set_xlabel("expert", fontsize=7)
        if table.shape[0] * table.shape[1] <= 64:
            for (row, column), value in np.ndenumerate(table.to_numpy(dtype=np.float64)):
                axis.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=6, color="white" if value < 0.6 else "black")
    for index in range(len(layers), rows * columns):
        axes[index // columns][index % columns].axis("off")
    if image is not None:
        figure.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="share of routing weight")
    figure.suptitle(title or f"expert usage by {by}", fontsize=10)
    return save_figure(figure, out_path, dpi)


def plot_tsne(
    features: np.ndarray,
    domains: Sequence[str],
    labels: Sequence[int],
    out_path: str | os.PathLike,
    seed: int = 0,
    title: str = "",
    dpi: int = 110,
) -> Path:
    """t-SNE (scikit-learn) of pooled features, drawn twice: coloured by domain (marker = label)
    and coloured by label, as the papers' feature figures."""
    from sklearn.manifold import TSNE

    plt = pyplot()
    features = np.asarray(features, dtype=np.float64)
    if len(features) < 5:
        raise ValueError(f"t-SNE needs at least 5 feature vectors, got {len(features)}")
    perplexity = float(min(30.0, max(2.0, (len(features) - 1) / 3)))
    points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)
    domains = np.asarray([str(d) for d in domains])
    labels = np.asarray(labels, dtype=np.int64)
    figure, (by_domain, by_label) = plt.subplots(1, 2, figsize=(11, 4.8))
    colours = plt.get_cmap("tab10")
    for index, domain in enumerate(sorted(set(domains))):
        for label, marker in ((0, "o"), (1, "x")):
            chosen = (domains == domain) & (labels == label)
            if chosen.any():
                by_domain.scatter(
                    points[chosen, 0], points[chosen, 1], s=10, marker=marker, color=colours(index % 10),
                    label=f"{domain} {'real' if label == 0 else 'fake'}",
                )
    for label, name, colour in ((0, "real", REAL_COLOUR), (1, "fake", FAKE_COLOUR)):
        chosen = labels == label
        if chosen.any():
            by_label.scatter(points[chosen, 0], points[chosen, 1], s=8, color=colour, alpha=0.7, label=f"{name} (n={int(chosen.sum())})")
    by_domain.set_title("by domain (o real, x fake)", fontsize=9)
    by_label.set_title("by label", fontsize=9)
    for axis in (by_domain, by_label):
        axis.set_xticks([])
        axis.set_yticks([])
        axis.legend(fontsize=7, markerscale=1.5)
    figure.suptitle(title or f"t-SNE of pooled features ({len(features)} frames)", fontsize=10)
    figure.tight_layout()
    return save_figure(figure, out_path, dpi)


def plot_heatmap_overlays(
    images: Sequence[np.ndarray], maps: Sequence[np.ndarray], captions: Sequence[str], out_path: str | os.PathLike, title: str = "", dpi: int = 110
) -> Path:
    """Faces (RGB float in [0, 1]) with a heatmap in [0, 1] (Grad-CAM, attention) drawn over each:
    the face on the top row, the overlay below, a caption per column."""
    plt = pyplot()
    count = len(images)
    figure, axes = plt.subplots(2, count, figsize=(1.9 * count, 4.2), squeeze=False)
    for index, (image, heat, caption) in enumerate(zip(images, maps, captions)):
        axes[0][index].imshow(np.clip(image, 0, 1))
        axes[1][index].imshow(np.clip(image, 0, 1))
        axes[1][index].imshow(heat, cmap="jet", alpha=0.45, vmin=0.0, vmax=1.0)
        axes[0][index].set_title(caption, fontsize=7)
        for row in (0, 1):
            axes[row][index].axis("off")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return save_figure(figure, out_path, dpi)


def curve(report: Mapping, test_set: str, corruption: str, metric: str, level: str) -> tuple[list[int], list[float]]:
    """(severities, values) of one corruption's curve in a robustness report (null -> NaN)."""
    points = report["metrics"][test_set][corruption]
    severities = sorted(int(s) for s in points)
    values = [points[str(s)][level][metric] for s in severities]
    return severities, [math.nan if v is None else float(v) for v in values]


def plot_robustness(
    reports: Mapping[str, Mapping],
    test_set: str,
    out_path: str | os.PathLike,
    metric: str = "auc",
    level: str = "frame",
    dpi: int = 120,
) -> Path:
    """Robustness curves (``engine.robustness`` reports): a panel per corruption (plus their
    average), one line per report (model label), metric against severity. Rates are drawn in
    percent, as the papers' figures do."""
    from evaluation.robustness import CORRUPTIONS, SEVERITIES

    plt = pyplot()
    first = next(iter(reports.values()))
    corruptions = list(first["metrics"][test_set])
    panels = [*corruptions, "average"] if len(corruptions) > 1 else corruptions
    rows, columns = _grid(len(panels))
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.8 * rows), squeeze=False)
    scale = 100.0 if metric not in ("n", "n_pos", "n_neg", "eer_threshold") else 1.0
    for index, panel in enumerate(panels):
        axis = axes[index // columns][index % columns]
        for label, report in reports.items():
            if panel == "average":
                curves = [curve(report, test_set, c, metric, level) for c in corruptions]
                severities = curves[0][0]
                values = list(np.nanmean(np.array([c[1] for c in curves]), axis=0))
            else:
                severities, values = curve(report, test_set, panel, metric, level)
            axis.plot(severities, [v * scale for v in values], marker="o", label=label)
        if scale == 100.0:  # rates: keep 100 % in view, so a flat curve does not look like a drop
            lowest = np.nanmin([line.get_ydata().min() for line in axis.get_lines()] or [0.0])
            axis.set_ylim(max(0.0, float(lowest) - 5.0) if np.isfinite(lowest) else 0.0, 101.0)
        axis.set_title("Average" if panel == "average" else CORRUPTIONS[panel].label, fontsize=9)
        axis.set_xticks(range(0, max(SEVERITIES) + 1))
        axis.set_xlabel("severity", fontsize=8)
        axis.set_ylabel(f"{level} {metric.upper()}" + (" (%)" if scale == 100.0 else ""), fontsize=8)
        axis.grid(alpha=0.3)
    for index in range(len(panels), rows * columns):
        axes[index // columns][index % columns].axis("off")
    if len(reports) > 1:
        axes[0][0].legend(fontsize=7)
    figure.suptitle(f"Robustness on {test_set}", fontsize=10)
    figure.tight_layout()
    return save_figure(figure, out_path, dpi)


def plot_robustness_report(report: Mapping, out_dir: str | os.PathLike, label: str = "model") -> list[Path]:
    """The figures of one robustness report: ``<out_dir>/<test set>_<level>_<metric>.png`` per test set."""
    metric, level = report["settings"]["plot_metric"], report["settings"]["plot_level"]
    return [
        plot_robustness({label: report}, test_set, Path(out_dir) / f"{test_set}_{level}_{metric}.png", metric, level)
        for test_set in report["metrics"]
    ]


def plot_robustness_comparison(
    reports: Mapping[str, Mapping], out_dir: str | os.PathLike, metric: str | None = None, level: str | None = None
) -> list[Path]:
    """Overlaid curves of several reports (by label), ``<out_dir>/compare_<test set>_<level>_<metric>.png``
    per test set they share; ``metric`` and ``level`` default to the first report's plot settings."""
    first = next(iter(reports.values()))
    metric = str(metric if metric is not None else first["settings"]["plot_metric"])
    level = str(level if level is not None else first["settings"]["plot_level"])
    shared = set.intersection(*(set(r["metrics"]) for r in reports.values()))
    return [
        plot_robustness(reports, name, Path(out_dir) / f"compare_{name}_{level}_{metric}.png", metric, level)
        for name in sorted(shared)
    ]
