"""Robustness evaluation: a trained checkpoint scored on its run's test sets under every corruption
x severity (the corruptions: ``evaluation/robustness.py``), written to ``<run dir>/robustness.json``
(atomically) and drawn as metric-vs-severity curves like the papers' robustness figures (the figures:
``evaluation/plots.py``). This module is the runner: settings, scoring, the report and the command line
(:func:`parse_command_line` holds every argument rule).

Command line (``key=value`` arguments, defaults in ``conf/robustness/default.yaml``)::

    python -m engine.robustness run_dir=<run dir> [ckpt=best|last|<file>] [corruptions=[jpeg,h264]]
        [severities=[0,1,2,3,4,5]] [test_sets=[celebdf_v2]] [device=cuda] [batch_size=128]
        [num_workers=8] [plot_level=video] [out_dir=<dir>] [config.<key>=<value> ...]
    python -m engine.robustness ckpt=<run dir>/checkpoints/last.ckpt      # run dir = two levels up
    python -m engine.robustness compare inputs=[a/robustness.json,b/robustness.json] labels=[A,B] out_dir=<dir>

``config.<key>=<value>`` overrides the run's own config (e.g. ``config.data.num_workers=0`` or a
dataset path on another machine). The run's config comes from its ``results.json`` (resolved),
else ``.hydra/config.yaml``; the model is built from it and the checkpoint's weights (including
the validation threshold used for ``acc_val_thr``) are loaded. Severity 0 (the clean images) is
scored once and starts every curve.

Outputs: ``robustness.json`` (``metrics.<test set>.<corruption>.<severity>.{frame,video}`` with
every metric of results.json) and ``plots/robustness/<test set>_<level>_<metric>.png`` (one panel per
corruption plus their average, as GM-DF's Fig. 3).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms.v2.functional import to_pil_image

from datamodules.frame_dataset import FrameTable, load_rgb, video_groups
from datamodules.transforms import build_transform
from detectors.weights_file import load_checkpoint_into
from engine.trained import TrainedRunError, checkpoint_path, run_config, upgrade_stored_detector_config
from evaluation.metrics import METRIC_NAMES, all_metrics
from evaluation.plots import plot_robustness_comparison, plot_robustness_report
from evaluation.results import atomic_write_json, git_commit
from evaluation.robustness import (
    CORRUPTIONS,
    SEVERITIES,
    VIDEO_CORRUPTIONS,
    CorruptImage,
    CorruptionError,
    corrupt_video,
    corruption_parameter,
)

if TYPE_CHECKING:
    from lightning.pytorch.loggers import Logger

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SETTINGS_FILE = REPO / "conf" / "robustness" / "default.yaml"
ROBUSTNESS_FILE_NAME = "robustness.json"
FIGURES_DIR_NAME = "plots/robustness"  # under plots/: every figure of a run in one folder
ROBUSTNESS_SCHEMA_VERSION = 1


class RobustnessError(ValueError):
    """Bad settings or a run directory / checkpoint that cannot be evaluated."""


@dataclass(frozen=True)
class RobustnessSettings:
    """What to evaluate; see ``conf/robustness/default.yaml``."""

    corruptions: tuple[str, ...] = tuple(CORRUPTIONS)
    severities: tuple[int, ...] = (0, *SEVERITIES)
    test_sets: tuple[str, ...] | None = None
    levels: Mapping[str, tuple[float, ...]] | None = None
    seed: int = 0
    batch_size: int = 64
    num_workers: int = 0
    device: str = "auto"
    plot_metric: str = "auc"
    plot_level: str = "frame"

    def __post_init__(self) -> None:
        unknown = [c for c in self.corruptions if c not in CORRUPTIONS]
        if unknown or not self.corruptions:
            raise RobustnessError(f"corruptions {list(self.corruptions)}: unknown {unknown}; expected some of {list(CORRUPTIONS)}")
        bad = [s for s in self.severities if s not in (0, *SEVERITIES)]
        if bad or not self.severities:
            raise RobustnessError(f"severities {list(self.severities)}: expected integers in 0..{max(SEVERITIES)}")
        try:
            for name in self.levels or {}:
                for severity in SEVERITIES:
                    corruption_parameter(name, severity, self.levels)
        except CorruptionError as error:
            raise RobustnessError(f"levels: {error}") from error
        if self.plot_metric not in METRIC_NAMES:
            raise RobustnessError(f"plot_metric {self.plot_metric!r}: expected one of {list(METRIC_NAMES)}")
        if self.plot_level not in ("frame", "video"):
            raise RobustnessError(f"plot_level {self.plot_level!r}: expected 'frame' or 'video'")
        if self.batch_size < 1 or self.num_workers < 0:
            raise RobustnessError(f"batch_size {self.batch_size} must be >= 1 and num_workers {self.num_workers} >= 0")

    @property
    def ordered_severities(self) -> tuple[int, ...]:
        """Sorted severities, always including 0 (every curve starts from the clean score)."""
        return tuple(sorted({0, *self.severities}))


def load_settings(overrides: Mapping[str, Any] | None = None, path: Path = DEFAULT_SETTINGS_FILE) -> RobustnessSettings:
    """Settings from ``conf/robustness/default.yaml`` with ``overrides`` (unknown keys are errors)."""
    base = OmegaConf.load(path)
    merged = OmegaConf.merge(base, OmegaConf.create(dict(overrides or {})))
    raw = OmegaConf.to_container(merged, resolve=True)
    allowed = set(RobustnessSettings.__dataclass_fields__)
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise RobustnessError(f"unknown robustness setting(s) {unknown}; allowed: {sorted(allowed)}")
    return RobustnessSettings(
        corruptions=tuple(raw["corruptions"]),
        severities=tuple(int(s) for s in raw["severities"]),
        test_sets=None if raw.get("test_sets") is None else tuple(raw["test_sets"]),
        levels={k: tuple(v) for k, v in (raw.get("levels") or {}).items()},
        seed=int(raw["seed"]),
        batch_size=int(raw["batch_size"]),
        num_workers=int(raw["num_workers"]),
        device=str(raw["device"]),
        plot_metric=str(raw["plot_metric"]),
        plot_level=str(raw["plot_level"]),
    )


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# --------------------------------------------------------------------------- scoring


class _CorruptThenTransform:
    """Corrupt the PIL image, then apply the detector's evaluation transform (picklable)."""

    def __init__(self, corrupt: CorruptImage, transform: Callable):
        self.corrupt, self.transform = corrupt, transform

    def __call__(self, image):
        if isinstance(image, torch.Tensor):  # FrameTable decodes to uint8 CHW tensors; corruptions take PIL
            image = to_pil_image(image)
        return self.transform(self.corrupt(image))


def score_frames(
    model: torch.nn.Module,
    frames: pd.DataFrame,
    transform: Callable,
    batch_size: int,
    num_workers: int,
    device: torch.device,
) -> np.ndarray:
    """P(fake) of every row of ``frames`` (which needs ``file``, ``label``, ``video_id``, ``type``),
    in row order, with ``model(images, None).fake_probability()``."""
    type_ids = {name: i for i, name in enumerate(sorted(frames["type"].astype(str).unique()))}
    dataset = FrameTable(frames, transform, {}, type_ids)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    scores = np.full(len(frames), np.nan, dtype=np.float64)
    model.eval()
    with torch.inference_mode():
        for batch in loader:
            output = model(batch["image"].to(device), None)
            scores[batch["index"].numpy()] = output.fake_probability().float().cpu().numpy()
    if np.isnan(scores).any():
        raise RobustnessError(f"{int(np.isnan(scores).sum())} of {len(scores)} frames were not scored")
    return scores


def corrupted_videos(
    frames: pd.DataFrame,
    corruption: str,
    severity: int,
    levels: Mapping[str, Sequence[float]] | None,
    directory: Path,
) -> pd.DataFrame:
    """``frames`` with ``file`` pointing at PNG copies in ``directory`` after a video corruption: the
    frames of each video (those of the test set, in frame order) are corrupted together as one clip."""
    table = frames.copy()
    files = table["file"].astype(str).to_numpy().copy()
    for number, rows in enumerate(video_groups(frames)):
        positions = [frames.index.get_loc(row) for row in rows]
        clip = [np.asarray(load_rgb(files[p]), dtype=np.uint8) for p in positions]
        for frame_number, (position, image) in enumerate(zip(positions, corrupt_video(clip, corruption, severity, levels))):
            target = directory / f"{number:06d}_{frame_number:04d}.png"
            Image.fromarray(image).save(target)
            files[position] = str(target)
    table["file"] = files
    return table


def evaluate_corruptions(
    model: torch.nn.Module,
    eval_sets: Mapping[str, pd.DataFrame],
    image_size: int,
    normalization: str,
    settings: RobustnessSettings,
    val_threshold: float | None = None,
) -> dict[str, dict[str, dict[str, dict]]]:
    """``{test set: {corruption: {severity (str): {"frame": metrics, "video": metrics}}}}``.

    The clean score (severity 0) is computed once per set and shared by every corruption.
    """
    device = resolve_device(settings.device)
    model.to(device)
    base = build_transform(image_size, normalization, train=False)
    threshold = None if val_threshold is None or math.isnan(val_threshold) else float(val_threshold)
    metrics: dict[str, dict[str, dict[str, dict]]] = {}
    for set_name, frames in eval_sets.items():
        clean = _set_metrics(model, frames, base, settings, device, threshold, set_name)
        metrics[set_name] = {}
        for corruption in settings.corruptions:
            points = {"0": clean}
            for severity in settings.ordered_severities[1:]:
                if corruption in VIDEO_CORRUPTIONS:
                    with tempfile.TemporaryDirectory(prefix="facemoe-video-corruption-") as directory:
                        encoded = corrupted_videos(frames, corruption, severity, settings.levels, Path(directory))
                        points[str(severity)] = _set_metrics(model, encoded, base, settings, device, threshold, set_name)
                else:
                    corrupted = _CorruptThenTransform(CorruptImage(corruption, severity, settings.seed, settings.levels), base)
                    points[str(severity)] = _set_metrics(model, frames, corrupted, settings, device, threshold, set_name)
                log.info("%s %s severity %d: frame AUC %.4f", set_name, corruption, severity, points[str(severity)]["frame"]["auc"])
            metrics[set_name][corruption] = points
    return metrics


def _set_metrics(
    model: torch.nn.Module,
    frames: pd.DataFrame,
    transform: Callable,
    settings: RobustnessSettings,
    device: torch.device,
    threshold: float | None,
    set_name: str,
) -> dict:
    scores = score_frames(model, frames, transform, settings.batch_size, settings.num_workers, device)
    return all_metrics(
        scores,
        frames["label"].to_numpy(),
        frames["video_id"].astype(str).to_numpy(),
        val_threshold=threshold,
        context=f"robustness {set_name}",
    )


def build_report(
    metrics: Mapping[str, Any],
    eval_sets: Mapping[str, pd.DataFrame],
    settings: RobustnessSettings,
    checkpoint: str | None,
    run_dir: str | None,
) -> dict[str, Any]:
    """The ``robustness.json`` content around the metrics."""
    return {
        "schema_version": ROBUSTNESS_SCHEMA_VERSION,
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(REPO),
        "checkpoint": checkpoint,
        "run_dir": run_dir,
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(settings).items()},
        "corruptions": {
            name: {
                "label": CORRUPTIONS[name].label,
                "parameter": CORRUPTIONS[name].parameter,
                "source": CORRUPTIONS[name].source,
                "levels": {str(s): corruption_parameter(name, s, settings.levels) for s in SEVERITIES},
            }
            for name in settings.corruptions
        },
        "test_sets": {
            name: {"frames": int(len(frames)), "videos": int(frames["video_id"].nunique())} for name, frames in eval_sets.items()
        },
        "metrics": metrics,
    }


# --------------------------------------------------------------------------- runs


def load_model(cfg: DictConfig, checkpoint: Path) -> torch.nn.Module:
    """The run's detector with the checkpoint's weights (no pretrained download: every weight,
    frozen backbones included, is in the checkpoint)."""
    from hydra.utils import instantiate

    detector_cfg = OmegaConf.create(upgrade_stored_detector_config(OmegaConf.to_container(cfg.detector, resolve=True)))
    if "pretrained" in detector_cfg:
        detector_cfg.pretrained = None
    model = instantiate(detector_cfg, _convert_="all")
    # Never unpickles code (weights_only=True); refuses another detector's checkpoint by name.
    load_checkpoint_into(model, checkpoint, "robustness checkpoint")
    return model


def evaluate_run(
    run_dir: str | os.PathLike,
    settings: RobustnessSettings,
    checkpoint: str = "best",
    config_overrides: Sequence[str] = (),
    model: torch.nn.Module | None = None,
    datamodule: Any = None,
    out_dir: str | os.PathLike | None = None,
    loggers: Sequence[Logger] = (),
) -> Path:
    """Evaluate a run under corruptions; writes ``robustness.json`` + figures; returns the JSON path.

    ``model`` / ``datamodule`` may be passed in (the pipeline after testing) to skip rebuilding;
    ``checkpoint`` then only names, in the report, where the model's weights came from; the figures
    go to the W&B loggers among ``loggers`` (the pipeline passes the trainer's).
    """
    run_path = Path(run_dir)
    ckpt = checkpoint
    try:
        cfg = run_config(run_path, config_overrides)
        if model is None:
            ckpt = str(checkpoint_path(run_path, checkpoint))
            model = load_model(cfg, Path(ckpt))
    except TrainedRunError as error:
        raise RobustnessError(str(error)) from error
    if datamodule is None:
        from hydra.utils import instantiate

        datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.setup("test")
    available = {eval_set.name: eval_set.frames for eval_set in datamodule.test_sets}
    wanted = list(settings.test_sets) if settings.test_sets is not None else list(available)
    missing = [name for name in wanted if name not in available]
    if missing:
        raise RobustnessError(f"test set(s) {missing} are not in the run's protocol; it has {sorted(available)}")
    eval_sets = {name: available[name] for name in wanted}
    threshold = float(getattr(model, "val_threshold", torch.tensor(math.nan)))
    metrics = evaluate_corruptions(model, eval_sets, int(datamodule.image_size), str(datamodule.normalization), settings, threshold)
    report = build_report(metrics, eval_sets, settings, ckpt, str(run_path))
    target_dir = Path(out_dir) if out_dir is not None else run_path
    written = atomic_write_json(target_dir / ROBUSTNESS_FILE_NAME, report)
    figures = plot_robustness_report(report, target_dir / FIGURES_DIR_NAME, label=str(cfg.get("experiment_name") or "model"))
    for figure in figures:
        log.info("wrote %s", figure)
    if loggers:  # a training run's loggers (engine/pipeline.py); the command line has none and skips Lightning's import
        from callbacks.plots import log_figures

        log_figures(loggers, figures, prefix="plots/robustness")
    log.info("wrote %s", written)
    return written


# --------------------------------------------------------------------------- command line

_RUN_KEYS = {"run_dir", "ckpt", "out_dir"}
_COMPARE_KEYS = {"inputs", "labels", "out_dir", "metric", "level"}


@dataclass(frozen=True)
class EvaluateCommand:
    """``python -m engine.robustness run_dir=... [settings] [config.<key>=<value>]``."""

    run_dir: Path
    settings: RobustnessSettings
    ckpt: str = "best"
    config_overrides: tuple[str, ...] = ()
    out_dir: str | None = None


@dataclass(frozen=True)
class CompareCommand:
    """``python -m engine.robustness compare inputs=[...] [labels=[...]] [out_dir=...] [metric=...] [level=...]``."""

    inputs: tuple[Path, ...]
    labels: tuple[str, ...]
    out_dir: Path = Path(".")
    metric: str | None = None
    level: str | None = None


def parse_command_line(argv: Sequence[str]) -> EvaluateCommand | CompareCommand:
    """The command line as one request; every argument rule of the CLI is here (and only here), so
    another argument style can replace this one function."""
    argv = list(argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        raise SystemExit(0)
    compare_mode = bool(argv) and argv[0] == "compare"
    if compare_mode:
        argv = argv[1:]
    plain = [a for a in argv if not a.startswith("config.")]
    config_overrides = tuple(a.removeprefix("config.") for a in argv if a.startswith("config."))
    bad = [a for a in plain if "=" not in a]
    if bad:
        raise RobustnessError(f"arguments must be key=value, got {bad}")
    arguments = OmegaConf.to_container(OmegaConf.from_dotlist(plain), resolve=True)
    if compare_mode:
        unknown = sorted(set(arguments) - _COMPARE_KEYS)
        if unknown or "inputs" not in arguments:
            raise RobustnessError(f"compare takes {sorted(_COMPARE_KEYS)} (inputs required); unknown {unknown}")
        inputs = tuple(Path(p) for p in arguments["inputs"])
        labels = tuple(arguments.get("labels") or [p.parent.name for p in inputs])
        if len(labels) != len(inputs):
            raise RobustnessError(f"{len(labels)} labels for {len(inputs)} inputs")
        metric, level = arguments.get("metric"), arguments.get("level")
        return CompareCommand(inputs, labels, Path(arguments.get("out_dir", ".")),
                              None if metric is None else str(metric), None if level is None else str(level))
    run_arguments = {k: arguments.pop(k) for k in list(arguments) if k in _RUN_KEYS}
    settings = load_settings(arguments)
    ckpt = str(run_arguments.get("ckpt", "best"))
    if "run_dir" in run_arguments:
        run_dir = Path(run_arguments["run_dir"])
    elif ckpt not in ("best", "last"):
        run_dir = Path(ckpt).expanduser().resolve().parent.parent
    else:
        raise RobustnessError("give run_dir=<run dir> (or ckpt=<file> inside <run dir>/checkpoints/)")
    return EvaluateCommand(run_dir, settings, ckpt, config_overrides, run_arguments.get("out_dir"))


def compare(command: CompareCommand) -> list[Path]:
    """Overlaid curves of several ``robustness.json`` reports, one figure per shared test set."""
    import json

    reports = {label: json.loads(path.read_text(encoding="utf-8")) for label, path in zip(command.labels, command.inputs)}
    return plot_robustness_comparison(reports, command.out_dir, command.metric, command.level)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        command = parse_command_line(sys.argv[1:] if argv is None else argv)
        if isinstance(command, CompareCommand):
            for path in compare(command):
                print(f"wrote {path}")
            return 0
        written = evaluate_run(command.run_dir, command.settings, command.ckpt, command.config_overrides, out_dir=command.out_dir)
    except Exception as error:
        from engine.user_errors import user_error

        # Bad settings and user errors (a refused checkpoint, a missing file) are one line; bugs keep a traceback.
        mistake = error if isinstance(error, RobustnessError) else user_error(error)
        if mistake is None:
            raise
        print(f"error: {mistake}", file=sys.stderr)
        return 2
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
