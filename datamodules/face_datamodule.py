"""The one generic LightningDataModule: a protocol (config) says which named datasets are train,
validation and each test set; this module loads their records, checks them, and serves them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import lightning as L
import pandas as pd
import torch
from torch.utils.data import DataLoader

from common.choices import check_choice
from datamodules.frame_dataset import EvalShardSampler, FrameTable, TrainFrameSampler, fixed_eval_frames
from datamodules.protocol import RECORDS_DOMAIN, Protocol, ProtocolError, ProtocolItem, parse_protocol
from datamodules.resumable import LoaderPosition, ResumableLoader, capture_rng, position_after
from datamodules.sources import load_dataset_records
from datamodules.transforms import build_transform, normalize_uint8

log = logging.getLogger(__name__)

# Where the uint8 images become normalised float32 (docs/ARCHITECTURE.md, "Batches"): "loader" in
# each worker, per image; "device" for the whole batch after the host-to-device copy; "auto" is
# "device" on an accelerator and "loader" on the CPU (there the workers normalise in parallel
# with the training step, while a batch normalised in the training process waits for it).
NORMALIZE_ON = ("auto", "device", "loader")


@dataclass
class EvalSet:
    """A named evaluation set: the fixed frames it scores and the dataset serving them."""

    name: str
    frames: pd.DataFrame
    dataset: FrameTable


class FaceDataModule(L.LightningDataModule):
    def __init__(
        self,
        protocol: Mapping,
        datasets: Mapping[str, Mapping],
        source: str = "prepared",
        synthetic: Mapping | None = None,
        image_size: int = 224,
        normalization: str = "imagenet",
        frames_per_video: Mapping | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 4,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        balance: str = "none",
        augment: Mapping | None = None,
        seed: int = 0,
        scale_name: str | None = None,
        normalize_on: str = "auto",
    ):
        super().__init__()
        check_choice("data.normalize_on", normalize_on, NORMALIZE_ON)
        self.normalize_on = normalize_on
        self.datasets_cfg = {str(k): dict(v) for k, v in datasets.items()}
        self.protocol: Protocol = parse_protocol(protocol, list(self.datasets_cfg))
        self.source = source
        self.synthetic = dict(synthetic or {})
        self.image_size = image_size
        self.normalization = normalization
        frames = dict(frames_per_video or {})
        self.train_frames = int(frames.get("train", 8))
        self.eval_frames = int(frames.get("eval", 32))
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.balance = balance
        self.augment = dict(augment or {})
        self.seed = seed
        self.scale_name = scale_name
        self.domain_names: list[str] = []
        self.type_names: list[str] = []
        self.train_table: pd.DataFrame | None = None
        self.val_set: EvalSet | None = None
        self.test_sets: list[EvalSet] = []
        self._records_cache: dict[str, pd.DataFrame] = {}
        self._resume_state: dict | None = None  # from a checkpoint: where the training stream stands

    # -- records -------------------------------------------------------------------------------
    def _dataset_records(self, name: str) -> pd.DataFrame:
        if name not in self._records_cache:
            self._records_cache[name] = load_dataset_records(
                name, self.datasets_cfg[name], self.source, self.synthetic, self.scale_name
            )
        return self._records_cache[name]

    def _item_records(self, item: ProtocolItem) -> pd.DataFrame:
        records = self._dataset_records(item.dataset)
        selected = records[records["split"] == item.split]
        if item.types is not None:
            unknown = sorted(set(item.types) - set(records["type"]))
            if unknown:
                raise ValueError(
                    f"protocol {self.protocol.name!r}: dataset {item.dataset!r} has no type(s) {unknown}; "
                    f"its types are {sorted(records['type'].unique())}"
                )
            selected = selected[selected["type"].isin(item.types)]
        if item.exclude_types:
            selected = selected[~selected["type"].isin(item.exclude_types)]
        if selected.empty:
            raise ValueError(
                f"protocol {self.protocol.name!r}: {item} selects no records from dataset {item.dataset!r} "
                f"(splits present: {sorted(records['split'].unique())})"
            )
        selected = selected.copy()
        if item.domain != RECORDS_DOMAIN:
            selected["domain"] = item.domain_name
        selected["dataset"] = item.dataset
        return selected

    def _group_records(self, items: tuple[ProtocolItem, ...], what: str) -> pd.DataFrame:
        table = pd.concat([self._item_records(i) for i in items], ignore_index=True)
        duplicated = table["file"].duplicated()
        if duplicated.any():
            raise ValueError(
                f"protocol {self.protocol.name!r} {what}: {int(duplicated.sum())} frame(s) are selected twice "
                f"(e.g. {table.loc[duplicated, 'file'].head(3).tolist()}); make the items disjoint"
            )
        return table

    # -- Lightning hooks ---------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.train_table is not None:
            return
        self.train_table = self._group_records(self.protocol.train, "train")
        val_table = self._group_records(self.protocol.val, "val")
        test_tables = {
            name: self._group_records(items, f"test.{name}") for name, items in self.protocol.test.items()
        }
        # Training domains in the order they first appear (item order; record order for `domain: records`).
        self.domain_names = list(dict.fromkeys(self.train_table["domain"]))
        all_types = pd.concat(
            [self.train_table["type"], val_table["type"], *(t["type"] for t in test_tables.values())]
        )
        self.type_names = sorted(all_types.unique())
        self._check_leakage(val_table, test_tables)
        self.val_set = self._eval_set("val", val_table)
        self.test_sets = [self._eval_set(name, table) for name, table in test_tables.items()]
        if self.source == "synthetic":
            # scale=demo switches the source: say so, so that nobody mistakes a demo for real data.
            log.info(
                "data.source=synthetic: embedded synthetic domains stand in for %s; "
                "add data.source=prepared for a small run on your prepared crops",
                sorted({i.dataset for items in (self.protocol.train, self.protocol.val) for i in items}),
            )
        log.info(
            "protocol %s: train %d frames / %d videos (domains %s), val %d frames, test sets %s",
            self.protocol.name,
            len(self.train_table),
            self.train_table["video_id"].nunique(),
            self.domain_names,
            len(self.val_set.frames),
            {s.name: len(s.frames) for s in self.test_sets},
        )

    def _check_leakage(self, val_table: pd.DataFrame, test_tables: Mapping[str, pd.DataFrame]) -> None:
        train_files = set(self.train_table["file"])
        for name, table in {"val": val_table, **test_tables}.items():
            shared = train_files.intersection(table["file"])
            if shared:
                raise ProtocolError(
                    f"protocol {self.protocol.name!r}: {len(shared)} frame(s) of set {name!r} are also training frames "
                    f"(e.g. {sorted(shared)[:3]}); evaluation data must not be trained on"
                )
        # The validation frames select the checkpoint: testing on them would report a selected score.
        val_files = set(val_table["file"])
        for name, table in test_tables.items():
            shared = val_files.intersection(table["file"])
            if shared:
                raise ProtocolError(
                    f"protocol {self.protocol.name!r}: {len(shared)} frame(s) of test set {name!r} are also validation "
                    f"frames (e.g. {sorted(shared)[:3]}); a test set must not contain the frames that select the checkpoint"
                )

    def _ids(self) -> tuple[dict[str, int], dict[str, int]]:
        return {d: i for i, d in enumerate(self.domain_names)}, {t: i for i, t in enumerate(self.type_names)}

    def _eval_set(self, name: str, table: pd.DataFrame) -> EvalSet:
        frames = fixed_eval_frames(table, self.eval_frames)
        return EvalSet(name, frames, FrameTable(frames, self._transform(train=False, normalize=True), *self._ids()))

    def _transform(self, train: bool, normalize: bool):
        augment = self.augment if train else None
        return build_transform(self.image_size, self.normalization, train=train, augment=augment, normalize=normalize)

    def _rank_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def _loader(self, dataset, sampler, batch_size: int, drop_last: bool, cls: type[DataLoader] = DataLoader) -> DataLoader:
        return cls(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
            drop_last=drop_last,
        )

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank_world()
        dataset = FrameTable(self.train_table, self._transform(train=True, normalize=self.loader_normalizes), *self._ids())
        sampler = TrainFrameSampler(
            self.train_table, self.train_frames, self.seed, self.balance, rank, world, seeded=self.num_workers > 0
        )
        loader = self._loader(dataset, sampler, self.batch_size, drop_last=len(sampler) > self.batch_size, cls=ResumableLoader)
        if self._resume_state is not None:
            state, self._resume_state = self._resume_state, None
            loader.resume_at(LoaderPosition(int(state["epoch"]), int(state["batches"])), state.get("rng"))
        return loader

    @property
    def loader_normalizes(self) -> bool:
        """Whether the loaders' transforms normalise each image (else they give uint8; see NORMALIZE_ON)."""
        if self.normalize_on != "auto":
            return self.normalize_on == "loader"
        trainer = getattr(self, "trainer", None)
        return trainer is None or trainer.strategy.root_device.type == "cpu"

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """Normalise a batch of uint8 images on the device it was moved to (Lightning calls this for
        every batch of this module's loaders, after the host-to-device copy); a batch the loader
        normalised passes through.

        uint8 batches move a quarter of the bytes through worker shared memory, pinned memory and
        the copy; on the accelerator they take one conversion and one fused multiply-add per batch.
        The values are those of the per-image normalisation, bit for bit on the same device. Code
        that iterates these loaders outside a Trainer calls this too.
        """
        if batch["image"].dtype != torch.uint8:
            return batch
        batch["image"] = normalize_uint8(batch["image"], self.normalization)
        if self.trainer is not None:
            # The precision plugin converted the batch before the copy, while the images were uint8:
            # a "true" precision (bf16-true, 16-true, 64-true) casts the new floats now.
            batch = self.trainer.precision_plugin.convert_input(batch)
        return batch

    # -- resume (datamodules/resumable.py): Lightning saves this into every checkpoint -----------
    def state_dict(self) -> dict:
        trainer = self.trainer
        if trainer is None or trainer.state.fn != "fit" or trainer.sanity_checking:
            return {}
        epoch, batches = position_after(trainer)
        return {"epoch": epoch, "batches": batches, "rng": capture_rng()}

    def load_state_dict(self, state: dict) -> None:
        self._resume_state = dict(state) if state else None

    def _eval_loader(self, eval_set: EvalSet) -> DataLoader:
        # EvalSet.dataset gives normalised images (Grad-CAM reads it); where the device normalises
        # (decided now: setup may run before the Trainer is attached), the loader reads uint8.
        dataset = eval_set.dataset
        if not self.loader_normalizes:
            dataset = FrameTable(eval_set.frames, self._transform(train=False, normalize=False), *self._ids())
        rank, world = self._rank_world()
        sampler = EvalShardSampler(len(eval_set.frames), rank, world)
        return self._loader(dataset, sampler, self.eval_batch_size, drop_last=False)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.val_set)

    def test_dataloader(self) -> list[DataLoader]:
        return [self._eval_loader(s) for s in self.test_sets]

    def eval_sets(self, stage: str) -> list[EvalSet]:
        """The evaluation sets of a stage, in dataloader order."""
        return [self.val_set] if stage == "validate" else list(self.test_sets)
