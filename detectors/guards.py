"""Training and evaluation guards: what stops a run that has gone numerically wrong, loudly and at
the step it happens, instead of ending in a normal-looking results.json.

* a non-finite loss (NaN / inf) stops training at that step, naming every loss component's value;
* divergence: a loss far above its start (``divergence_factor`` x max(first loss, 1)) or above an
  absolute ceiling (``max_loss``) stops training;
* every validation score saturated at the same extreme (all exactly 0 or all exactly 1: the
  outputs have blown up) is an error;
* non-finite evaluation scores are an error, or with ``nonfinite_scores: skip`` counted, dropped
  and reported (``complete_evaluation: false``, ``extra.nonfinite_scores`` in results.json).

Settings come from ``guards`` in ``conf/train.yaml`` (the pipeline hands them to the detector);
a detector built outside the pipeline uses the defaults of :class:`GuardSettings`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from common.choices import check_choice, settings_from_mapping

NONFINITE_SCORE_POLICIES = ("error", "skip")


class TrainingDivergedError(RuntimeError):
    """Training produced a non-finite or exploding loss, or saturated outputs."""


class NonFiniteScoresError(RuntimeError):
    """An evaluation set received NaN / inf scores."""


@dataclass(frozen=True)
class GuardSettings:
    """``divergence_factor``/``max_loss``: null disables that check; ``saturation``: check saturated
    validation scores; ``nonfinite_scores``: ``error`` or ``skip`` (count, drop, report)."""

    divergence_factor: float | None = 1.0e3
    max_loss: float | None = 1.0e6
    saturation: bool = True
    nonfinite_scores: str = "error"

    def __post_init__(self) -> None:
        for name in ("divergence_factor", "max_loss"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int | float) and not isinstance(value, bool) and value > 0 and math.isfinite(value)):
                raise ValueError(f"guards.{name}={value!r}: expected a finite number > 0 or null (no check)")
        check_choice("guards.nonfinite_scores", self.nonfinite_scores, NONFINITE_SCORE_POLICIES)

    @classmethod
    def from_config(cls, raw: Mapping[str, Any] | None) -> GuardSettings:
        return settings_from_mapping(cls, raw, "guards")


def _describe(components: Mapping[str, torch.Tensor]) -> str:
    return ", ".join(f"{name}={float(value.detach().float()):.4g}" for name, value in components.items())


class LossGuard:
    """Checks each training step's total loss; remembers the first finite loss as the start."""

    def __init__(self, settings: GuardSettings | None = None):
        self.settings = settings or GuardSettings()
        self.start: float | None = None

    def check(self, total: torch.Tensor, components: Mapping[str, torch.Tensor], step: int, epoch: int, who: str) -> None:
        value = float(total.detach().float())
        where = f"{who}: training step {step} (epoch {epoch})"
        if not math.isfinite(value):
            bad = [name for name, v in components.items() if not torch.isfinite(v.detach().float()).all()]
            raise TrainingDivergedError(
                f"{where}: the loss is {value} (non-finite components: {bad or 'none; their weighted sum overflowed'}; "
                f"all components: {_describe(components)}). Training stopped; lower the learning rate or the loss "
                "weights, or enable gradient clipping (trainer.gradient_clip_val)"
            )
        settings = self.settings
        if settings.max_loss is not None and value > settings.max_loss:
            reason = f"above guards.max_loss={settings.max_loss:g}"
        elif self.start is None:
            self.start = value
            return
        elif settings.divergence_factor is not None and value > settings.divergence_factor * max(self.start, 1.0):
            reason = f"more than guards.divergence_factor={settings.divergence_factor:g} x max(first loss {self.start:.4g}, 1)"
        else:
            return
        raise TrainingDivergedError(
            f"{where}: training diverged: loss {value:.4g} is {reason} (components: {_describe(components)}). "
            "Lower the learning rate or the loss weights; raise or null the guard only if such losses are expected"
        )


def check_saturated(scores: np.ndarray, set_name: str, who: str) -> None:
    """Every score identical and at 0 or 1 exactly: the model's logits have blown up."""
    if len(scores) < 2:
        return
    first = float(scores[0])
    if (first == 0.0 or first == 1.0) and bool(np.all(scores == first)):
        raise TrainingDivergedError(
            f"{who}: every one of the {len(scores)} scores of set {set_name!r} is exactly {first:g}: the outputs "
            "saturated, training diverged (lower the learning rate or the loss weights; guards.saturation=false "
            "turns this check off)"
        )


def nonfinite_message(set_name: str, count: int, total: int, paths: list[str]) -> str:
    return (
        f"set {set_name!r}: {count} of {total} scored frame(s) got a non-finite score (NaN or inf), e.g. {paths[:3]}. "
        "The model's outputs overflowed; guards.nonfinite_scores=skip counts and drops them instead "
        "(results then say complete_evaluation: false)"
    )
