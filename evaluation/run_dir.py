"""One attempt's outputs per run directory: a new attempt (a re-run or a requeued job in a directory
that already holds results) first moves the earlier attempt's outputs aside, so ``results.json``,
``predictions/`` and ``robustness*`` in a run directory always come from the same attempt.

The earlier outputs go to ``.superseded/<UTC time>/`` (hidden: the sweep aggregator never mistakes
them for a job), and the new ``results.json`` lists them under ``extra.superseded``. Checkpoints
stay where they are: they are what ``ckpt_path=auto`` resumes from.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

from evaluation.results import PREDICTIONS_DIR_NAME, RESULTS_FILE_NAME

log = logging.getLogger(__name__)

SUPERSEDED_DIR_NAME = ".superseded"
# What one attempt writes after training; everything here describes one tested checkpoint.
ATTEMPT_OUTPUTS: tuple[str, ...] = (RESULTS_FILE_NAME, PREDICTIONS_DIR_NAME, "robustness.json", "robustness", "plots")


def begin_attempt(output_dir: str | os.PathLike) -> Path | None:
    """Move the outputs of an earlier attempt out of ``output_dir``; returns where they went (None
    when there were none). Call once per attempt, on rank 0, before anything is written."""
    run_dir = Path(output_dir)
    stale = [run_dir / name for name in ATTEMPT_OUTPUTS if (run_dir / name).exists()]
    if not stale:
        return None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H-%M-%S_%fZ")
    target = run_dir / SUPERSEDED_DIR_NAME / stamp
    target.mkdir(parents=True, exist_ok=False)
    for path in stale:
        os.replace(path, target / path.name)
    log.warning(
        "%s held outputs of an earlier attempt (%s); moved them to %s so this attempt's files are not mixed with them",
        run_dir, ", ".join(p.name for p in stale), target,
    )
    return target


def superseded_attempts(output_dir: str | os.PathLike) -> list[str]:
    """The earlier attempts' folders of a run directory, relative to it, oldest first."""
    root = Path(output_dir) / SUPERSEDED_DIR_NAME
    if not root.is_dir():
        return []
    return [f"{SUPERSEDED_DIR_NAME}/{p.name}" for p in sorted(root.iterdir()) if p.is_dir()]
