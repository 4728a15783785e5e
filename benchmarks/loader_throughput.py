"""Data-loading throughput of the suite's loader against a plain PIL loader, same files, same augmentation.

Writes synthetic 256x256 face-crop files (random windows of scikit-image's astronaut photograph,
so decoding costs what a real photograph costs) in the layout face preprocessing writes
(``<dir>/crops/...`` + ``<dir>/index.csv``), then loads the training split with

- the suite: :class:`FaceDataModule` on that prepared folder (``load_prepared_index`` ->
  ``FrameTable`` (torchvision.io decode to a uint8 tensor) + ``TrainFrameSampler`` -> DataLoader),
  the path every training run takes;
- plain: ``torchvision.datasets.ImageFolder`` (PIL loader) over the same files,

with the same training transform (:func:`build_transform`: resize, the augmentation set ``--augment``
(default ``standard``, conf/augment), normalise), the same batch size, workers, pin_memory and
persistent workers. Each round runs one epoch of each loader, alternating, so load changes on a
shared machine hit both alike; the first round is warm-up (worker start-up, page cache); the
medians of the others and the median of the per-round ratios are reported, with their spread:

    nice -n 10 python benchmarks/loader_throughput.py --workers 2 --format jpg --augment standard
    nice -n 10 python benchmarks/loader_throughput.py --workers 0 --format png --augment flip

``--device-path`` adds the suite's loader as a GPU run has it (uint8 batches; the normalisation runs
on the device after the copy and is not timed). ``--stages`` also times the decode and transform
steps one image at a time on one thread, each alternative next to the suite's choice (PIL vs
torchvision.io decoding; resize and augmentation on uint8 vs on float), to say what each choice gains. Numbers go into docs/BENCHMARKS.md ("Loader
throughput"). Decoded + augmented images per second; no model runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder

from datamodules.face_datamodule import FaceDataModule
from datamodules.transforms import NormalizeUint8, build_transform

REPO = Path(__file__).resolve().parent.parent

CLASSES = ("fake", "real")  # ImageFolder orders classes alphabetically: fake = 0, real = 1
TRAIN_ROOT = "crops/train"  # ImageFolder root: crops/train/<class>/<video>/<frame>


def write_prepared_crops(
    out: Path,
    videos: int = 64,
    frames: int = 8,
    size: int = 256,
    image_format: str = "png",
    val_videos: int = 2,
    seed: int = 0,
) -> pd.DataFrame:
    """Write ``videos`` training videos of ``frames`` crops (plus ``val_videos`` for validation).

    Layout ``out/crops/<split>/<real|fake>/<video>/<frame:06d>.<ext>`` with ``out/index.csv`` in
    the prepared-index format (paths relative to ``out``); half the videos of each split are fake.
    PNG is written as face preprocessing writes it (compress level 1), JPEG at quality 95.
    Returns the index.
    """
    from skimage import data

    if image_format not in ("png", "jpg"):
        raise ValueError(f"image_format must be 'png' or 'jpg', got {image_format!r}")
    photo = data.astronaut()
    if size > min(photo.shape[:2]):
        raise ValueError(f"crop size {size} exceeds the {photo.shape[1]}x{photo.shape[0]} source photograph")
    rng = np.random.default_rng(seed)
    rows = []
    for split, count in (("train", videos), ("val", val_videos)):
        for number in range(count):
            label = number % 2  # 1 = fake
            folder = f"crops/{split}/{CLASSES[1 - label]}/v{number:04d}"
            (out / folder).mkdir(parents=True, exist_ok=True)
            for frame in range(frames):
                y, x = rng.integers(0, photo.shape[0] - size + 1), rng.integers(0, photo.shape[1] - size + 1)
                crop = photo[y : y + size, x : x + size]
                relative = f"{folder}/{frame:06d}.{image_format}"
                image = Image.fromarray(np.ascontiguousarray(crop))
                if image_format == "png":
                    image.save(out / relative, compress_level=1)
                else:
                    image.save(out / relative, quality=95)
                rows.append(
                    {
                        "path": relative,
                        "label": label,
                        "domain": "bench",
                        "type": "fake" if label else "real",
                        "video_id": f"bench/{split}/v{number:04d}",
                        "split": split,
                        "media": "image",
                        "frame_index": frame,
                    }
                )
    index = pd.DataFrame(rows)
    index.to_csv(out / "index.csv", index=False)
    return index


def augment_set(name: str) -> dict:
    """The augmentation set ``conf/augment/<name>.yaml`` as a plain mapping."""
    import yaml

    path = REPO / "conf" / "augment" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise SystemExit(f"unknown augmentation set {name!r}; conf/augment holds {known}")
    return yaml.safe_load(path.read_text())


def suite_datamodule(
    prepared: Path,
    frames_per_video: int,
    batch_size: int,
    workers: int,
    image_size: int = 224,
    pin_memory: bool = False,
    augment: dict | None = None,
    normalize_on: str = "auto",
) -> FaceDataModule:
    """The datamodule every run uses, on one prepared folder; the train split is what is loaded."""
    protocol = {
        "name": "loader_benchmark",
        "train": [{"dataset": "bench", "split": "train"}],
        "val": [{"dataset": "bench", "split": "val"}],
    }
    datamodule = FaceDataModule(
        protocol=protocol,
        datasets={"bench": {"prepared": str(prepared)}},
        source="prepared",
        image_size=image_size,
        normalization="imagenet",
        frames_per_video={"train": frames_per_video, "eval": frames_per_video},
        batch_size=batch_size,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=True,
        augment=augment if augment is not None else {"hflip": 0.5},
        normalize_on=normalize_on,
    )
    datamodule.setup("fit")
    return datamodule


def plain_loader(
    prepared: Path,
    batch_size: int,
    workers: int,
    image_size: int = 224,
    pin_memory: bool = False,
    augment: dict | None = None,
    shuffle: bool = True,
) -> DataLoader:
    """torchvision ImageFolder (PIL loader) over the same training files, the same transform."""
    transform = build_transform(
        image_size, "imagenet", train=True, augment=augment if augment is not None else {"hflip": 0.5}
    )
    dataset = ImageFolder(str(prepared / TRAIN_ROOT), transform=transform)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        drop_last=len(dataset) > batch_size,
    )


def images(batch: object) -> int:
    """Images in a batch of either loader (the suite's dict or ImageFolder's (images, labels))."""
    return int((batch["image"] if isinstance(batch, dict) else batch[0]).shape[0])


def epoch_rate(loader: Iterable, epoch: int, finish: Callable | None = None) -> tuple[float, int]:
    """Images per second over one full epoch of ``loader`` (and the number of images).

    ``finish(batch, 0)`` runs on every batch in this process, inside the timing: the suite's
    datamodule normalises its uint8 batches there (on the device in training; here on the CPU,
    which counts it against the suite).
    """
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    count, start = 0, time.perf_counter()
    for batch in loader:
        if finish is not None:
            batch = finish(batch, 0)
        count += images(batch)
    return count / (time.perf_counter() - start), count


def builtin_standard_transform(image_size: int):
    """The ``standard`` set as a researcher writes it with torchvision v2 built-ins on PIL input.

    Flip 0.5, rotation +-10 deg 0.5, Gaussian blur kernel 3/5/7 0.5, brightness/contrast 0.1 0.5,
    JPEG 40-100 0.5, then ToDtype + Normalize: the same ops and probabilities as the suite's set,
    torchvision's own implementations (rotation with a black border, float blur, float jitter).
    """
    import torch
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize((image_size, image_size), antialias=True),
            v2.RandomHorizontalFlip(0.5),
            v2.RandomApply([v2.RandomRotation(10)], p=0.5),
            v2.RandomApply([v2.RandomChoice([v2.GaussianBlur(k) for k in (3, 5, 7)])], p=0.5),
            v2.RandomApply([v2.ColorJitter(brightness=0.1, contrast=0.1)], p=0.5),
            v2.RandomApply([v2.JPEG((40, 100))], p=0.5),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )


def compare(
    prepared: Path,
    frames_per_video: int,
    batch_size: int,
    workers: int,
    rounds: int,
    image_size: int = 224,
    augment: dict | None = None,
    builtin: bool = False,
    device_path: bool = False,
) -> dict[str, object]:
    """Alternate one epoch of each loader for ``rounds`` rounds; medians and ratios exclude round 0.

    ``suite`` is the datamodule as a CPU run has it (``data.normalize_on=auto``: the workers
    normalise). ``builtin`` adds ``plain_builtin``: ImageFolder (PIL) with
    :func:`builtin_standard_transform` (only meaningful with the ``standard`` set).
    ``device_path`` adds ``suite_uint8``: the datamodule as a GPU run has it (uint8 batches; the
    normalisation runs on the accelerator after the copy, so it is not timed here). Ratios are the
    suite over each other loader (``ratio``, ``ratio_plain_builtin``), except ``ratio_suite_uint8``:
    the GPU path over the suite.
    """
    datamodule = suite_datamodule(prepared, frames_per_video, batch_size, workers, image_size, augment=augment)
    loaders = {
        "suite": datamodule.train_dataloader(),
        "plain": plain_loader(prepared, batch_size, workers, image_size, augment=augment),
    }
    # Timed with the loader: what the datamodule does to each batch in the training process (it
    # passes the batches the workers normalised through; it would normalise uint8 ones).
    finish = {"suite": datamodule.on_after_batch_transfer}
    if builtin:
        builtin_loader = plain_loader(prepared, batch_size, workers, image_size, augment=augment)
        builtin_loader.dataset.transform = builtin_standard_transform(image_size)
        loaders["plain_builtin"] = builtin_loader
    if device_path:
        loaders["suite_uint8"] = suite_datamodule(
            prepared, frames_per_video, batch_size, workers, image_size, augment=augment, normalize_on="device"
        ).train_dataloader()
    rates: dict[str, list[float]] = {name: [] for name in loaders}
    counts: dict[str, int] = {}
    names = list(loaders)
    for epoch in range(rounds):
        # Rotate the order every round so no loader always runs first (load drift hits all alike).
        for name in names[epoch % len(names) :] + names[: epoch % len(names)]:
            rate, counts[name] = epoch_rate(loaders[name], epoch, finish.get(name))
            rates[name].append(rate)
    measured = {name: values[1:] or values for name, values in rates.items()}
    result: dict[str, object] = {name: statistics.median(measured[name]) for name in loaders}
    # Each round's epochs ran back to back: their ratio is less exposed to load drift.
    for other in names[1:]:
        paired = [o / s if other == "suite_uint8" else s / o for s, o in zip(measured["suite"], measured[other])]
        suffix = "" if other == "plain" else f"_{other}"
        result[f"ratio{suffix}"] = statistics.median(paired)
        result[f"paired_ratios{suffix}"] = paired
    result.update(rounds=rates, images_per_epoch=counts)
    return result


def _per_image_ms(function, inputs: list, repeats: int = 3) -> float:
    """Median over ``repeats`` passes of the mean milliseconds per input of ``function``."""
    passes = []
    for _ in range(repeats):
        start = time.perf_counter()
        for item in inputs:
            function(item)
        passes.append((time.perf_counter() - start) * 1000 / len(inputs))
    return statistics.median(passes)


def stage_costs(prepared: Path, image_size: int, augment: dict, count: int = 64) -> list[tuple[str, float, float]]:
    """(step, suite ms/image, alternative ms/image) for each choice of the suite's decode path.

    One thread, one image at a time, the two alternatives interleaved pass by pass.
    """
    import torch
    from PIL import Image
    from torchvision.io import ImageReadMode, decode_image, read_file
    from torchvision.transforms import v2
    from torchvision.transforms.v2 import functional as F

    from datamodules.augment import build_augment

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        files = sorted(str(p) for p in (prepared / TRAIN_ROOT).rglob("*.*"))[:count]
        to_image = v2.ToImage()

        def pil_decode(path):
            with Image.open(path) as image:
                return to_image(image.convert("RGB"))

        def tv_decode(path):
            return decode_image(read_file(path), mode=ImageReadMode.RGB)

        decoded = [tv_decode(f) for f in files]
        as_float = [v2.ToDtype(torch.float32, scale=True)(d) for d in decoded]
        resize = v2.Resize((image_size, image_size), antialias=True)
        small = [resize(d) for d in decoded]
        small_float = [resize(d) for d in as_float]
        ops = build_augment(augment)
        (blur,) = build_augment({"gaussian_blur": {"p": 1.0, "kernel": [5, 5]}})
        (rotate,) = build_augment({"rotate": {"p": 1.0, "degrees": 10, "border": "constant"}})
        (jpeg,) = build_augment({"jpeg": {"p": 1.0, "quality": [70, 70]}})
        (bright,) = build_augment({"brightness_contrast": {"p": 1.0}})
        mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
        normalize = NormalizeUint8(mean, std)
        to_float_normalize = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])
        rows = []
        pairs = [
            ("decode: torchvision.io vs PIL + ToImage", tv_decode, pil_decode, files, files),
            (f"resize {decoded[0].shape[-1]}->{image_size}: uint8 vs float", resize, resize, decoded, as_float),
            ("gaussian blur k=5: OpenCV uint8 vs torchvision float", blur,
             lambda x: F.gaussian_blur(x, [5, 5]), small, small_float),
            ("rotate 10 deg: OpenCV uint8 vs torchvision float", rotate,
             lambda x: F.rotate(x, 10.0, interpolation=v2.InterpolationMode.BILINEAR), small, small_float),
            ("brightness/contrast: OpenCV lookup table vs torchvision float", bright,
             lambda x: F.adjust_contrast(F.adjust_brightness(x, 1.05), 1.05), small, small_float),
            ("JPEG q70: OpenCV vs torchvision v2.JPEG", jpeg, v2.JPEG(quality=70), small, small),
            ("to float + normalise: fused vs ToDtype + Normalize", normalize, to_float_normalize, small, small),
        ]  # fmt: skip
        for name, suite_step, other_step, suite_inputs, other_inputs in pairs:
            suite_ms = statistics.median(_per_image_ms(suite_step, suite_inputs, 1) for _ in range(3))
            other_ms = statistics.median(_per_image_ms(other_step, other_inputs, 1) for _ in range(3))
            rows.append((name, suite_ms, other_ms))

        def augment_all(x):
            for op in ops:
                x = op(x)
            return x

        torch.manual_seed(0)
        rows.append((f"augmentation set ({len(ops)} ops) on the resized uint8 image", _per_image_ms(augment_all, small), float("nan")))
        return rows
    finally:
        torch.set_num_threads(threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=64, help="training videos (half fake)")
    parser.add_argument("--frames", type=int, default=8, help="crops per video (all are loaded each epoch)")
    parser.add_argument("--size", type=int, default=256, help="side of the crop files")
    parser.add_argument("--image-size", type=int, default=224, help="side after the transform's resize")
    parser.add_argument("--format", choices=("png", "jpg"), default="png", help="crop file format")
    parser.add_argument("--augment", default="standard", help="augmentation set of conf/augment (both loaders)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5, help="epochs of each loader; the first is warm-up")
    parser.add_argument("--stages", action="store_true", help="also time decode / resize / augment steps")
    parser.add_argument(
        "--builtin", action="store_true", help="also a PIL loader with torchvision's built-in ops (standard set)"
    )
    parser.add_argument(
        "--device-path", action="store_true",
        help="also the suite's loader as a GPU run has it (uint8 batches, normalised on the device, not timed)",
    )
    parser.add_argument("--dir", type=Path, default=None, help="keep the crops here (default: a temp dir)")
    args = parser.parse_args()
    augment = augment_set(args.augment)

    with tempfile.TemporaryDirectory(prefix="loader_bench_") as temporary:
        prepared = args.dir or Path(temporary)
        if not (prepared / "index.csv").is_file():
            write_prepared_crops(prepared, args.videos, args.frames, args.size, args.format)
        load_before = os.getloadavg()
        result = compare(
            prepared, args.frames, args.batch_size, args.workers, args.rounds, args.image_size, augment,
            builtin=args.builtin, device_path=args.device_path,
        )
        stages = stage_costs(prepared, args.image_size, augment) if args.stages else []
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(
        f"{args.videos * args.frames} {args.format} crops {args.size}px -> {args.image_size}px, augment "
        f"{args.augment}, batch {args.batch_size}, workers {args.workers}, {args.rounds} rounds (first = "
        f"warm-up), cpus {os.cpu_count()}, load average before {load_before[0]:.2f}, after {load}"
    )
    labels = {
        "suite": "suite (FaceDataModule)",
        "plain": "plain (ImageFolder, PIL, same transform)",
        "plain_builtin": "plain (ImageFolder, PIL, torchvision built-in ops)",
        "suite_uint8": "suite, GPU path (uint8 batches, device normalises)",
    }
    for name in result["rounds"]:
        per_round = " ".join(f"{r:.0f}" for r in result["rounds"][name])
        print(f"{labels[name]:<52}: {result[name]:8.1f} images/s   per round: {per_round}")
    ratios = (("", "suite / plain"), ("_plain_builtin", "suite / plain with built-in ops"),
              ("_suite_uint8", "suite GPU path / suite"))
    for suffix, label in ratios:
        if f"ratio{suffix}" in result:
            paired = result[f"paired_ratios{suffix}"]
            print(
                f"ratio {label} (median of the rounds' ratios): {result[f'ratio{suffix}']:.3f}   "
                f"range {min(paired):.2f}-{max(paired):.2f}   per round: {' '.join(f'{r:.2f}' for r in paired)}"
            )
    for name, suite_ms, other_ms in stages:
        if other_ms == other_ms:  # not NaN
            print(f"  {name}: {suite_ms:.2f} vs {other_ms:.2f} ms/image ({other_ms / suite_ms:.2f}x)")
        else:
            print(f"  {name}: {suite_ms:.2f} ms/image")


if __name__ == "__main__":
    main()
