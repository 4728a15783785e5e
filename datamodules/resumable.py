"""Where the training data stream stands, so a resumed run continues it exactly.

A checkpoint records the training loader's position (the sampler's epoch and how many batches of
that epoch were trained) and the process's random number generators (python, numpy, torch CPU and
CUDA). On resume, :class:`ResumableLoader` restarts the sampler at that position and puts the
generators back at the moment the uninterrupted run would have fetched its next batch:

- at an epoch boundary, *before* the loader's iterator is created (creating it draws the worker
  base seed from the torch generator, as it did in the uninterrupted run);
- in the middle of an epoch, *after* it is created (the uninterrupted run created no iterator
  between two batches).

With ``num_workers=0`` augmentation draws from the process generators, so this is exact. Worker
processes have their own generators, which a restart cannot put back mid-epoch; there each
training sample's augmentation is seeded from (seed, epoch, position) instead
(:class:`SeededSample`), so it does not depend on the workers at all.

Under DDP every rank seeds the same and draws the same numbers (the same model, the same steps), so
the generators of rank 0, which writes the checkpoint, stand for every rank.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, get_worker_info

RNG_STATE_VERSION = 1


def capture_rng() -> dict[str, Any]:
    """The process's generator states as plain values (loadable with ``weights_only=True``)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "version": RNG_STATE_VERSION,
        "python": [int(version), [int(x) for x in internal], gauss],
        "numpy": [str(kind), keys.astype(np.int64).tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back the generators :func:`capture_rng` recorded."""
    if int(state.get("version", -1)) != RNG_STATE_VERSION:
        raise ValueError(f"random generator state version {state.get('version')!r}; this code reads {RNG_STATE_VERSION}")
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(x) for x in internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class SeededSample(NamedTuple):
    """A training row and the seed of its augmentation (used with worker processes)."""

    row: int
    seed: int


@contextmanager
def seeded_generators(seed: int) -> Iterator[None]:
    """Python, numpy and torch (CPU) generators seeded with ``seed`` inside, put back after (except in a worker).

    In a DataLoader worker they are not put back: every sample seeds them afresh and nothing else
    in a worker draws from them, and saving numpy's state alone costs ~70 us a sample. The torch
    generator is seeded directly (``torch.manual_seed`` also visits every accelerator backend:
    ~85 us). Together 223 us -> 9 us a sample, timed alone; side by side the loader delivered
    1.15-1.26x the images/s (docs/BENCHMARKS.md, "Loader throughput").
    """
    generator = torch.default_generator
    restore = get_worker_info() is None
    if restore:
        states = random.getstate(), np.random.get_state(), generator.get_state()
    generator.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        if restore:
            random.setstate(states[0])
            np.random.set_state(states[1])
            generator.set_state(states[2])


class LoaderPosition(NamedTuple):
    """Where the next training batch comes from: ``epoch`` and batches of it already trained."""

    epoch: int
    batches: int


def position_after(trainer) -> LoaderPosition:
    """The position a checkpoint written now resumes at (Lightning's training progress).

    ``processed`` counts the batches whose step ran in the current epoch; a checkpoint written once
    all of them ran (epoch end, validation end) resumes at the start of the next epoch."""
    progress = trainer.fit_loop.epoch_loop.batch_progress.current
    epoch = int(trainer.current_epoch)
    if progress.processed >= trainer.num_training_batches:
        return LoaderPosition(epoch + 1, 0)
    return LoaderPosition(epoch, int(progress.processed))


class ResumableLoader(DataLoader):
    """The training loader: on its first iteration after :meth:`resume_at` the sampler starts at the
    saved position and the generators are restored (see the module docstring for when)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._resume: tuple[LoaderPosition, dict[str, Any] | None] | None = None

    def resume_at(self, position: LoaderPosition, rng: dict[str, Any] | None) -> None:
        self.sampler.set_epoch(position.epoch)
        self.sampler.start_at(position.batches * self.batch_size)
        self._resume = (position, rng)

    def __iter__(self):
        if self._resume is None:
            return super().__iter__()
        (position, rng), self._resume = self._resume, None
        if rng is not None and position.batches == 0:
            restore_rng(rng)
        iterator = super().__iter__()
        if rng is not None and position.batches > 0:
            restore_rng(rng)
        return iterator
