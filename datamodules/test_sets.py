"""Test sets only: the datamodule of ``eval.py``, which scores a trained checkpoint on chosen test
sets without training. It serves the protocol's ``test`` sets exactly as :class:`FaceDataModule`
does (same fixed frames, transform and batches), and builds no training or validation loader.

A dataset entry may carry its own ``source`` (``prepared`` for a folder given to ``eval.py``).
``check_overlap`` (default on) loads the training records of the checkpoint's own protocol and
refuses a test set that shares frames with them, as training runs do: a checkpoint must not be
scored on the frames it was trained on.
"""

from __future__ import annotations

import pandas as pd

from common.choices import check_choice
from datamodules.face_datamodule import FaceDataModule
from datamodules.protocol import RECORDS_DOMAIN
from datamodules.sources import load_dataset_records


class TestSetsDataModule(FaceDataModule):
    """:class:`FaceDataModule` arguments, plus ``check_overlap`` (see the module docstring)."""

    def __init__(self, *args, check_overlap: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.check_overlap = bool(check_overlap)

    def _dataset_records(self, name: str) -> pd.DataFrame:
        # A dataset entry may name its own source: a prepared folder given to eval.py is read as
        # prepared crops even when the checkpoint was trained on the synthetic stand-ins.
        spec = self.datasets_cfg[name]
        if "source" not in spec:
            return super()._dataset_records(name)
        if name not in self._records_cache:
            plain = {k: v for k, v in spec.items() if k != "source"}
            self._records_cache[name] = load_dataset_records(name, plain, str(spec["source"]), self.synthetic)
        return self._records_cache[name]

    def setup(self, stage: str | None = None) -> None:
        if self.test_sets:
            return
        check_choice("TestSetsDataModule serves test sets only; Lightning asked for stage", stage, (None, "test"))
        test_tables = {
            name: self._group_records(items, f"test.{name}") for name, items in self.protocol.test.items()
        }
        if self.check_overlap:
            self.train_table = self._group_records(self.protocol.train, "train")
            self.domain_names = list(dict.fromkeys(self.train_table["domain"]))
            self._check_leakage(pd.DataFrame({"file": []}), test_tables)
        else:
            self.domain_names = list(
                dict.fromkeys(item.domain_name for item in self.protocol.train if item.domain != RECORDS_DOMAIN)
            )
        self.type_names = sorted(pd.concat([t["type"] for t in test_tables.values()]).unique())
        self.test_sets = [self._eval_set(name, table) for name, table in test_tables.items()]

    def eval_sets(self, stage: str) -> list:
        if stage != "test":
            raise ValueError(f"TestSetsDataModule has no {stage!r} sets; it serves test sets only")
        return list(self.test_sets)
