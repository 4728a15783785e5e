"""Suite overhead: a training epoch through run.py's Trainer, LightningModule, callbacks, loggers and
loader, against a bare PyTorch loop on the same model, data, batches and optimiser. Target <= 1.05x.

Both run in this process, epoch by epoch in turns: each of the suite's training epochs starts with one
epoch of the bare loop, outside the suite's clock, each side in its own random stream (the two draw exactly
what they draw alone). A shared machine's speed drifts by a third within minutes (the same bare epochs took
12 s and 17 s in one benchmark run); in turns, both sides meet the same drift. ``--sequential`` runs the
whole suite fit, then the whole bare loop (the benchmark before 2026-12-06), alternating their order by
round. Each round trains a fresh model (same seed) for ``--epochs`` epochs each way and compares the last
``--measure`` epochs, summed (the first epoch always warms up allocators and starts the loader):

- suite: ``lightning.Trainer`` built from the run's config exactly as ``engine.pipeline.run`` builds
  it (the configured callbacks incl. checkpointing and the progress bar, the CSV logger), timed by
  :class:`callbacks.timings.PhaseTimings` (training only: validation is taken out of the epoch);
- bare: ``for batch in datamodule.train_dataloader(): normalise (the datamodule's batch hook), forward,
  combine_losses, backward, step`` with the optimiser and scheduler of the detector's
  ``configure_optimizers``, the run's gradient clipping, and the detector's own per-step hooks
  (``on_train_batch_start``, ``on_before_optimizer_step``: MoA-CLIP's alternating phases). It draws from the
  random generators where the suite does (the validation iterator between epochs, no batch past ``--steps``),
  so both sides route DFMoE alike, and its routing decides the work of a step
  (tests/test_suite_overhead_benchmark.py). A detector
  that optimises in its own ``training_step`` (GM-DF's meta step) is refused: benchmarks/meta_step.py.

    python benchmarks/suite_overhead.py --experiment baseline_multidomain --rounds 3
    # five measured epochs a round instead of one (a 2 s epoch is too short to resolve 5 % on a shared machine)
    python benchmarks/suite_overhead.py --experiment baseline_multidomain --rounds 5 --epochs 6 --measure 5
    # on a GPU, paper scale on the embedded data: both sides on CUDA in bf16 autocast, at most 40 steps an epoch
    python benchmarks/suite_overhead.py --scale paper --steps 40 data.source=synthetic detector.pretrained=null
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from train_step import stand_in_trainer  # benchmarks/ is on sys.path when this runs as a script

from callbacks.timings import PhaseClock, PhaseTimings
from datamodules.resumable import capture_rng, restore_rng
from engine.compose import compose_run_config
from engine.pipeline import build_callbacks, build_loggers
from engine.synthetic_pretraining import resolve_synthetic_weights


def suite_epoch(cfg, epochs: int, steps: int | None = None, measure: int = 1) -> float:
    """Seconds of training in the last ``measure`` epochs of a run of ``epochs`` through the Trainer."""
    clock = _suite_fit(cfg, epochs, steps)
    return sum(epoch["train_s"] for epoch in clock.epochs[-measure:])


def interleaved_epochs(cfg, epochs: int, steps: int | None = None, measure: int = 1) -> tuple[float, float]:
    """Seconds of training in the last ``measure`` epochs of the suite and of the bare loop, run in turns: a bare
    epoch at the start of each suite epoch, outside the suite's clock."""
    bare = _BareEpochBefore(cfg, epochs, steps)
    clock = _suite_fit(cfg, epochs, steps, before=[bare])
    bare.close()
    if len(bare.seconds) != len(clock.epochs):
        raise RuntimeError(f"suite_overhead: {len(clock.epochs)} suite epochs against {len(bare.seconds)} bare ones")
    return sum(epoch["train_s"] for epoch in clock.epochs[-measure:]), sum(bare.seconds[-measure:])


def _suite_fit(cfg, epochs: int, steps: int | None, before: Sequence[L.Callback] = ()) -> PhaseClock:
    """The run's Trainer fitted for ``epochs``; ``before`` are callbacks that run ahead of the suite's own."""
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    datamodule = instantiate(cfg.data, _convert_="all")
    model = instantiate(cfg.detector, _convert_="all")
    clock = PhaseClock()
    callbacks = [*before, *build_callbacks(cfg), _SynchroniseCuda(), PhaseTimings(clock)]
    trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=build_loggers(cfg, Path(cfg.paths.output_dir)),
        max_epochs=epochs, **({"limit_train_batches": steps} if steps else {}),
    )
    trainer.fit(model, datamodule=datamodule)
    suite_epoch.steps = int(trainer.num_training_batches)  # steps of an epoch, read by benchmarks/meta_step.py
    return clock


class _BareEpochBefore(L.Callback):
    """Runs the bare loop's next epoch when a suite epoch starts, before the suite's clock does (it is listed
    ahead of PhaseTimings). Each side keeps its own random stream (Python, NumPy, torch, CUDA): the bare loop's
    state is swapped in for its epoch and the suite's back afterwards, so each draws what it draws alone."""

    def __init__(self, cfg, epochs: int, steps: int | None):
        self._epochs = bare_epochs(cfg, epochs, steps)  # starts (and seeds itself) at the first epoch
        self._state = None
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        suite_state = capture_rng()
        if self._state is not None:
            restore_rng(self._state)
        self.seconds.append(next(self._epochs))
        self._state = capture_rng()
        restore_rng(suite_state)

    def close(self) -> None:
        self._epochs.close()


class _SynchroniseCuda(L.Callback):
    """Waits for the GPU where the suite's clock (PhaseTimings, listed after this) reads the time, as the bare
    loop does at the end of its epoch: queued training work is not counted as validation time."""

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    on_train_epoch_end = on_validation_epoch_start


def _device_and_dtype(cfg) -> tuple[torch.device, torch.dtype | None]:
    """The device and autocast dtype the run's Trainer would use (``trainer=gpu``: CUDA, bf16-mixed)."""
    accelerator, precision = str(cfg.trainer.get("accelerator", "cpu")), str(cfg.trainer.get("precision", "32"))
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    device = torch.device("cuda", 0) if on_gpu else torch.device("cpu")
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    return device, dtype


def bare_epoch(cfg, epochs: int, steps: int | None = None, measure: int = 1) -> float:
    """Seconds of training in the last ``measure`` epochs of a run of ``epochs`` through the bare loop."""
    return sum(list(bare_epochs(cfg, epochs, steps))[-measure:])


def bare_epochs(cfg, epochs: int, steps: int | None = None) -> Iterator[float]:
    """The bare loop, yielding each epoch's seconds of training (the run's validation draw follows a yield)."""
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.setup("fit")
    device, dtype = _device_and_dtype(cfg)
    if datamodule.normalize_on == "auto":  # what `auto` means under a Trainer on this device
        datamodule.normalize_on = "device" if device.type == "cuda" else "loader"
    if device.type == "cuda":  # as the Trainer sets it from `trainer.benchmark`
        torch.backends.cudnn.benchmark = bool(cfg.trainer.get("benchmark") or False)
    loader = datamodule.train_dataloader()
    model = instantiate(cfg.detector, _convert_="all").train()
    trainer = stand_in_trainer(datamodule, epochs * min(len(loader), steps or len(loader)))
    model._trainer = trainer
    model.setup("fit")  # as the Trainer's setup hook: channels_last, GM-DF's tokenizer, MoA-CLIP's domains
    model.to(device)
    configured = model.configure_optimizers()
    # The loop keeps the stand-in: it counts epochs and steps for the detector's own per-step hooks (MoA-CLIP
    # alternates its adapter and router phases by them); its barebones flag makes self.log return at once.
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)
    clip_value = cfg.trainer.get("gradient_clip_val")
    clip_by_norm = str(cfg.trainer.get("gradient_clip_algorithm") or "norm") == "norm"
    optimizer = configured["optimizer"] if isinstance(configured, dict) else configured
    optimised = [p for group in optimizer.param_groups for p in group["params"]]  # what Lightning clips
    scheduler = configured["lr_scheduler"]["scheduler"] if isinstance(configured, dict) else None
    per_step = isinstance(configured, dict) and configured["lr_scheduler"].get("interval") == "step"
    val_loader, validates = validation_draws(cfg, datamodule)
    for epoch in range(epochs):
        with warnings.catch_warnings():  # set per epoch, outside the timed steps (the suite may run between two)
            warnings.filterwarnings("ignore", message=".*barebones=True.*")  # Lightning's note that self.log logs nothing
            trainer.current_epoch = epoch
            loader.sampler.set_epoch(epoch)
            if device.type == "cuda":  # in turns, the suite's queued work is not this epoch's
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            # steps: as the Trainer's limit_train_batches, which fetches no batch past the limit (a fetch draws augmentation)
            for index, batch in enumerate(itertools.islice(loader, steps)):
                batch = {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
                batch = datamodule.on_after_batch_transfer(batch, 0)  # what the Trainer has the datamodule do
                model.on_train_batch_start(batch, index)  # the detector's own hooks (no-ops unless it defines them)
                with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                    output = model(model._images(batch), batch)
                    loss, _ = model.combine_losses(output, batch)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                model.on_before_optimizer_step(optimizer)
                if clip_value and clip_by_norm:  # the run's gradient clipping (trainer.gradient_clip_*), as the Trainer does it
                    torch.nn.utils.clip_grad_norm_(optimised, clip_value)
                elif clip_value:
                    torch.nn.utils.clip_grad_value_(optimised, clip_value)
                scaler.step(optimizer)
                scaler.update()
                trainer.global_step += 1
                if scheduler is not None and per_step:
                    scheduler.step()
            if scheduler is not None and not per_step:
                scheduler.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - start
        yield seconds
        if epoch + 1 < epochs and validates(epoch):
            iter(val_loader)  # as the Trainer's validation: see validation_draws


def validation_draws(cfg, datamodule):
    """The validation loader and which epochs the run validates after. Creating a loader's iterator draws its base
    seed from the torch generator, so the Trainer's validation between two epochs shifts every later draw (dropout,
    drop-path, augmentation, and with them DFMoE's routing and so its cost). The bare loop creates the iterator
    where the Trainer does: after each epoch it validates, from one loader (with persistent workers, torch draws
    only when the first iterator is created, as under the Trainer)."""
    every = int(cfg.trainer.get("check_val_every_n_epoch") or 1)
    limit = cfg.trainer.get("limit_val_batches")
    return datamodule.val_dataloader(), lambda epoch: limit != 0 and (epoch + 1) % every == 0


def check_comparable(cfg) -> None:
    """The bare loop is forward, ``combine_losses``, backward, step: a detector that optimises in its own
    ``training_step`` (GM-DF's meta step: ``automatic_optimization`` off) would be timed on other work than
    the suite runs, so it is refused (benchmarks/meta_step.py times GM-DF's step)."""
    model = instantiate(cfg.detector, _convert_="all", pretrained=None)  # no tower weights: only the class's choice is read
    if not model.automatic_optimization:
        raise SystemExit(
            f"suite_overhead: {type(model).__name__} (experiment {cfg.get('experiment_name')!r}) optimises in its own "
            "training_step (automatic_optimization is off), which the bare loop does not reproduce; compare a detector "
            "with automatic optimisation, or time GM-DF's meta step with benchmarks/meta_step.py"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="baseline_multidomain")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--scale", choices=["demo", "paper"], default="demo")
    parser.add_argument("--steps", type=int, default=None, help="training steps per epoch, both sides (default: all)")
    parser.add_argument("--measure", type=int, default=1, help="epochs timed per round, the last ones, summed (< --epochs)")
    parser.add_argument("--sequential", action="store_true", help="the whole suite fit, then the whole bare loop (not in turns)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. data.num_workers=2")
    args = parser.parse_args()
    if not 1 <= args.measure < args.epochs:
        parser.error(f"--measure {args.measure}: expected 1 to --epochs - 1 = {args.epochs - 1} (the first epoch warms up)")
    ratios, suites, bares = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            overrides = [f"experiment={args.experiment}", f"scale={args.scale}", "data.synthetic.progress=false", *args.overrides]
            cfg = compose_run_config(overrides, Path(tmp) / f"round{round_}")
            if round_ == 0:
                check_comparable(cfg)  # before the synthetic pretraining a first run may need
            cfg = resolve_synthetic_weights(cfg)  # pretrained=synthetic -> the cached tiny CLIP, as run.py does
            if args.sequential:
                first_suite = round_ % 2 == 0  # alternate the order: neither side always runs second
                runs = [("suite", suite_epoch), ("bare", bare_epoch)] if first_suite else [("bare", bare_epoch), ("suite", suite_epoch)]
                times = {name: fn(cfg, args.epochs, args.steps, args.measure) for name, fn in runs}
            else:
                times = dict(zip(("suite", "bare"), interleaved_epochs(cfg, args.epochs, args.steps, args.measure)))
            suites.append(times["suite"])
            bares.append(times["bare"])
            ratios.append(times["suite"] / times["bare"])
            print(
                f"round {round_}: suite {times['suite']:.2f} s, bare {times['bare']:.2f} s, ratio {ratios[-1]:.3f} "
                f"(threads {torch.get_num_threads()}, load {' '.join(f'{v:.2f}' for v in os.getloadavg())})", flush=True,
            )
    print(
        f"{args.experiment}: suite/bare time of the last {args.measure} epoch(s), median {statistics.median(ratios):.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f}, {len(ratios)} rounds); all rounds pooled "
        f"{sum(suites) / sum(bares):.3f} ({sum(suites):.1f} s / {sum(bares):.1f} s); target <= 1.05"
    )


if __name__ == "__main__":
    main()
