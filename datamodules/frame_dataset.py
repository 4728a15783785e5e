"""The dataset of face frames and the samplers that choose which frames an epoch sees.

Batches follow the contract in docs/ARCHITECTURE.md: ``image``, ``label`` (1 = fake),
``domain`` (id of a training domain, -1 for a domain not trained on), ``type`` (fine-grained
type id), ``video`` (video id index within the set) and ``index`` (row of the set's table, used
to put evaluation predictions back together across DDP ranks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset, Sampler, get_worker_info
from torchvision.io import ImageReadMode, decode_image, read_file
from torchvision.transforms.v2.functional import pil_to_tensor

from common.choices import check_choice
from datamodules.frame_sampling import stratified_positions, uniform_positions
from datamodules.resumable import SeededSample, seeded_generators


class UnreadableImageError(RuntimeError):
    """An image that cannot be opened or decoded; training stops instead of substituting another."""


def load_image(path: str) -> torch.Tensor:
    """The decoded image as a uint8 RGB CHW tensor (torchvision.io: libjpeg-turbo / libpng).

    Decoding straight into a tensor skips PIL's image object and the PIL -> tensor copy, and the
    transform then resizes and augments on uint8 (docs/BENCHMARKS.md, "Loader throughput").
    Formats torchvision.io does not decode (BMP, TIFF) are read with PIL; a file neither can
    read stops training (:class:`UnreadableImageError`), nothing is substituted.
    """
    try:
        return decode_image(read_file(path), mode=ImageReadMode.RGB)
    except (RuntimeError, ValueError, OSError) as error:
        try:
            return pil_to_tensor(load_rgb(path))
        except UnreadableImageError as pil_error:
            raise UnreadableImageError(f"{pil_error} (torchvision.io: {error})") from error


def load_rgb(path: str) -> Image.Image:
    """The decoded image as RGB; an RGB file is returned as decoded, without the copy convert makes."""
    try:
        with Image.open(path) as image:
            if image.mode == "RGB":
                image.load()  # decode now: the file closes when the block ends
                return image
            return image.convert("RGB")
    except (FileNotFoundError, UnidentifiedImageError, OSError) as error:
        raise UnreadableImageError(
            f"cannot read image {path!r} ({type(error).__name__}: {error}); expected a decodable image file. "
            f"No other sample is substituted: fix or remove it from the index."
        ) from error


@contextmanager
def per_sample_threads():
    """Run per-image work on one intra-op thread in the main process, as DataLoader workers do.

    Decoding and transforming one 256 px crop is about a millisecond of work; splitting it over
    torch's intra-op threads only adds fork-join waits, and on a busy machine those waits
    dominate: on the shared 2-core machine the training transform took 53 ms per image with 2
    threads against 1.3 ms with one (docs/DATASETS.md, "Loader throughput"). DataLoader workers
    already run with one thread; with ``num_workers=0`` the samples are made in the main process,
    so the thread count is lowered for the batch and restored afterwards (the training step,
    which runs between batches, keeps all its threads).
    """
    threads = torch.get_num_threads()
    if get_worker_info() is not None or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class FrameTable(Dataset):
    """A table of frames (one row per frame, with an absolute ``file`` column) as a dataset."""

    def __init__(
        self, table: pd.DataFrame, transform: Callable, domain_ids: dict[str, int], type_ids: dict[str, int]
    ):
        self.table = table.reset_index(drop=True)
        self.transform = transform
        self.video_names, video_codes = np.unique(
            self.table["video_id"].to_numpy(dtype=str), return_inverse=True
        )
        self._files = self.table["file"].to_numpy(dtype=str)
        self._labels = self.table["label"].to_numpy(dtype=np.int64)
        self._domains = self.table["domain"].map(lambda d: domain_ids.get(d, -1)).to_numpy(dtype=np.int64)
        self._types = self.table["type"].map(type_ids).to_numpy(dtype=np.int64)
        self._videos = video_codes.astype(np.int64)

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        """One sample: the transformed image and its ids as Python ints (collation turns each
        field into one int64 tensor per batch, cheaper than stacking a 0-d tensor per sample)."""
        if isinstance(index, SeededSample):  # worker processes: augmentation seeded per sample
            with seeded_generators(index.seed):
                image = self.transform(load_image(self._files[index.row]))
            index = index.row
        else:
            image = self.transform(load_image(self._files[index]))
        return {
            "image": image,
            "label": int(self._labels[index]),
            "domain": int(self._domains[index]),
            "type": int(self._types[index]),
            "video": int(self._videos[index]),
            "index": int(index),
        }

    def __getitems__(self, indices: list[int]) -> list[dict[str, torch.Tensor | int]]:
        """The samples of one batch (DataLoader calls this instead of one ``__getitem__`` each)."""
        with per_sample_threads():
            return [self[index] for index in indices]


def video_groups(table: pd.DataFrame) -> list[np.ndarray]:
    """Row indices of each video, in frame order (``frame_index`` when present, else path)."""
    order = ["video_id", "frame_index", "path"] if "frame_index" in table.columns else ["video_id", "path"]
    ordered = table.sort_values(order, kind="stable")
    return [group.index.to_numpy() for _, group in ordered.groupby("video_id", sort=True)]


def fixed_eval_frames(table: pd.DataFrame, frames_per_video: int) -> pd.DataFrame:
    """The fixed evaluation frames: ``frames_per_video`` uniformly spread over each video."""
    chosen = [group[uniform_positions(len(group), frames_per_video)] for group in video_groups(table)]
    if not chosen:
        return table.iloc[0:0]
    return table.loc[np.concatenate(chosen)].reset_index(drop=True)


class TrainFrameSampler(Sampler[int]):
    """Each epoch: ``frames_per_video`` frames per video, stratified-uniform, re-drawn per epoch.

    Handles DDP itself (rank-strided shards of equal length) so that the per-epoch re-draw and the
    optional class balancing survive; Lightning calls ``set_epoch`` on it every epoch. With
    ``balance='oversample'`` the videos of the rarer class are repeated until both classes have
    the same number of videos (the DTN recipe's balancing).
    """

    def __init__(
        self,
        table: pd.DataFrame,
        frames_per_video: int,
        seed: int = 0,
        balance: str = "none",
        rank: int = 0,
        world_size: int = 1,
        seeded: bool = False,
    ):
        check_choice("data.balance", balance, {"none", "oversample"})
        self.groups = video_groups(table)
        self.frames_per_video = frames_per_video
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        # seeded: yield SeededSample(row, seed) so augmentation in worker processes is seeded per
        # sample; _start: samples of this rank to skip once (a resume in the middle of an epoch).
        self.seeded = seeded
        self._start = 0
        labels = table["label"].to_numpy()
        self.repeats = np.ones(len(self.groups), dtype=np.int64)
        if balance == "oversample":
            video_labels = np.array([labels[g[0]] for g in self.groups])
            counts = {c: int((video_labels == c).sum()) for c in (0, 1)}
            if min(counts.values()) == 0:
                raise ValueError(
                    f"data.balance='oversample' needs both classes in the training set, got video counts {counts}"
                )
            minority = min(counts, key=counts.get)
            factor = counts[1 - minority] / counts[minority]
            # Whole repeats plus a deterministic share of one more, so the classes match closely.
            base, extra = int(np.floor(factor)), factor - np.floor(factor)
            idx = np.flatnonzero(video_labels == minority)
            self.repeats[idx] = base
            self.repeats[idx[: int(round(extra * len(idx)))]] += 1
        per_video = np.array(
            [min(len(g), frames_per_video) if frames_per_video > 0 else len(g) for g in self.groups]
        )
        self.total = int((per_video * self.repeats).sum())
        self.per_rank = self.total // world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def start_at(self, samples: int) -> None:
        """The next iteration skips this rank's first ``samples`` samples of the epoch (resume)."""
        self._start = int(samples)

    def __len__(self) -> int:
        return self.per_rank

    def __iter__(self) -> Iterator[int] | Iterator[SeededSample]:
        rng = np.random.default_rng([self.seed, self.epoch])
        picks = [
            group[stratified_positions(len(group), self.frames_per_video, rng)]
            for group, repeat in zip(self.groups, self.repeats)
            for _ in range(repeat)
        ]
        order = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
        order = order[rng.permutation(len(order))][: self.per_rank * self.world_size]
        start, self._start = self._start, 0
        rows = order[self.rank :: self.world_size][start:].tolist()
        if not self.seeded:
            return iter(rows)
        seeds = rng.integers(0, 2**62, size=len(order))[self.rank :: self.world_size][start:].tolist()
        return iter(SeededSample(row, seed) for row, seed in zip(rows, seeds))


class EvalShardSampler(Sampler[int]):
    """Evaluation rows split across ranks without padding: every row is scored exactly once."""

    def __init__(self, num_rows: int, rank: int = 0, world_size: int = 1):
        self.indices = list(range(rank, num_rows, world_size))

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)
