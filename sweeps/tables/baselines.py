"""What several papers' tables share: canonical FF++ test-set names and the match of a baseline row."""

from __future__ import annotations

from sweeps.tables.schema import MatchValue, Row

# Canonical test-set names. Protocols and experiments should use these names so one table can
# be filled from baseline and method runs alike (docs/SWEEPS.md).
FFPP_METHOD_SETS = {"FF-DF": "ffpp_df", "FF-F2F": "ffpp_f2f", "FF-FS": "ffpp_fs", "FF-NT": "ffpp_nt"}
FFPP_BASELINE_SWEEP = "ffpp_baselines"


def baseline(detector: str, protocol: str, experiment: str = "baseline_ffpp") -> dict[str, MatchValue]:
    """The match of a plain baseline row: the baseline experiment, detector and protocol."""
    return {"experiment": experiment, "detector": detector, "protocol.name": protocol}


def ffpp_baseline(detector: str) -> dict[str, MatchValue]:
    """A baseline of the ffpp_baselines sweep (protocol ffpp_cross_dataset_full)."""
    return baseline(detector, "ffpp_cross_dataset_full")


def ffpp_baseline_row(detector: str, label: str, paper: dict[str, float | None], note: str = "") -> Row:
    """The row of ``detector`` from the ffpp_baselines sweep, keyed by the detector's name."""
    return Row(detector, label, ffpp_baseline(detector), paper, sweep=FFPP_BASELINE_SWEEP, note=note)


_SCORED_LABELS = {"xception": "Xception", "efficientnet_b4": "EfficientNet-B4"}


def scored_ffpp_baselines(
    sweep: str, detectors: tuple[str, ...] = ("xception", "efficientnet_b4")
) -> tuple[Row, ...]:
    """The baseline rows of a robustness figure: ffpp_baselines jobs once scored with
    ``python -m engine.robustness`` (the first row's note names where the command is written:
    ``conf/sweep/<sweep>.yaml``, the figure's own sweep)."""
    return tuple(
        Row(
            detector,
            _SCORED_LABELS[detector],
            ffpp_baseline(detector),
            {},
            note="an ffpp_baselines job scored with python -m engine.robustness"
            + (f" (command in conf/sweep/{sweep}.yaml)" if index == 0 else ""),
        )
        for index, detector in enumerate(detectors)
    )
