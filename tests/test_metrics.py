"""Tests for evaluation.metrics: parity with scikit-learn (the oracle), the EER / TPR@FPR / ACER
conventions, one-class and bad-input behaviour, video aggregation, M_EER and weighted EER."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.optimize import brentq
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from evaluation.metrics import (
    METRIC_NAMES,
    UndefinedMetricWarning,
    all_metrics,
    binary_metrics,
    eer_threshold,
    max_eer,
    video_level,
    weighted_eer,
)

# Any undefined-metric warning a test does not expect is a failure.
pytestmark = pytest.mark.filterwarnings("error::evaluation.metrics.UndefinedMetricWarning")


def _random_case(seed: int, n: int, ties: bool, positive_fraction: float = 0.5):
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < positive_fraction).astype(int)
    labels[:2] = [0, 1]  # both classes always present
    scores = 1.0 / (1.0 + np.exp(-rng.normal(1.2 * labels - 0.6, 1.0)))
    if ties:
        scores = np.round(scores, 1)  # ~11 distinct values: heavy ties across classes
    return scores, labels


CASES = {
    "continuous": _random_case(0, 500, ties=False),
    "heavy_ties": _random_case(1, 500, ties=True),
    "imbalanced_ties": _random_case(2, 300, ties=True, positive_fraction=0.1),
    "tiny": _random_case(3, 7, ties=False),
    "perfect_separation": (np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9]), np.array([0, 0, 0, 1, 1, 1])),
    "perfect_inversion": (np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1]), np.array([0, 0, 0, 1, 1, 1])),
    "all_scores_equal": (np.full(6, 0.4), np.array([0, 1, 0, 1, 1, 0])),
    "separation_with_ties": (np.array([0.2, 0.2, 0.2, 0.6, 0.6]), np.array([0, 0, 0, 1, 1])),
    "float32_ties": (
        np.array([0.1, 0.5, 0.5, 0.5, 0.9, 0.9], dtype=np.float32),
        np.array([0, 0, 1, 1, 0, 1]),
    ),
}


def eer_by_root_finding(scores, labels) -> float:
    """The widespread community EER: root of 1 - FPR - TPR(FPR) on sklearn's interpolated ROC."""
    fpr, tpr, _ = roc_curve(labels, scores)
    return brentq(lambda x: 1.0 - x - np.interp(x, fpr, tpr), 0.0, 1.0, xtol=1e-12)


def eer_by_segment_intersection(scores, labels) -> float:
    """Where the ROC polyline (all sklearn operating points) meets the line FNR = FPR."""
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    fnr = 1.0 - tpr
    for x0, x1, n0, n1 in zip(fpr[:-1], fpr[1:], fnr[:-1], fnr[1:]):
        if n0 - x0 > 0 >= n1 - x1:
            t = (n0 - x0) / ((n0 - x0) - (n1 - x1))
            return x0 + t * (x1 - x0)
    raise AssertionError("the ROC polyline never crosses FNR = FPR")


@pytest.mark.parametrize("case", sorted(CASES))
def test_auc_ap_eer_match_sklearn(case):
    scores, labels = CASES[case]
    metrics = binary_metrics(scores, labels)
    assert metrics["auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-6)
    assert metrics["ap"] == pytest.approx(average_precision_score(labels, scores), abs=1e-6)
    assert metrics["eer"] == pytest.approx(eer_by_segment_intersection(scores, labels), abs=1e-9)
    assert metrics["eer"] == pytest.approx(eer_by_root_finding(scores, labels), abs=1e-6)


def test_known_values_for_degenerate_rankings():
    separated = binary_metrics(*CASES["perfect_separation"])
    assert (separated["auc"], separated["ap"], separated["eer"]) == (1.0, 1.0, 0.0)
    inverted = binary_metrics(*CASES["perfect_inversion"])
    assert (inverted["auc"], inverted["eer"]) == (0.0, 1.0)
    constant = binary_metrics(*CASES["all_scores_equal"])
    assert (constant["auc"], constant["eer"], constant["ap"]) == (0.5, 0.5, 0.5)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("target", [0.1, 0.01, 0.001])
def test_tpr_at_fpr_is_best_tpr_without_exceeding_target(case, target):
    scores, labels = CASES[case]
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    expected = tpr[fpr <= target].max()
    assert binary_metrics(scores, labels)[f"tpr@fpr={target:g}"] == pytest.approx(expected, abs=1e-12)


def test_tpr_at_fpr_reads_the_step_function_without_interpolation():
    # 10 reals, 10 fakes. Operating points by decreasing threshold (TPR, FPR): 0.95 -> (0.5, 0),
    # 0.9 -> (0.5, 0.1), 0.85 -> (0.6, 0.1), 0.8 -> (0.6, 0.2), 0.75 -> (0.9, 0.2).
    # FPR == target counts as within; no interpolation toward the (0.9, 0.2) point.
    reals = [0.9, 0.8, 0.5, 0.4, 0.4, 0.3, 0.2, 0.2, 0.1, 0.0]
    fakes = [0.99, 0.98, 0.97, 0.96, 0.95, 0.85, 0.75, 0.75, 0.75, 0.1]
    metrics = binary_metrics(reals + fakes, [0] * 10 + [1] * 10)
    assert metrics["tpr@fpr=0.1"] == 0.6
    assert metrics["tpr@fpr=0.01"] == 0.5
    assert metrics["tpr@fpr=0.001"] == 0.5


def test_threshold_metrics_count_score_equal_to_threshold_as_attack():
    scores = [0.1, 0.5, 0.7, 0.2, 0.5, 0.9, 0.4]
    labels = [0, 0, 0, 1, 1, 1, 1]
    metrics = binary_metrics(scores, labels, threshold=0.5)
    # reals: 0.5 and 0.7 flagged -> BPCER 2/3; fakes: 0.2 and 0.4 missed -> APCER 2/4.
    assert metrics["bpcer"] == pytest.approx(2 / 3)
    assert metrics["apcer"] == pytest.approx(2 / 4)
    assert metrics["acer"] == pytest.approx((2 / 3 + 2 / 4) / 2)
    assert metrics["acc"] == pytest.approx(3 / 7)
    assert math.isnan(metrics["acc_val_thr"])
    assert binary_metrics(scores, labels, val_threshold=0.3)["acc_val_thr"] == pytest.approx(4 / 7)
    assert (metrics["n"], metrics["n_pos"], metrics["n_neg"]) == (7, 4, 3)
    assert tuple(metrics) == METRIC_NAMES


def test_nan_validation_threshold_gives_nan_accuracy_with_warning():
    with pytest.warns(UndefinedMetricWarning, match="validation threshold is NaN"):
        metrics = binary_metrics([0.2, 0.8], [0, 1], val_threshold=math.nan)
    assert math.isnan(metrics["acc_val_thr"])
    assert metrics["acc"] == 1.0


@pytest.mark.parametrize(
    ("labels", "present", "rate_defined", "rate_nan"),
    [([1, 1, 1], "3 fake/attack", "apcer", "bpcer"), ([0, 0, 0], "3 real", "bpcer", "apcer")],
)
def test_one_class_set_warns_and_reports_nan_without_raising(labels, present, rate_defined, rate_nan):
    scores = [0.2, 0.6, 0.9]
    with pytest.warns(UndefinedMetricWarning, match=f"AUC, AP, EER.*{present}"):
        metrics = binary_metrics(scores, labels, val_threshold=0.5, context="test wdf, frame level")
    for name in ("auc", "ap", "eer", "eer_threshold", "tpr@fpr=0.1", "tpr@fpr=0.01", "tpr@fpr=0.001"):
        assert math.isnan(metrics[name]), name
    assert metrics["acc"] == pytest.approx(2 / 3 if labels[0] == 1 else 1 / 3)
    assert metrics["acc_val_thr"] == metrics["acc"]
    assert not math.isnan(metrics[rate_defined])
    assert math.isnan(metrics[rate_nan]) and math.isnan(metrics["acer"])


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        ([], [], "got 0 scores"),
        ([0.1, math.nan, math.inf, 0.3], [0, 1, 0, 1], "2 of 4 scores are NaN or infinite"),
        ([0.1, 0.2], [0, 2], "1 of 2 labels are not 0"),
        ([0.1, 0.2], ["real", "fake"], "2 of 2 labels are not 0"),
        ([0.1, 0.2], [0, 0.5], "labels are not 0"),
        ([0.1, 0.2, 0.3], [0, 1], "3 scores but 2 labels"),
        ([[0.1, 0.2]], [[0, 1]], "must be 1-D"),
    ],
)
def test_bad_input_raises_value_error_naming_the_problem(scores, labels, message):
    with pytest.raises(ValueError, match=message):
        binary_metrics(scores, labels)


def test_boolean_labels_are_accepted():
    assert binary_metrics([0.1, 0.9], np.array([False, True]))["auc"] == 1.0


@pytest.mark.parametrize("case", ["continuous", "heavy_ties", "imbalanced_ties"])
def test_eer_threshold_is_the_roc_point_closest_to_the_crossing(case):
    scores, labels = CASES[case]
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    gaps = np.abs((1.0 - tpr) - fpr)
    best = np.flatnonzero(gaps == gaps.min())[-1]  # ties go to the lower threshold
    threshold = eer_threshold(scores, labels)
    assert threshold == pytest.approx(thresholds[best])
    assert binary_metrics(scores, labels)["eer_threshold"] == threshold
    # Applied with score >= threshold, it operates close to the EER.
    applied = binary_metrics(scores, labels, threshold=threshold)
    assert abs(applied["apcer"] - applied["bpcer"]) <= gaps.min() + 1e-12


def test_eer_threshold_of_one_class_set_is_nan_with_warning():
    with pytest.warns(UndefinedMetricWarning, match="2 real"):
        assert math.isnan(eer_threshold([0.1, 0.2], [0, 0]))


@pytest.mark.parametrize("case", sorted(CASES))
def test_weighted_eer_with_even_prior_is_plain_eer(case):
    scores, labels = CASES[case]
    assert weighted_eer(scores, labels, p_real=0.5) == pytest.approx(
        binary_metrics(scores, labels)["eer"], abs=1e-15
    )


@pytest.mark.parametrize("p_real", [0.2, 0.7])
def test_weighted_eer_matches_root_of_weighted_rates(p_real):
    scores, labels = CASES["heavy_ties"]
    fpr, tpr, _ = roc_curve(labels, scores)
    # Independent reading: FPR where p_real * FPR == (1 - p_real) * FNR on the interpolated ROC;
    # the expected error there is p_real * FPR + (1 - p_real) * FNR = 2 * p_real * FPR.
    crossing = brentq(
        lambda x: p_real * x - (1 - p_real) * (1 - np.interp(x, fpr, tpr)), 0.0, 1.0, xtol=1e-13
    )
    assert weighted_eer(scores, labels, p_real) == pytest.approx(2 * p_real * crossing, abs=1e-6)


def test_weighted_eer_low_real_prior_moves_to_fewer_missed_fakes():
    scores, labels = CASES["continuous"]
    fpr, tpr, _ = roc_curve(labels, scores)
    p_real = 0.2
    value = weighted_eer(scores, labels, p_real)
    fpr_at = value / (2 * p_real)
    fnr_at = value / (2 * (1 - p_real))
    eer = binary_metrics(scores, labels)["eer"]
    assert fnr_at < eer < fpr_at  # the operating point trades false alarms for missed fakes
    assert 1 - np.interp(fpr_at, fpr, tpr) == pytest.approx(fnr_at, abs=1e-6)


@pytest.mark.parametrize("p_real", [0.0, 1.0, -0.1, 1.5])
def test_weighted_eer_rejects_degenerate_prior(p_real):
    with pytest.raises(ValueError, match="p_real must lie strictly between 0 and 1"):
        weighted_eer([0.1, 0.9], [0, 1], p_real)


def test_max_eer_takes_maximum_and_ignores_nan_with_warning():
    assert max_eer({"celebdf": 0.2, "dfdc": 0.31, "wdf": 0.25}) == 0.31
    with pytest.warns(UndefinedMetricWarning, match=r"ignores domain\(s\) \['dfdc'\]"):
        assert max_eer({"celebdf": 0.2, "dfdc": math.nan, "wdf": 0.25}) == 0.25
    with pytest.warns(UndefinedMetricWarning, match="NaN for every domain"):
        assert math.isnan(max_eer({"dfdc": math.nan}))
    with pytest.raises(ValueError, match="no EER values"):
        max_eer({})


def test_video_level_averages_frames_per_sorted_video_id():
    scores = [0.2, 0.9, 0.4, 0.7, 0.1]
    labels = [0, 1, 0, 1, 0]
    ids = ["ffpp/real/b", "ffpp/df/a", "ffpp/real/b", "ffpp/df/a", "ffpp/real/c"]
    video_scores, video_labels, video_ids = video_level(scores, labels, ids)
    assert video_ids.tolist() == ["ffpp/df/a", "ffpp/real/b", "ffpp/real/c"]
    np.testing.assert_allclose(video_scores, [0.8, 0.3, 0.1])
    assert video_labels.tolist() == [1, 0, 0]
    # Same output whatever the frame order.
    order = [4, 2, 0, 3, 1]
    permuted = video_level(np.take(scores, order), np.take(labels, order), np.take(ids, order))
    np.testing.assert_allclose(permuted[0], video_scores)
    assert permuted[2].tolist() == video_ids.tolist()


def test_video_level_rejects_mixed_labels_naming_the_video():
    with pytest.raises(ValueError, match=r"ffpp/df/a \(1 fake, 1 real\)"):
        video_level([0.1, 0.2, 0.3], [0, 1, 0], ["ffpp/df/a", "ffpp/df/a", "ffpp/real/b"])


def test_video_level_rejects_ids_that_are_not_strings():
    with pytest.raises(ValueError, match="not strings"):
        video_level([0.1, 0.2], [0, 1], np.array(["a", None], dtype=object))
    with pytest.raises(ValueError, match="must be strings"):
        video_level([0.1, 0.2], [0, 1], [3, 4])


def test_all_metrics_combines_frame_and_video_levels():
    scores, labels = CASES["continuous"]
    video_ids = np.array([f"video_{index // 5:03d}_{label}" for index, label in enumerate(labels)])
    result = all_metrics(scores, labels, video_ids, val_threshold=0.4)
    assert result["frame"] == binary_metrics(scores, labels, val_threshold=0.4)
    video_scores, video_labels, _ = video_level(scores, labels, video_ids)
    assert result["video"] == binary_metrics(video_scores, video_labels, val_threshold=0.4)
    assert result["video"]["n"] == len(set(video_ids.tolist()))


@pytest.mark.slow
def test_one_million_scores_match_sklearn():
    """At a real test-set size (1M frames) the AUC equals sklearn's (speed: no timed test)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 1_000_000)
    scores = rng.random(1_000_000) + 0.2 * labels
    with warnings.catch_warnings():
        result = binary_metrics(scores, labels)
    assert result["n"] == 1_000_000
    assert result["auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)
