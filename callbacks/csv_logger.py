"""Lightning's CSV logger, with ``metrics.csv`` kept across attempts and never left cut mid-row.

Lightning's writer deletes an existing ``metrics.csv``; this one keeps it and appends, so a resumed
attempt (SLURM requeue, rerun after a crash) adds its rows to the earlier ones, each row carrying
``attempt`` (engine/attempts.py).

Lightning appends rows in place and rewrites the file in place when new columns appear, so a full
disk (ENOSPC) or a kill mid-write leaves a cut last row that pandas reads back without complaint.
Here a rewrite goes through a temporary file + ``os.replace``, and a failed append is truncated
back to the last complete row before the error (naming the file) is raised.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from evaluation.results import atomic_open, output_write_error


class AtomicExperimentWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        # Keep an existing file: its header is read first, so new columns rewrite it with every old row kept.
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as handle:
                header = handle.readline().strip()
            self.metrics_keys = [k for k in header.split(",") if k]

    def save(self) -> None:
        if not self.metrics:
            return
        path = self.metrics_file_path
        header = list(self.metrics_keys)
        new_keys = self._record_new_keys()
        exists = os.path.isfile(path)
        if new_keys or not exists:
            rows = []
            if exists:
                with open(path, newline="", encoding="utf-8") as handle:
                    rows = list(csv.DictReader(handle))
            try:
                with atomic_open(path, newline="") as handle:
                    writer = csv.DictWriter(handle, fieldnames=self.metrics_keys)
                    writer.writeheader()
                    writer.writerows(rows)
                    writer.writerows(self.metrics)
            except BaseException:
                self.metrics_keys[:] = header  # the file still has the old header: a retry rewrites it
                raise
        else:
            buffer = io.StringIO(newline="")
            csv.DictWriter(buffer, fieldnames=self.metrics_keys).writerows(self.metrics)
            size = os.path.getsize(path)
            try:
                with open(path, "a", newline="", encoding="utf-8") as handle:
                    handle.write(buffer.getvalue())
                    handle.flush()
            except OSError as error:
                os.truncate(path, size)  # back to the last complete row
                raise output_write_error(Path(path), error) from error
        self.metrics = []


class AtomicCSVLogger(CSVLogger):
    """``CSVLogger`` whose ``metrics.csv`` only ever holds complete rows, appended across attempts;
    each row carries ``attempt`` when the pipeline sets it."""

    def __init__(self, *args, attempt: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.attempt = attempt

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self.attempt is not None:
            metrics = {**metrics, "attempt": self.attempt}
        super().log_metrics(metrics, step)

    @property
    @rank_zero_experiment
    def experiment(self) -> AtomicExperimentWriter:
        if self._experiment is not None:
            return self._experiment
        self._fs.makedirs(self.root_dir, exist_ok=True)
        self._experiment = AtomicExperimentWriter(log_dir=self.log_dir)
        return self._experiment
