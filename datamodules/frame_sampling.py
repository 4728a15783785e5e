"""Which frames of a video a step sees: uniform over the whole video, never the first N.

Training re-draws one frame per equal segment every epoch (stratified uniform sampling), so all
parts of every video are seen over epochs; evaluation takes the segment centres, fixed.
"""

from __future__ import annotations

import numpy as np


def uniform_positions(num_frames: int, num_take: int) -> np.ndarray:
    """Fixed positions at the centres of ``num_take`` equal segments (all frames if fewer)."""
    if num_frames <= 0:
        raise ValueError(f"a video needs at least one frame, got {num_frames}")
    if num_take <= 0 or num_take >= num_frames:
        return np.arange(num_frames)
    return np.floor((np.arange(num_take) + 0.5) * num_frames / num_take).astype(np.int64)


def stratified_positions(num_frames: int, num_take: int, rng: np.random.Generator) -> np.ndarray:
    """One random position inside each of ``num_take`` equal segments (all frames if fewer)."""
    if num_frames <= 0:
        raise ValueError(f"a video needs at least one frame, got {num_frames}")
    if num_take <= 0 or num_take >= num_frames:
        return np.arange(num_frames)
    edges = np.linspace(0, num_frames, num_take + 1)
    low = np.floor(edges[:-1]).astype(np.int64)
    high = np.maximum(np.floor(edges[1:]).astype(np.int64), low + 1)
    return rng.integers(low, high)
