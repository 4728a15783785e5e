"""What several papers' tables share: canonical FF++ test-set names and the match of a baseline row."""

from __future__ import annotations

from sweeps.tables.schema import MatchValue

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
