"""Data-loading throughput (images/s) and training-step time of detector configurations.

Prints one line per measurement; numbers go into docs/BENCHMARKS.md. Data comes from the embedded
synthetic set (resized to each configuration's input size), so it runs on any machine:

    python benchmarks/train_step.py                       # demo + paper baselines, CPU
    python benchmarks/train_step.py --detectors xception --scales paper --batch-size 32 --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from hydra.utils import instantiate

from engine.compose import compose_run_config


def stand_in_trainer(datamodule, stepping_batches: int | None = None) -> SimpleNamespace:
    """What a detector reads from its trainer outside a Trainer: ``setup`` sizes parts from the training
    domains (MoA-CLIP's adapters, GM-DF's domain experts and tokenizer) through ``trainer.datamodule``;
    ``configure_optimizers`` reads the run's length (``estimated_stepping_batches``) for step schedules.
    A loop that keeps it attached counts ``current_epoch`` / ``global_step`` for per-step hooks; ``barebones``
    makes ``self.log`` return at once. Set it as ``model._trainer`` (the benchmarks that time a step without
    Lightning's loop)."""
    return SimpleNamespace(datamodule=datamodule, world_size=1, global_rank=0, local_rank=0, fast_dev_run=False,
                           estimated_stepping_batches=stepping_batches, barebones=True, current_epoch=0, global_step=0)


def loader_throughput(datamodule, batches: int) -> float:
    loader = datamodule.train_dataloader()
    loader.sampler.set_epoch(0)
    iterator = iter(loader)
    next(iterator)  # worker start-up is not throughput
    count, start = 0, time.perf_counter()
    for _ in range(batches):
        try:
            batch = next(iterator)
        except StopIteration:
            break
        count += batch["image"].shape[0]
    return count / (time.perf_counter() - start)


def step_time(model, batch: dict, device: str, steps: int, precision: str) -> float:
    """Median time of forward (with the batch: every training loss) + backward + Adam step. Detectors
    that optimise by hand (GM-DF's meta-optimiser) are timed on their joint forward, not the meta step."""
    model = model.to(device).train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    images = batch["image"]
    dtype = torch.bfloat16 if precision == "bf16" else None
    times = []
    for i in range(steps + 1):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(device_type=device, dtype=dtype, enabled=dtype is not None):
            output = model(images, batch)
            loss, _ = model.combine_losses(output, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if i:  # the first step warms up kernels and allocators
            times.append(time.perf_counter() - start)
    return statistics.median(times)


# GM-DF's dVAE tokenizer is trained by the pipeline before fitting; the benchmark times the same step
# with the pixel-regression MIM target (same masked forward, a cheaper loss head) instead.
EXTRA_OVERRIDES = {"gmdf": ["detector.mim.target=pixels"]}
# Methods are timed inside their own experiment (its protocol sets the number of domains, adapters...).
METHOD_EXPERIMENTS = {
    "dfmoe": "dfmoe_ffpp", "dtn": "dtn_ffpp", "gmdf": "gmdf_multidomain", "moa_clip": "moa_ffpp",
    "suede": "suede_uniattack_p1",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detectors", nargs="+", default=["efficientnet_b4", "xception", "clip_finetune"])
    parser.add_argument("--scales", nargs="+", default=["demo", "paper"])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--loader-batches", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=["32", "bf16"], default="32")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for detector in args.detectors:
            for scale in args.scales:
                overrides = [
                    f"experiment={METHOD_EXPERIMENTS[detector]}" if detector in METHOD_EXPERIMENTS else f"detector={detector}",
                    f"scale={scale}", "data.source=synthetic", "data.synthetic.progress=false",
                    f"data.batch_size={args.batch_size}", f"data.num_workers={args.workers}", "detector.pretrained=null",
                    *EXTRA_OVERRIDES.get(detector, []),
                ]
                cfg = compose_run_config(overrides, Path(tmp))
                datamodule = instantiate(cfg.data, _convert_="all")
                datamodule.setup("fit")
                images_per_s = loader_throughput(datamodule, args.loader_batches)
                # A real batch (every key the losses read), normalised as Lightning has the datamodule do.
                batch = datamodule.on_after_batch_transfer(next(iter(datamodule.train_dataloader())), 0)
                model = instantiate(cfg.detector, _convert_="all")
                model._trainer = stand_in_trainer(datamodule)
                model.setup("fit")
                params = sum(p.numel() for p in model.parameters()) / 1e6
                seconds = step_time(model, batch, args.device, args.steps, args.precision)
                print(
                    f"{detector:18s} scale={scale:5s} input={cfg.detector.input_size:3d} params={params:7.2f}M "
                    f"loader={images_per_s:8.1f} img/s (workers={args.workers}) "
                    f"train_step={seconds * 1000:9.1f} ms/batch of {args.batch_size} on {args.device} ({args.precision})",
                    flush=True,
                )


if __name__ == "__main__":
    main()
