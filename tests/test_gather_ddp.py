"""Evaluation under DDP (2 CPU processes, gloo) on an odd-sized set gives exactly the metrics of
one process: every row scored once, no padding duplicates counted."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from datamodules.frame_dataset import EvalShardSampler
from evaluation.gather import IncompleteEvaluationError, gather_scores
from evaluation.metrics import all_metrics

NUM_ROWS = 101  # odd: the two ranks hold 51 and 50 rows


def _data():
    rng = np.random.default_rng(3)
    labels = np.repeat(rng.integers(0, 2, NUM_ROWS // 3 + 1), 3)[:NUM_ROWS]  # one label per video
    scores = np.clip(0.3 * labels + rng.normal(0.35, 0.2, NUM_ROWS), 0, 1)
    videos = np.array([f"v{i // 3}" for i in range(NUM_ROWS)])
    return scores, labels, videos


def _worker(rank: int, world: int, init_file: str, out_file: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    scores, _, _ = _data()
    idx = torch.tensor(list(EvalShardSampler(NUM_ROWS, rank, world)))
    gathered = gather_scores(idx, torch.tensor(scores[idx.numpy()], dtype=torch.float32), NUM_ROWS, "odd")
    if rank == 0:
        np.save(out_file, gathered)
    dist.barrier()
    dist.destroy_process_group()


def test_ddp_gather_equals_single_process(tmp_path):
    out = tmp_path / "gathered.npy"
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(out)), nprocs=2, join=True)
    gathered = np.load(out)
    scores, labels, videos = _data()
    single = gather_scores(torch.arange(NUM_ROWS), torch.tensor(scores, dtype=torch.float32), NUM_ROWS, "odd")
    assert len(gathered) == NUM_ROWS and not np.isnan(gathered).any()
    np.testing.assert_array_equal(gathered, single)
    ddp_metrics = all_metrics(gathered, labels, videos)
    one_metrics = all_metrics(single, labels, videos)
    assert ddp_metrics["frame"]["n"] == NUM_ROWS
    for level in ("frame", "video"):
        for key, value in one_metrics[level].items():
            assert ddp_metrics[level][key] == pytest.approx(value, nan_ok=True), (level, key)


def test_rows_scored_twice_or_never_are_errors():
    with pytest.raises(IncompleteEvaluationError, match="more than once"):
        gather_scores(torch.tensor([0, 1, 1]), torch.zeros(3), 3, "dup")
    with pytest.raises(IncompleteEvaluationError, match="1 of 3 row"):
        gather_scores(torch.tensor([0, 1]), torch.zeros(2), 3, "gap")
    partial = gather_scores(torch.tensor([0, 2]), torch.ones(2), 3, "gap", require_complete=False)
    assert np.isnan(partial[1]) and partial[0] == 1
