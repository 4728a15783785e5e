"""The GPU measurement, per method at paper scale with random weights (called by benchmarks/gpu.sh).

For each method it prints: training images/s (forward with every training loss, backward, fused
AdamW step) and inference images/s in bf16 autocast, peak GPU memory, model FLOPs utilisation (MFU:
the measured FLOPs of a training step, torch.utils.flop_counter, over the step time and the device's
bf16 peak), the data loader's images/s with ``--workers`` workers on crops on disk (the embedded
synthetic set, generated on first use, decoded and resized to the method's input like prepared
crops), and with more than one GPU the DDP scaling: all-GPU images/s over one GPU's.

Options: ``--compile`` (``torch.compile``; its time is reported: the first step's time minus a
steady step's), ``--no-channels-last`` (CNN detectors use channels_last unless this is given),
``--precision 32`` (TF32 matmuls and convolutions instead of bf16). ``--dry-run`` runs everything on
the CPU with the tiny demo models in seconds (what the test suite does); MFU is then not printed,
there being no peak to compare with.

    bash benchmarks/gpu.sh                  # every method, one GPU or all GPUs
    python benchmarks/gpu_bench.py --dry-run --methods efficientnet_b4 clip_finetune
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import tempfile
import time
import traceback
from pathlib import Path

import torch
from hydra.utils import instantiate
from torch.utils.flop_counter import FlopCounterMode
from train_step import loader_throughput, stand_in_trainer  # run as a script: benchmarks/ is on sys.path

from engine.compose import compose_run_config

# method -> Hydra overrides (paper scale, random weights). GM-DF's training step is timed on its joint
# forward with the pixel MIM target (its dVAE is trained by the pipeline), not through the meta step.
METHODS: dict[str, list[str]] = {
    "efficientnet_b4": ["detector=efficientnet_b4"],
    "xception": ["detector=xception"],
    "clip_finetune": ["detector=clip_finetune"],
    "dfmoe": ["experiment=dfmoe_ffpp", "detector.expert_pretrained=null"],
    "dtn": ["experiment=dtn_ffpp"],
    "gmdf": ["experiment=gmdf_multidomain", "detector.mim.target=pixels"],
    "moa_clip": ["experiment=moa_ffpp"],
    "suede": ["experiment=suede_uniattack_p1"],
}
# Dense bf16 tensor-core peaks (no sparsity), TFLOP/s, by a substring of torch.cuda.get_device_name().
# Checked in this order (H100 PCIe before H100). V100 has no bf16: its fp16 peak is given.
BF16_PEAK_TFLOPS: list[tuple[str, float]] = [
    ("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("GH200", 989.0), ("A100", 312.0), ("A800", 312.0),
    ("L40S", 362.0), ("L40", 181.0), ("A40", 150.0), ("A10", 125.0), ("L4", 121.0), ("V100", 125.0),
    ("RTX 4090", 165.0), ("RTX 3090", 71.0),
]


def bf16_peak_tflops(device_name: str) -> float | None:
    for key, peak in BF16_PEAK_TFLOPS:
        if key in device_name:
            return peak
    return None


def fused_adamw(params, lr: float = 1e-4) -> torch.optim.Optimizer:
    """AdamW with ``fused="auto"`` (detectors/optimizers.py): fused where every parameter is on CUDA,
    the default implementation elsewhere (the CPU dry run)."""
    import functools

    from detectors.optimizers import build_optimizer

    return build_optimizer(functools.partial(torch.optim.AdamW, lr=lr, fused="auto"), params)


def build(method: str, scale: str, batch_size: int, workers: int, output: Path):
    # A GPU run's loaders deliver uint8 batches, normalised on the device (data.normalize_on=auto there); this
    # datamodule has no Trainer to tell it the device, so it is told here.
    place = "device" if torch.cuda.is_available() else "auto"
    overrides = [*METHODS[method], f"scale={scale}", "data.source=synthetic", "data.synthetic.progress=false",
                 f"data.batch_size={batch_size}", f"data.num_workers={workers}", "detector.pretrained=null",
                 f"data.normalize_on={place}", "trainer=gpu"]  # the GPU trainer, its cuDNN autotuner setting included
    cfg = compose_run_config(overrides, output)
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.setup("fit")
    model = instantiate(cfg.detector, _convert_="all")
    model._trainer = stand_in_trainer(datamodule)
    model.setup("fit")
    model._trainer = None
    return cfg, datamodule, model


def full_batch(batch: dict, size: int, device: torch.device) -> dict:
    """The real batch repeated to ``size`` rows, on ``device``."""
    rows = batch["image"].shape[0]
    index = torch.arange(size) % rows
    return {k: (v[index].to(device, non_blocking=True) if isinstance(v, torch.Tensor) and v.shape[:1] == (rows,) else v)
            for k, v in batch.items()}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(step, device: torch.device) -> float:
    """Seconds one ``step()`` takes on ``device``, queued work finished before and after."""
    _sync(device)
    start = time.perf_counter()
    step()
    _sync(device)
    return time.perf_counter() - start


def measure_method(model, batch: dict, device: torch.device, args) -> dict:
    dtype = torch.bfloat16 if args.precision == "bf16" else None
    model = model.to(device).train()
    if getattr(model, "channels_last", False) and not args.no_channels_last:
        model = model.to(memory_format=torch.channels_last)
    else:
        model.channels_last = False
    if args.compile:
        model.compile(backend=args.compile_backend)
    optimizer = fused_adamw([p for p in model.parameters() if p.requires_grad])
    images = batch["image"]

    def train_step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            output = model(model._images(batch), batch)
            loss, _ = model.combine_losses(output, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def infer_step() -> None:
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            model(model._images(batch), None).fake_probability()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    first = _timed(train_step, device)  # compiles (with --compile), warms up kernels and the allocator
    for _ in range(args.warmup):
        train_step()
    train_times = [_timed(train_step, device) for _ in range(args.steps)]
    with FlopCounterMode(display=False) as counter:
        train_step()
    train_flops = counter.get_total_flops()
    peak_memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    model.eval()
    infer_step()
    infer_times = [_timed(infer_step, device) for _ in range(args.steps)]
    step = statistics.median(train_times)
    return {
        "batch": images.shape[0], "train_images_per_s": images.shape[0] / step,
        "infer_images_per_s": images.shape[0] / statistics.median(infer_times),
        "train_step_s": step, "train_tflop_per_step": train_flops / 1e12, "peak_memory_gib": peak_memory,
        "first_step_s": first, "compile_s": (first - step) if args.compile else None,
    }


def _ddp_worker(rank: int, world: int, method: str, args, port: int, queue) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("nccl", rank=rank, world_size=world)
    torch.cuda.set_device(rank)
    device = torch.device("cuda", rank)
    torch.backends.cuda.matmul.allow_tf32 = True  # a spawned process: main()'s settings are not inherited
    torch.backends.cudnn.allow_tf32 = True
    with tempfile.TemporaryDirectory() as tmp:
        cfg, datamodule, model = build(method, args.scale, args.batch_size, 0, Path(tmp))
        torch.backends.cudnn.benchmark = bool(cfg.trainer.benchmark)
        batch = full_batch(next(iter(datamodule.train_dataloader())), args.batch_size, device)
        batch = datamodule.on_after_batch_transfer(batch, 0)  # uint8 -> normalised on the device
    model = model.to(device).train()
    dtype = torch.bfloat16 if args.precision == "bf16" else None
    wrapped = DistributedDataParallel(model, device_ids=[rank], find_unused_parameters=getattr(model, "ddp_find_unused_parameters", False))
    optimizer = fused_adamw([p for p in model.parameters() if p.requires_grad])
    times = []
    for i in range(args.warmup + 1 + args.steps):
        torch.cuda.synchronize(device)
        start = time.perf_counter()
        with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
            output = wrapped(model._images(batch), batch)
            loss, _ = model.combine_losses(output, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        torch.cuda.synchronize(device)
        if i > args.warmup:
            times.append(time.perf_counter() - start)
    if rank == 0:
        queue.put(world * args.batch_size / statistics.median(times))
    dist.destroy_process_group()


def ddp_images_per_s(method: str, args, world: int) -> float:
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    context = mp.get_context("spawn")
    queue = context.Queue()
    mp.start_processes(_ddp_worker, args=(world, method, args, port, queue), nprocs=world, join=True, start_method="spawn")
    return queue.get()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--workers", type=int, default=8, help="data-loader workers for the loader measurement")
    parser.add_argument("--loader-batches", type=int, default=30)
    parser.add_argument("--precision", choices=["bf16", "32"], default="bf16")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--compile-backend", default="inductor", help="torch.compile backend (aot_eager: a quick check on CPU)")
    parser.add_argument("--no-channels-last", action="store_true")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's bf16 peak, when not in the table")
    parser.add_argument("--no-ddp", action="store_true", help="skip the all-GPU DDP measurement")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny demo models, a few steps")
    args = parser.parse_args()
    if args.dry_run:
        device, args.scale = torch.device("cpu"), "demo"
    else:
        if not torch.cuda.is_available():
            raise SystemExit("gpu_bench: no CUDA device; run with --dry-run to check the script on the CPU")
        device, args.scale = torch.device("cuda", 0), "paper"
        torch.backends.cuda.matmul.allow_tf32 = True  # where bf16 autocast does not apply (and --precision 32)
        torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
    peak = args.peak_tflops or (bf16_peak_tflops(name) if device.type == "cuda" else None)
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    print(f"device: {name} ({gpus} GPU(s)); bf16 peak {peak or 'unknown'} TFLOP/s; torch {torch.__version__}; "
          f"scale={args.scale} batch={args.batch_size} precision={args.precision} compile={args.compile}", flush=True)
    rows: dict[str, dict] = {}
    failed: list[str] = []

    def write_json() -> None:  # after every method, so a run cut short keeps what it measured
        if args.json:
            args.json.write_text(json.dumps({"device": name, "gpus": gpus, "peak_tflops": peak, "torch": torch.__version__,
                                             "args": {k: str(v) for k, v in vars(args).items()}, "methods": rows,
                                             "failed": failed}, indent=1))

    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods:
            try:
                row = measure(method, args, device, peak, gpus, Path(tmp) / method)
            except Exception as error:  # one method's failure is reported and the others still run
                traceback.print_exc()
                print(f"{method}: FAILED: {type(error).__name__}: {error}", flush=True)
                rows[method] = {"error": f"{type(error).__name__}: {error}"}
                failed.append(method)
                write_json()
                continue
            finally:
                gc.collect()  # a failed method's tensors (an out-of-memory error's frames) before the cache is emptied
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            rows[method] = row
            write_json()
            print(format_row(method, row, args.workers, gpus), flush=True)
            if row["loader_images_per_s"] < row["train_images_per_s"]:
                print(f"  {method}: the loader ({row['loader_images_per_s']:.0f} img/s) is slower than training: "
                      "it is the bottleneck", flush=True)
    if failed:
        raise SystemExit(f"gpu_bench: {len(failed)} of {len(args.methods)} methods failed: {', '.join(failed)}")


def measure(method: str, args, device: torch.device, peak: float | None, gpus: int, output: Path) -> dict:
    start = time.perf_counter()
    cfg, datamodule, model = build(method, args.scale, args.batch_size, args.workers, output)
    if device.type == "cuda":  # as the Trainer sets it: off where per-expert batch sizes change every step (DFMoE)
        torch.backends.cudnn.benchmark = bool(cfg.trainer.benchmark)
    built = time.perf_counter()
    loader = loader_throughput(datamodule, args.loader_batches)
    batch = full_batch(next(iter(datamodule.train_dataloader())), args.batch_size, device)
    batch = datamodule.on_after_batch_transfer(batch, 0)  # uint8 -> normalised on the device
    loaded = time.perf_counter()
    row = measure_method(model, batch, device, args)
    # where this script's own time goes (its 10-minute budget): build, loader, the model's measurement
    row["phase_s"] = {"build": built - start, "loader": loaded - built, "measure": time.perf_counter() - loaded}
    row.update(loader_images_per_s=loader, workers=args.workers, input_size=int(cfg.detector.input_size),
               params_m=sum(p.numel() for p in model.parameters()) / 1e6, cudnn_benchmark=torch.backends.cudnn.benchmark)
    row["mfu"] = row["train_tflop_per_step"] / row["train_step_s"] / peak if peak else None
    del model, batch
    if gpus > 1 and not args.no_ddp:
        ddp_start = time.perf_counter()
        all_gpus = ddp_images_per_s(method, args, gpus)
        row["ddp_images_per_s"], row["ddp_scaling"] = all_gpus, all_gpus / row["train_images_per_s"]
        row["phase_s"]["ddp"] = time.perf_counter() - ddp_start
    row["phase_s"]["total"] = time.perf_counter() - start
    return row


def format_row(method: str, row: dict, workers: int, gpus: int) -> str:
    mfu = f"{row['mfu'] * 100:5.1f}%" if row["mfu"] is not None else "  n/a"
    memory = f"{row['peak_memory_gib']:6.2f} GiB" if row["peak_memory_gib"] is not None else "   n/a"
    ddp = f" DDP x{gpus}: {row['ddp_images_per_s']:.0f} img/s ({row['ddp_scaling']:.2f}x)" if "ddp_scaling" in row else ""
    compiled = f" compile {row['compile_s']:.1f} s" if row["compile_s"] is not None else ""
    return (f"{method:16s} input {row['input_size']:3d} params {row['params_m']:7.2f}M | train {row['train_images_per_s']:8.1f} img/s "
            f"infer {row['infer_images_per_s']:8.1f} img/s | peak mem {memory} | MFU {mfu} | "
            f"loader {row['loader_images_per_s']:8.1f} img/s ({workers} workers){compiled}{ddp}")


if __name__ == "__main__":
    main()
