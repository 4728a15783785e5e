"""Frames are sampled uniformly over whole videos, re-drawn each epoch, sharded without loss."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datamodules.frame_dataset import EvalShardSampler, TrainFrameSampler, fixed_eval_frames
from datamodules.frame_sampling import stratified_positions, uniform_positions


def _table(videos: dict[str, tuple[int, int]]) -> pd.DataFrame:
    rows = []
    for vid, (n, label) in videos.items():
        rows += [
            {"path": f"{vid}/{i:03d}.png", "video_id": vid, "label": label, "frame_index": i}
            for i in range(n)
        ]
    return pd.DataFrame(rows)


def test_uniform_positions_span_the_whole_video():
    pos = uniform_positions(100, 4)
    assert pos.tolist() == [12, 37, 62, 87]
    assert uniform_positions(3, 8).tolist() == [0, 1, 2]  # fewer frames than asked: all, no repeats


def test_stratified_positions_one_per_segment_and_vary():
    rng = np.random.default_rng(0)
    draws = np.stack([stratified_positions(40, 4, rng) for _ in range(200)])
    for seg in range(4):
        assert draws[:, seg].min() >= seg * 10 and draws[:, seg].max() < (seg + 1) * 10
    assert len({tuple(d) for d in draws}) > 50  # really random, not the first N frames


def test_train_sampler_redraws_per_epoch_and_is_deterministic():
    table = _table({f"v{i}": (30, i % 2) for i in range(6)})
    sampler = TrainFrameSampler(table, frames_per_video=3, seed=1)
    sampler.set_epoch(0)
    epoch0 = list(sampler)
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    sampler.set_epoch(0)
    assert list(sampler) == epoch0
    assert sorted(epoch0) != sorted(epoch1)
    assert len(epoch0) == len(sampler) == 18
    per_video = table.loc[epoch0].groupby("video_id").size()
    assert (per_video == 3).all()


def test_train_sampler_shards_disjoint_and_equal_under_ddp():
    table = _table({f"v{i}": (9, i % 2) for i in range(7)})
    shards = []
    for rank in range(2):
        s = TrainFrameSampler(table, 3, seed=0, rank=rank, world_size=2)
        s.set_epoch(2)
        shards.append(list(s))
    assert len(shards[0]) == len(shards[1]) == 10  # 21 frames, one dropped for equal shards
    assert not set(shards[0]) & set(shards[1])


def test_oversampling_balances_video_classes():
    table = _table({**{f"r{i}": (4, 0) for i in range(2)}, **{f"f{i}": (4, 1) for i in range(8)}})
    sampler = TrainFrameSampler(table, 4, balance="oversample")
    labels = table.loc[list(sampler), "label"]
    assert (labels == 0).sum() == (labels == 1).sum() == 32
    with pytest.raises(ValueError, match="balance"):
        TrainFrameSampler(table, 4, balance="weighted")


def test_eval_frames_fixed_and_shards_cover_every_row_once():
    table = _table({"a": (10, 0), "b": (2, 1)})
    frames = fixed_eval_frames(table, 4)
    assert frames.groupby("video_id").size().to_dict() == {"a": 4, "b": 2}
    assert frames.equals(fixed_eval_frames(table, 4))
    shards = [list(EvalShardSampler(len(frames), r, 2)) for r in range(2)]
    assert sorted(shards[0] + shards[1]) == list(range(len(frames)))  # 6 rows, odd shards fine


def test_undecodable_image_stops_with_its_name_and_nothing_is_substituted(tmp_path):
    import torch
    from PIL import Image

    from datamodules.frame_dataset import FrameTable, UnreadableImageError

    Image.new("RGB", (4, 4)).save(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    table = pd.DataFrame(
        [
            {"file": str(tmp_path / name), "label": 0, "domain": "d", "type": "t", "video_id": name}
            for name in ("good.png", "broken.png")
        ]
    )
    dataset = FrameTable(table, lambda image: torch.zeros(1), {"d": 0}, {"t": 0})
    assert dataset[0]["label"] == 0
    with pytest.raises(UnreadableImageError, match=r"broken\.png.*No other sample is substituted"):
        dataset.__getitems__([0, 1])
