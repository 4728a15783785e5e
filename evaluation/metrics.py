"""Binary detection metrics for face forgery / face attack detection (pure numpy).

Conventions shared by every function here:

* label 1 = fake / attack = the positive class, label 0 = real / live;
* a score is P(fake); a sample is classified as fake/attack when ``score >= threshold``;
* the ROC curve has one operating point per distinct score (ties are never split) plus the
  point (FPR 0, TPR 0) for the threshold ``+inf``; between two adjacent operating points the
  curve is the straight segment (the classifier that randomises between them). AUC, EER and
  the prior-weighted EER are read on this polyline, so AUC and AP equal scikit-learn's
  ``roc_auc_score`` / ``average_precision_score`` (scikit-learn is only used by the tests);
* EER: the point where FNR (= APCER, missed fakes) equals FPR (= BPCER, real flagged as
  fake), found by linear interpolation between the two operating points that bracket the
  crossing. EER = (FPR + FNR) / 2 there, which equals both rates;
* TPR@FPR=f is read conservatively on the ROC step function, without interpolation: the TPR
  of the operating point with the largest FPR that is still <= f (equivalently the lowest
  threshold whose FPR <= f; the highest TPR reachable without exceeding f);
* a metric that needs both classes (AUC, AP, EER, EER threshold, TPR@FPR) is NaN when the set
  holds one class only, with an :class:`UndefinedMetricWarning`; nothing here raises for that.

Bad input (empty arrays, NaN/inf scores, labels outside {0, 1}, mismatched lengths) raises
``ValueError`` naming the problem: such input means an upstream bug, never a metric value.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

TPR_AT_FPR_TARGETS: tuple[float, ...] = (0.1, 0.01, 0.001)

METRIC_NAMES: tuple[str, ...] = (
    "auc",
    "ap",
    "eer",
    "eer_threshold",
    "acc",
    "acc_val_thr",
    "apcer",
    "bpcer",
    "acer",
    *(f"tpr@fpr={target:g}" for target in TPR_AT_FPR_TARGETS),
    "n",
    "n_pos",
    "n_neg",
)
"""Keys of the dict returned by :func:`binary_metrics`, in order."""


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined for this input (one class only, no threshold) and is reported NaN."""


@dataclass(frozen=True)
class RocPoints:
    """The ROC operating points, one per distinct score, by decreasing threshold.

    ``thresholds[0]`` is ``+inf`` (nothing classified as fake); ``thresholds[i]`` for i >= 1 is
    a distinct score, and the point counts ``score >= thresholds[i]`` as fake. ``true_positives``
    and ``false_positives`` are counts, ``tpr``/``fpr`` the rates (NaN when the class is absent).
    """

    thresholds: np.ndarray
    true_positives: np.ndarray
    false_positives: np.ndarray
    n_pos: int
    n_neg: int

    @property
    def tpr(self) -> np.ndarray:
        return self.true_positives / self.n_pos if self.n_pos else np.full(self.thresholds.shape, np.nan)

    @property
    def fpr(self) -> np.ndarray:
        return self.false_positives / self.n_neg if self.n_neg else np.full(self.thresholds.shape, np.nan)


def _validated(scores, labels, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``scores`` as float64 and ``labels`` as int64 1-D arrays, or raise ValueError."""
    try:
        score_array = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: scores must be numbers (P(fake)), got {type(scores).__name__}") from error
    label_array = np.asarray(labels)
    if score_array.ndim != 1 or label_array.ndim != 1:
        raise ValueError(
            f"{where}: scores and labels must be 1-D, got shapes {score_array.shape} and {label_array.shape}"
        )
    if score_array.size == 0:
        raise ValueError(f"{where}: got 0 scores and {label_array.size} labels; nothing to evaluate")
    if score_array.size != label_array.size:
        raise ValueError(
            f"{where}: {score_array.size} scores but {label_array.size} labels; expected one label per score"
        )
    not_finite = ~np.isfinite(score_array)
    if not_finite.any():
        first = int(np.flatnonzero(not_finite)[0])
        raise ValueError(
            f"{where}: {int(not_finite.sum())} of {score_array.size} scores are NaN or infinite "
            f"(first at index {first}: {score_array[first]}); expected finite P(fake) values"
        )
    if label_array.dtype == bool:
        label_array = label_array.astype(np.int64)
    # Elementwise comparison is False for strings, None and NaN, so those count as bad labels.
    is_binary = np.asarray((label_array == 0) | (label_array == 1), dtype=bool)
    if not is_binary.all():
        bad = label_array[~is_binary]
        raise ValueError(
            f"{where}: {bad.size} of {label_array.size} labels are not 0 (real) or 1 (fake/attack): "
            f"examples {np.unique(bad.astype(str))[:5].tolist()}"
        )
    return score_array, label_array.astype(np.int64)


def _warn_one_class(where: str, n_pos: int, n_neg: int, metrics: str) -> None:
    present, count, absent = ("fake/attack (label 1)", n_pos, "real (label 0)")
    if n_pos == 0:
        present, count, absent = ("real (label 0)", n_neg, "fake/attack (label 1)")
    warnings.warn(
        f"{where}: {metrics} undefined (reported NaN): the set holds {count} {present} sample(s) "
        f"and no {absent} sample",
        UndefinedMetricWarning,
        stacklevel=3,
    )


def roc_points(scores, labels) -> RocPoints:
    """ROC operating points of ``scores`` against ``labels`` (see :class:`RocPoints`)."""
    score_array, label_array = _validated(scores, labels, "roc_points")
    return _roc_points(score_array, label_array)


def _roc_points(scores: np.ndarray, labels: np.ndarray) -> RocPoints:
    # Ties are grouped into one operating point below, so the sort need not be stable.
    order = np.argsort(scores)[::-1]
    sorted_scores = scores[order]
    sorted_labels = labels[order]
    # The last index of every run of equal scores: one operating point per distinct score, so
    # tied samples always change class together.
    run_ends = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_scores.size - 1]
    true_positives = np.cumsum(sorted_labels, dtype=np.int64)[run_ends]
    false_positives = (run_ends + 1) - true_positives
    n_pos = int(true_positives[-1])
    return RocPoints(
        thresholds=np.r_[np.inf, sorted_scores[run_ends]],
        true_positives=np.r_[0, true_positives],
        false_positives=np.r_[0, false_positives],
        n_pos=n_pos,
        n_neg=int(scores.size - n_pos),
    )


def _auc(roc: RocPoints) -> float:
    return float(np.trapezoid(roc.tpr, roc.fpr))


def _average_precision(roc: RocPoints) -> float:
    # AP = sum_k (R_k - R_{k-1}) * P_k over the operating points (no interpolation), the
    # definition scikit-learn's average_precision_score uses.
    tp = roc.true_positives[1:]
    predicted_positive = tp + roc.false_positives[1:]
    precision = tp / predicted_positive
    recall_gain = np.diff(roc.true_positives) / roc.n_pos
    return float(np.sum(recall_gain * precision))


def _balanced_crossing(roc: RocPoints, weight_fpr: float) -> tuple[float, int]:
    """Where ``weight_fpr * FPR == (1 - weight_fpr) * FNR`` on the ROC polyline.

    Returns the weighted error ``weight_fpr * FPR + (1 - weight_fpr) * FNR`` at the crossing
    (linear interpolation between the two bracketing operating points) and the index of the
    operating point closest to the crossing (for a usable threshold).
    """
    weight_fnr = 1.0 - weight_fpr
    fpr = roc.fpr
    fnr = 1.0 - roc.tpr
    # gap decreases from weight_fnr (threshold +inf: FPR 0, FNR 1) to -weight_fpr (everything
    # fake: FPR 1, FNR 0), so a first index with gap <= 0 always exists and is >= 1.
    gap = weight_fnr * fnr - weight_fpr * fpr
    after = int(np.argmax(gap <= 0))
    before = after - 1
    fraction = gap[before] / (gap[before] - gap[after])
    fpr_at = fpr[before] + fraction * (fpr[after] - fpr[before])
    fnr_at = fnr[before] + fraction * (fnr[after] - fnr[before])
    # The +inf sentinel (index 0) is not a usable threshold; on a tie prefer the later point.
    nearest = before if (before > 0 and abs(gap[before]) < abs(gap[after])) else after
    return float(weight_fpr * fpr_at + weight_fnr * fnr_at), nearest


def _tpr_at_fpr(roc: RocPoints, target_fpr: float) -> float:
    # fpr is non-decreasing and fpr[0] == 0, so the index is always >= 0.
    last_within = int(np.searchsorted(roc.fpr, target_fpr, side="right")) - 1
    return float(roc.tpr[last_within])


def _rates_at(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    predicted_fake = scores >= threshold
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    missed_fakes = int(np.count_nonzero(~predicted_fake & (labels == 1)))
    flagged_reals = int(np.count_nonzero(predicted_fake & (labels == 0)))
    apcer = missed_fakes / n_pos if n_pos else math.nan
    bpcer = flagged_reals / n_neg if n_neg else math.nan
    return {
        "acc": 1.0 - (missed_fakes + flagged_reals) / labels.size,
        "apcer": apcer,
        "bpcer": bpcer,
        "acer": (apcer + bpcer) / 2.0,
    }


def binary_metrics(
    scores,
    labels,
    threshold: float = 0.5,
    val_threshold: float | None = None,
    *,
    context: str = "binary_metrics",
) -> dict[str, float]:
    """All frame- or video-level detection metrics of one test set (keys: :data:`METRIC_NAMES`).

    ``threshold`` gives ``acc``, ``apcer``, ``bpcer`` and ``acer``; ``val_threshold`` (usually
    the EER threshold chosen on validation) gives ``acc_val_thr`` (NaN when None). ``context``
    prefixes warnings and errors (e.g. ``"test celebdf, video level"``). See the module
    docstring for the definitions.
    """
    score_array, label_array = _validated(scores, labels, context)
    if not math.isfinite(threshold):
        raise ValueError(f"{context}: threshold must be a finite number, got {threshold}")
    roc = _roc_points(score_array, label_array)
    metrics: dict[str, float] = dict.fromkeys(METRIC_NAMES, math.nan)
    if roc.n_pos and roc.n_neg:
        metrics["auc"] = _auc(roc)
        metrics["ap"] = _average_precision(roc)
        metrics["eer"], nearest = _balanced_crossing(roc, 0.5)
        metrics["eer_threshold"] = float(roc.thresholds[nearest])
        for target in TPR_AT_FPR_TARGETS:
            metrics[f"tpr@fpr={target:g}"] = _tpr_at_fpr(roc, target)
    else:
        _warn_one_class(context, roc.n_pos, roc.n_neg, "AUC, AP, EER, EER threshold and TPR@FPR are")
    metrics.update(_rates_at(score_array, label_array, threshold))
    if val_threshold is not None:
        if math.isnan(val_threshold):
            warnings.warn(
                f"{context}: acc_val_thr undefined (reported NaN): the validation threshold is NaN",
                UndefinedMetricWarning,
                stacklevel=2,
            )
        else:
            metrics["acc_val_thr"] = _rates_at(score_array, label_array, val_threshold)["acc"]
    metrics["n"] = float(score_array.size)
    metrics["n_pos"] = float(roc.n_pos)
    metrics["n_neg"] = float(roc.n_neg)
    return metrics


def eer_threshold(scores, labels) -> float:
    """The threshold of the operating point nearest the EER crossing (NaN for one class).

    The EER itself is interpolated between two operating points; the threshold is that of the
    bracketing point with the smaller ``|FNR - FPR|`` (ties go to the lower threshold), so
    applying it with ``score >= threshold`` reproduces an actual operating point. Choose it on
    validation and pass it to :func:`binary_metrics` as ``val_threshold`` for the test sets.
    """
    score_array, label_array = _validated(scores, labels, "eer_threshold")
    roc = _roc_points(score_array, label_array)
    if not (roc.n_pos and roc.n_neg):
        _warn_one_class("eer_threshold", roc.n_pos, roc.n_neg, "the EER threshold is")
        return math.nan
    return float(roc.thresholds[_balanced_crossing(roc, 0.5)[1]])


def weighted_eer(scores, labels, p_real: float = 0.5) -> float:
    """Prior-weighted EER (GM-DF's P_real): the expected error at the balanced weighted crossing.

    GM-DF (``papers/gmdf.txt``, Sec. 4.1) weights the EER by the prior of the real class but
    gives no formula; this is the project's reading. With class priors ``P_real`` and
    ``P_fake = 1 - P_real`` the expected error rate at a threshold is
    ``P_real * FPR + P_fake * FNR``. The weighted EER is that expected error at the operating
    point where the two classes contribute equally, ``P_real * FPR = P_fake * FNR`` (found by
    linear interpolation on the ROC, like the EER). ``p_real = 0.5`` gives the plain EER;
    ``p_real < 0.5`` weighs missed fakes (the paper's FAR) more, moving the operating point to
    a lower miss rate, as the paper asks. NaN (with a warning) for a one-class set.
    """
    if not 0.0 < p_real < 1.0:
        raise ValueError(f"weighted_eer: p_real must lie strictly between 0 and 1, got {p_real}")
    score_array, label_array = _validated(scores, labels, "weighted_eer")
    roc = _roc_points(score_array, label_array)
    if not (roc.n_pos and roc.n_neg):
        _warn_one_class("weighted_eer", roc.n_pos, roc.n_neg, "the weighted EER is")
        return math.nan
    return _balanced_crossing(roc, p_real)[0]


def max_eer(eers: Mapping[str, float]) -> float:
    """M_EER (GM-DF): the maximum EER over test domains, ignoring NaN entries with a warning.

    Returns NaN (with a warning) when every entry is NaN; raises ValueError for no entries.
    """
    if not eers:
        raise ValueError("max_eer: got no EER values; expected one per test domain")
    values = {domain: float(eer) for domain, eer in eers.items()}
    undefined = sorted(domain for domain, eer in values.items() if math.isnan(eer))
    if len(undefined) == len(values):
        warnings.warn(
            f"max_eer: M_EER undefined (reported NaN): the EER is NaN for every domain {undefined}",
            UndefinedMetricWarning,
            stacklevel=2,
        )
        return math.nan
    if undefined:
        warnings.warn(
            f"max_eer: M_EER ignores domain(s) {undefined} whose EER is NaN "
            f"(taken over {len(values) - len(undefined)} of {len(values)} domains)",
            UndefinedMetricWarning,
            stacklevel=2,
        )
    return max(eer for eer in values.values() if not math.isnan(eer))


def video_level(scores, labels, video_ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Aggregate frame scores to videos: ``(video_scores, video_labels, video_ids)``.

    A video's score is the mean of its frame scores (P(fake)); its label is its frames' label.
    Videos are ordered by sorted id so the output is deterministic. Raises ValueError naming
    the videos whose frames carry different labels, or ids that are not strings.
    """
    score_array, label_array = _validated(scores, labels, "video_level")
    id_array = np.asarray(video_ids)
    if id_array.shape != score_array.shape:
        raise ValueError(
            f"video_level: {score_array.size} scores but video_ids of shape {id_array.shape}; "
            f"expected one id per score"
        )
    if id_array.dtype.kind == "O":
        not_strings = [value for value in id_array if not isinstance(value, str)]
        if not_strings:
            raise ValueError(
                f"video_level: {len(not_strings)} video id(s) are not strings: examples {not_strings[:5]}"
            )
        id_array = id_array.astype(str)
    elif id_array.dtype.kind not in "US":
        raise ValueError(f"video_level: video ids must be strings, got dtype {id_array.dtype}")
    unique_ids, video_index = np.unique(id_array, return_inverse=True)
    frame_counts = np.bincount(video_index)
    fake_counts = np.bincount(video_index, weights=label_array)
    mixed = np.flatnonzero((fake_counts > 0) & (fake_counts < frame_counts))
    if mixed.size:
        examples = [
            f"{unique_ids[i]} ({int(fake_counts[i])} fake, {int(frame_counts[i] - fake_counts[i])} real)"
            for i in mixed[:5]
        ]
        raise ValueError(
            f"video_level: {mixed.size} video(s) have frames with different labels, e.g. {examples}; "
            f"expected one label per video"
        )
    video_scores = np.bincount(video_index, weights=score_array) / frame_counts
    video_labels = (fake_counts > 0).astype(np.int64)
    return video_scores, video_labels, unique_ids


def all_metrics(
    scores,
    labels,
    video_ids,
    val_threshold: float | None = None,
    threshold: float = 0.5,
    *,
    context: str = "all_metrics",
) -> dict[str, dict[str, float]]:
    """Frame- and video-level :func:`binary_metrics`: ``{"frame": {...}, "video": {...}}``.

    The same ``threshold`` and ``val_threshold`` are applied to frame scores and to the
    per-video mean scores.
    """
    video_scores, video_labels, _ = video_level(scores, labels, video_ids)
    return {
        "frame": binary_metrics(scores, labels, threshold, val_threshold, context=f"{context}, frame level"),
        "video": binary_metrics(
            video_scores, video_labels, threshold, val_threshold, context=f"{context}, video level"
        ),
    }
