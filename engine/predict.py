"""``predict.py``: P(fake) of images, videos and folders with a trained model (docs/INFERENCE.md).

Each input goes through what the training data went through: frames sampled uniformly over a
video (``datamodules.preprocess.video``, the preprocessing's sampler and frame-count checks), the
largest face found by dlib and aligned onto the 5-point template (``datamodules.preprocess.faces``
with the crop size and margin of the run's prepared training data when they are known), then the
detector's evaluation transform. Crops are scored in batches on the GPU when there is one.

Outputs in the run directory (``logs/predict/runs/<id>/``), written atomically:

- ``frames.csv``: one row per scored frame (``path, frame_index, score, box``);
- ``files.csv``: one row per input file (``path, media, status, frames_sampled, frames_scored,
  frames_no_face, score, prediction, message``); ``score`` is the mean frame P(fake), as
  video-level metrics average frames; ``prediction`` applies the run's validation EER threshold;
- ``predictions.json``: settings, checkpoint, threshold, counts and every file with its frames.

Nothing is dropped silently: a file without a face (``no_face``), one that cannot be decoded
(``unreadable``) and a file in a folder that is neither image nor video (``skipped``) each get a
row, a message on the console and a count. The exit code is 1 when a file could not be read.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from common.choices import check_choice
from datamodules.preprocess.video import IMAGE_SUFFIXES, MediaError, read_image, sample_video
from datamodules.transforms import build_transform
from engine.trained import load_detector, locate, trained_config
from evaluation.results import atomic_open, atomic_write_json, git_commit

log = logging.getLogger(__name__)

VIDEO_SUFFIXES: frozenset[str] = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"})
FACE_MODES = ("detect", "none")
CROP_DEFAULTS = {"crop_size": 256, "margin": 1.3, "upsample": 1, "detect_max_side": 640}
FILE_COLUMNS = ("path", "media", "status", "frames_sampled", "frames_scored", "frames_no_face", "score", "prediction", "message")
FRAME_COLUMNS = ("path", "frame_index", "score", "box")


class PredictError(ValueError):
    """Inputs or settings predict cannot work with; the message names the key or path."""


@dataclass
class FileResult:
    """One input file: its frames' scores and what happened to it."""

    path: str
    media: str
    status: str = "ok"
    message: str = ""
    frames_sampled: int = 0
    frames: list[dict[str, Any]] = field(default_factory=list)
    no_face_frames: list[int] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        scores = [f["score"] for f in self.frames]
        return float(np.mean(scores)) if scores else None


# --------------------------------------------------------------------------- inputs


def expand_inputs(inputs: Iterable[object]) -> tuple[list[tuple[Path, str]], list[FileResult]]:
    """``(files to score as (path, media), skipped)``: folders walked recursively in sorted order,
    an image suffix is an image, anything else given by name is tried as a video; files in a folder
    that are neither images nor videos are returned as skipped (reported, not scored)."""
    files: list[tuple[Path, str]] = []
    skipped: list[FileResult] = []
    seen: set[Path] = set()
    for raw in inputs:
        path = Path(str(raw)).expanduser()
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                suffix = child.suffix.lower()
                if suffix in IMAGE_SUFFIXES or suffix in VIDEO_SUFFIXES:
                    _add(files, seen, child, "image" if suffix in IMAGE_SUFFIXES else "video")
                else:
                    skipped.append(
                        FileResult(str(child), "unknown", "skipped", f"not an image ({sorted(IMAGE_SUFFIXES)}) or video ({sorted(VIDEO_SUFFIXES)}) file name")
                    )
        elif path.is_file():
            _add(files, seen, path, "image" if path.suffix.lower() in IMAGE_SUFFIXES else "video")
        else:
            raise PredictError(f"inputs: {str(raw)!r} does not exist; expected image or video files or folders")
    if not files and not skipped:
        raise PredictError("inputs is empty; give inputs=[file_or_folder,...]")
    return files, skipped


def _add(files: list[tuple[Path, str]], seen: set[Path], path: Path, media: str) -> None:
    key = path.resolve()
    if key in seen:
        log.info("%s: given twice; scored once", path)
        return
    seen.add(key)
    files.append((path, media))


# --------------------------------------------------------------------------- crops


def crop_settings(cfg: DictConfig, run_cfg: DictConfig) -> dict[str, Any]:
    """Crop size, margin and detector settings: those given, else the run's prepared training data's
    (``settings.json`` of its first training dataset that has one), else the preprocessing defaults.
    ``source`` says which."""
    given = {key: cfg.get(key) for key in CROP_DEFAULTS}
    prepared = _training_preprocess_settings(run_cfg)
    settings: dict[str, Any] = {}
    for key, default in CROP_DEFAULTS.items():
        stored = None if prepared is None else prepared[1].get("size" if key == "crop_size" else key)
        settings[key] = given[key] if given[key] is not None else stored if stored is not None else default
    if all(given[k] is not None for k in CROP_DEFAULTS):
        settings["source"] = "given"
    elif prepared is not None:
        settings["source"] = f"{prepared[0]} (unset keys)"
    else:
        settings["source"] = "preprocessing defaults (the run's training data has no settings.json, e.g. synthetic data)"
    return settings


def _training_preprocess_settings(run_cfg: DictConfig) -> tuple[str, dict] | None:
    data = run_cfg.get("data") or {}
    if data.get("source") != "prepared":
        return None
    for item in data.get("protocol", {}).get("train", []):
        folder = (data.get("datasets", {}).get(item.get("dataset")) or {}).get("prepared")
        settings = Path(str(folder)) / "settings.json" if folder else None
        if settings is not None and settings.is_file():
            return str(settings), json.loads(settings.read_text(encoding="utf-8"))
    return None


class FaceCropper:
    """Frame -> (crop, box) with the preprocessing's aligner, or the whole frame (``faces=none``)."""

    def __init__(self, mode: str, settings: dict[str, Any]):
        check_choice("faces", mode, FACE_MODES, error=PredictError)
        self.mode = mode
        self.aligner = None
        if mode == "detect":
            from datamodules.preprocess.faces import FaceAligner

            self.aligner = FaceAligner(
                size=int(settings["crop_size"]),
                margin=float(settings["margin"]),
                upsample=int(settings["upsample"]),
                detect_max_side=int(settings["detect_max_side"]),
            )

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, list[float]] | None:
        if self.aligner is None:
            return frame, [0.0, 0.0, float(frame.shape[1]), float(frame.shape[0])]
        faces = self.aligner.detect(frame)
        if not faces:
            return None
        from datamodules.preprocess.faces import choose_largest

        face = choose_largest(faces)
        return self.aligner.align(frame, face).crop, [round(float(v), 1) for v in face.box]


def file_frames(path: Path, media: str, frames: int) -> tuple[dict[int, np.ndarray], list[str]]:
    """Sampled frames of one file and the decoder's complaints; raises MediaError when unreadable."""
    if media == "image":
        return {0: read_image(path)}, []
    sampled = sample_video(path, frames)
    notes = list(sampled.decode_errors)
    if sampled.resampled:
        notes.append(f"header announced {sampled.metadata_count} frames, {sampled.decoded_count} decoded; sampled over the decoded ones")
    return sampled.frames, notes


# --------------------------------------------------------------------------- scoring


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def score_crops(model: torch.nn.Module, crops: list[torch.Tensor], device: torch.device) -> np.ndarray:
    """P(fake) of a batch of transformed crops."""
    with torch.inference_mode():
        output = model(torch.stack(crops).to(device), None)
        return output.fake_probability().float().cpu().numpy().astype(np.float64)


def predict_files(
    model: torch.nn.Module,
    files: list[tuple[Path, str]],
    cropper: FaceCropper,
    frames: int,
    batch_size: int,
    device: torch.device,
) -> Iterator[FileResult]:
    """Score every file; crops of several files share a batch. Yields results in input order."""
    transform = build_transform(int(model.input_size), str(model.normalization), train=False)
    model.to(device).eval()
    pending: list[tuple[FileResult, dict[str, Any], torch.Tensor]] = []
    waiting: list[FileResult] = []

    def flush() -> None:
        if pending:
            scores = score_crops(model, [p[2] for p in pending], device)
            for (_, frame, _), score in zip(pending, scores):
                frame["score"] = float(score)
            pending.clear()

    for path, media in files:
        result = FileResult(str(path), media)
        try:
            sampled, notes = file_frames(path, media, frames)
        except MediaError as error:
            result.status, result.message = "unreadable", str(error)
            waiting.append(result)
            continue
        result.frames_sampled = len(sampled)
        for frame_index in sorted(sampled):
            cropped = cropper(sampled[frame_index])
            if cropped is None:
                result.no_face_frames.append(frame_index)
                continue
            crop, box = cropped
            frame = {"frame_index": int(frame_index), "box": box, "score": None}
            result.frames.append(frame)
            pending.append((result, frame, transform(Image.fromarray(crop))))
            if len(pending) >= batch_size:
                flush()
        _describe(result, notes)
        waiting.append(result)
        if not pending:  # every crop of the files so far is scored: hand them out
            yield from waiting
            waiting.clear()
    flush()
    yield from waiting


def _describe(result: FileResult, notes: list[str]) -> None:
    if not result.frames:
        what = "the image" if result.media == "image" else f"any of the {result.frames_sampled} sampled frames"
        result.status, result.message = "no_face", f"no face found in {what}; not scored"
    elif result.no_face_frames:
        result.message = (
            f"{len(result.no_face_frames)} of {result.frames_sampled} sampled frames without a face "
            f"(frames {result.no_face_frames[:10]}); scored on {len(result.frames)}"
        )
    if notes:
        result.message = "; ".join([m for m in [result.message, *notes[:3]] if m])


# --------------------------------------------------------------------------- outputs


def counts(results: list[FileResult]) -> dict[str, int]:
    return {
        "files": len(results),
        "scored": sum(r.status == "ok" for r in results),
        "no_face": sum(r.status == "no_face" for r in results),
        "unreadable": sum(r.status == "unreadable" for r in results),
        "skipped": sum(r.status == "skipped" for r in results),
        "frames_sampled": sum(r.frames_sampled for r in results),
        "frames_scored": sum(len(r.frames) for r in results),
        "frames_no_face": sum(len(r.no_face_frames) for r in results),
    }


def _prediction(score: float | None, threshold: float | None) -> str:
    if score is None or threshold is None:
        return ""
    return "fake" if score >= threshold else "real"


def write_outputs(output_dir: Path, results: list[FileResult], header: dict[str, Any]) -> dict[str, int]:
    """frames.csv and files.csv, then predictions.json (last: it exists only when all is written)."""
    threshold = header.get("threshold")
    frame_rows = [
        {"path": r.path, "frame_index": f["frame_index"], "score": f["score"], "box": json.dumps(f["box"])}
        for r in results
        for f in r.frames
    ]
    file_rows = [
        {
            "path": r.path,
            "media": r.media,
            "status": r.status,
            "frames_sampled": r.frames_sampled,
            "frames_scored": len(r.frames),
            "frames_no_face": len(r.no_face_frames),
            "score": r.score,
            "prediction": _prediction(r.score, threshold),
            "message": r.message,
        }
        for r in results
    ]
    for name, rows, columns in (("frames.csv", frame_rows, FRAME_COLUMNS), ("files.csv", file_rows, FILE_COLUMNS)):
        with atomic_open(output_dir / name, newline="") as handle:
            pd.DataFrame(rows, columns=list(columns)).to_csv(handle, index=False, lineterminator="\n")
    summary = counts(results)
    report = {
        **header,
        "counts": summary,
        "files": [
            {**row, "no_face_frames": r.no_face_frames, "frames": r.frames} for row, r in zip(file_rows, results)
        ],
    }
    atomic_write_json(output_dir / "predictions.json", report)
    return summary


def predict(cfg: DictConfig) -> dict[str, int]:
    """Run one predict job (``conf/predict.yaml``); returns the counts written to predictions.json."""
    output_dir = Path(cfg.paths.output_dir)
    inputs = cfg.get("inputs")
    if isinstance(inputs, str) and inputs not in ("", "???"):
        inputs = [inputs]  # one file or folder
    elif inputs is None or not OmegaConf.is_list(inputs):
        raise PredictError(f"inputs={inputs!r}: expected a file, a folder or a list of them, e.g. 'inputs=[face.jpg,clips/]'")
    if int(cfg.frames) < 1 or int(cfg.batch_size) < 1:
        raise PredictError(f"frames={cfg.frames} and batch_size={cfg.batch_size} must be >= 1")
    check_choice("faces", str(cfg.faces), FACE_MODES, error=PredictError)
    files, skipped = expand_inputs(list(inputs))
    run_dir, checkpoint = locate(cfg.ckpt, str(cfg.which))
    run_cfg = trained_config(run_dir)
    settings = crop_settings(cfg, run_cfg)
    log.info("face crops: %s", settings)
    model = load_detector(run_cfg, checkpoint)
    threshold = float(getattr(model, "val_threshold", torch.tensor(float("nan"))))
    device = resolve_device(str(cfg.device))
    cropper = FaceCropper(str(cfg.faces), settings)
    results: list[FileResult] = []
    for result in predict_files(model, files, cropper, int(cfg.frames), int(cfg.batch_size), device):
        results.append(result)
        if result.status == "ok":
            log.info("%s: P(fake) %.4f over %d frame(s)%s", result.path, result.score, len(result.frames), f" ({result.message})" if result.message else "")
        else:
            log.warning("%s: %s: %s", result.path, result.status, result.message)
    for result in skipped:
        log.warning("%s: skipped: %s", result.path, result.message)
    results.extend(skipped)
    header = {
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(Path(__file__).resolve().parent.parent),
        "source_run_dir": str(run_dir),
        "checkpoint": str(checkpoint),
        "detector": run_cfg.detector.get("_target_"),
        "threshold": threshold if np.isfinite(threshold) else None,
        "threshold_source": "the run's validation EER threshold (val_threshold in the checkpoint)",
        "device": str(device),
        "settings": {
            "faces": str(cfg.faces),
            "frames_per_video": int(cfg.frames),
            "batch_size": int(cfg.batch_size),
            "input_size": int(model.input_size),
            "normalization": str(model.normalization),
            **settings,
        },
    }
    summary = write_outputs(output_dir, results, header)
    log.info(
        "%d file(s): %d scored, %d without a face, %d unreadable, %d skipped; wrote %s",
        summary["files"], summary["scored"], summary["no_face"], summary["unreadable"], summary["skipped"],
        output_dir / "predictions.json",
    )
    print(f"wrote {output_dir / 'files.csv'}, {output_dir / 'frames.csv'} and {output_dir / 'predictions.json'}")
    return summary


def exit_code(summary: dict[str, int]) -> int:
    """0 when every file was read (files without a face are reported, as preprocessing does), else 1."""
    return 1 if summary["unreadable"] else 0

