"""Wall time of each phase of a run, logged as it ends and written to ``results.json`` (``extra.timings``).

Phases of the standard pipeline (docs/RESULTS.md, ``extra.timings``): ``data`` (indexing the protocol's
records; generating the embedded synthetic data on a fresh cache), ``synthetic_pretraining`` (the
tiny CLIP of ``detector.pretrained=synthetic``: trained on a fresh cache, else looked up),
``model_setup`` (the detector's ``setup("fit")``, which trains or loads GM-DF's dVAE tokenizer), ``fit``
with one entry per epoch (``train_s`` and ``val_s``), ``select`` (validating the chosen checkpoint)
and ``test``. Seconds are wall time on the run's rank 0, and the machine's other load changes them:
compare them only with runs on the same machine at the same load.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L

log = logging.getLogger(__name__)


class PhaseClock:
    """``with clock.phase("data"): ...`` records the seconds of the block (also when it raises)."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self.epochs: list[dict[str, float]] = []

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.record(name, time.perf_counter() - start)

    def record(self, name: str, seconds: float) -> None:
        self.phases[name] = self.phases.get(name, 0.0) + seconds
        log.info("phase %s: %.1f s", name, seconds)

    def as_dict(self) -> dict[str, Any]:
        """``{"<phase>_s": seconds, ..., "epochs": [{"epoch", "train_s", "val_s"}, ...]}``, rounded to ms."""
        out: dict[str, Any] = {f"{name}_s": round(seconds, 3) for name, seconds in self.phases.items()}
        if self.epochs:
            out["epochs"] = [{k: (round(v, 3) if k != "epoch" else int(v)) for k, v in e.items()} for e in self.epochs]
        return out


class PhaseTimings(L.Callback):
    """Times ``model_setup`` (Lightning calls callbacks' ``setup`` before the module's), each training
    epoch and each validation pass during fit, into a :class:`PhaseClock`."""

    def __init__(self, clock: PhaseClock) -> None:
        self.clock = clock
        self._marks: dict[str, float] = {}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._marks["setup"] = time.perf_counter()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if "setup" in self._marks:
            self.clock.record("model_setup", time.perf_counter() - self._marks.pop("setup"))

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._marks["train"] = time.perf_counter()
        self._marks.pop("val_total", None)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit":
            self._marks["val"] = time.perf_counter()

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit" and "val" in self._marks:
            self._marks["val_total"] = self._marks.get("val_total", 0.0) + time.perf_counter() - self._marks.pop("val")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning validates inside the training epoch (before on_train_epoch_end): its time is taken out.
        if "train" not in self._marks:
            return
        val = self._marks.pop("val_total", 0.0)
        train = time.perf_counter() - self._marks.pop("train") - val
        self.clock.epochs.append({"epoch": trainer.current_epoch, "train_s": train, "val_s": val})
        log.info("epoch %d: train %.1f s, validation %.1f s", trainer.current_epoch, train, val)
