"""The loader benchmark compares like with like: both loaders read the same files into the same
images and labels; the suite's main-process loading runs single-threaded and restores threads.
No timing is asserted (the machine is shared)."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest
import torch
from conftest import REPO, load_benchmark

from datamodules.frame_dataset import FrameTable
from datamodules.transforms import normalize_uint8


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("loader_throughput")


def _normalised(image: torch.Tensor) -> torch.Tensor:
    return normalize_uint8(image, "imagenet") if image.dtype == torch.uint8 else image


def _digest(image: torch.Tensor) -> str:
    return hashlib.sha1(image.contiguous().numpy().tobytes()).hexdigest()


@pytest.mark.parametrize("image_format, normalize_on", [("png", "auto"), ("jpg", "auto"), ("jpg", "device")])
def test_both_loaders_yield_the_same_images_and_labels(bench, tmp_path, image_format, normalize_on):
    index = bench.write_prepared_crops(
        tmp_path, videos=4, frames=3, size=48, image_format=image_format, val_videos=2
    )
    assert (index["split"] == "train").sum() == 12 and set(index["label"]) == {0, 1}
    no_flip = {"hflip": 0.0}  # deterministic transform: the same file must give the same tensor
    suite = bench.suite_datamodule(
        tmp_path, frames_per_video=3, batch_size=5, workers=0, image_size=32, augment=no_flip, normalize_on=normalize_on
    )
    plain = bench.plain_loader(
        tmp_path, batch_size=5, workers=0, image_size=32, augment=no_flip, shuffle=False
    )

    suite_items, plain_items = [], []
    for batch in suite.train_dataloader():
        # auto on the CPU: the loader normalises; device: uint8 until the hook Lightning calls after the copy
        assert batch["image"].dtype == (torch.uint8 if normalize_on == "device" else torch.float32)
        batch = suite.on_after_batch_transfer(batch, 0)
        suite_items += [(_digest(img), int(lab)) for img, lab in zip(batch["image"], batch["label"])]
    fake_class = plain.dataset.class_to_idx["fake"]
    for images, targets in plain:
        # ImageFolder numbers classes alphabetically; the suite uses 1 = fake.
        plain_items += [(_digest(img), int(t == fake_class)) for img, t in zip(images, targets)]
    # drop_last applies to both alike (12 images, batches of 5): compare what each served.
    assert len(suite_items) == len(plain_items) == 10
    # One image at a time (normalised one by one where the loader gives uint8): the same values bit for bit.
    dataset = suite.train_dataloader().dataset
    full_suite = [
        (_digest(_normalised(dataset[i]["image"])), int(row.label)) for i, row in enumerate(suite.train_table.itertuples())
    ]
    full_plain = [(_digest(img), int(t == fake_class)) for img, t in plain.dataset]
    assert sorted(full_suite) == sorted(full_plain)
    assert set(suite_items) <= set(full_plain) and set(plain_items) <= set(full_suite)


def test_main_process_batches_load_on_one_thread_and_restore(tmp_path):
    seen = []

    def transform(image):
        seen.append(torch.get_num_threads())
        return torch.zeros(1)

    from PIL import Image

    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    table = pd.DataFrame(
        [{"file": str(tmp_path / "a.png"), "label": 1, "domain": "d", "type": "t", "video_id": "v"}] * 3
    )
    dataset = FrameTable(table, transform, {"d": 0}, {"t": 0})
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=3, num_workers=0)))
        assert batch["label"].tolist() == [1, 1, 1]
        assert seen == [1, 1, 1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_comparison_with_the_standard_set_and_builtin_ops_reports_every_loader(bench, tmp_path):
    bench.write_prepared_crops(tmp_path, videos=2, frames=2, size=40, image_format="jpg", val_videos=2)
    augment = bench.augment_set("standard")
    assert augment["name"] == "standard" and "jpeg" in augment
    result = bench.compare(tmp_path, 2, 2, 0, rounds=2, image_size=32, augment=augment, builtin=True, device_path=True)
    assert set(result["rounds"]) == {"suite", "plain", "plain_builtin", "suite_uint8"}
    assert result["images_per_epoch"] == {"suite": 4, "plain": 4, "plain_builtin": 4, "suite_uint8": 4}
    assert len(result["paired_ratios"]) == len(result["paired_ratios_plain_builtin"]) == 1
    assert result["paired_ratios_suite_uint8"] == [result["rounds"]["suite_uint8"][1] / result["rounds"]["suite"][1]]
    stages = bench.stage_costs(tmp_path, 32, augment, count=4)
    assert [name.split(":")[0] for name, _, _ in stages[:2]] == ["decode", "resize 40->32"]
    assert all(ms > 0 for _, ms, _ in stages)
    with pytest.raises(SystemExit, match="unknown augmentation set 'nope'"):
        bench.augment_set("nope")


def test_the_documented_command_runs_small(tmp_path):
    """docs/BENCHMARKS.md's commands (every loader, the GPU path, the stage timings) at a tiny size."""
    import subprocess
    import sys

    args = [sys.executable, "benchmarks/loader_throughput.py", "--videos", "4", "--frames", "2", "--size", "48",
            "--image-size", "32", "--rounds", "2", "--workers", "0", "--format", "jpg", "--augment", "standard",
            "--builtin", "--device-path", "--stages", "--dir", str(tmp_path)]
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for line in ("suite (FaceDataModule)", "suite, GPU path (uint8 batches, device normalises)",
                 "ratio suite / plain (", "ratio suite / plain with built-in ops", "ratio suite GPU path / suite",
                 "resize 48->32: uint8 vs float", "augmentation set (5 ops)"):
        assert line in done.stdout, (line, done.stdout)
