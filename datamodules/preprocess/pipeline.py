"""Records -> aligned face crops + ``index.csv``: workers, resume and the report.

Layout of ``out``::

    settings.json                  the settings every part was made with (checked on resume)
    crops/<video id>/<frame:06d>.png   aligned crops (``.jpg`` with image_format="jpg")
    parts/<video id>.json          written atomically when a video is finished: its index rows
                                   and what went wrong; its presence is the done-marker
    index.csv                      all rows of the finished videos, in input order (atomic)
    report.json                    counts and lists of failed videos, frames without a face,
                                   short videos, frame-count mismatches, damaged streams,
                                   mask fallbacks

A re-run skips videos whose part exists; a video with crops but no part was interrupted and is
redone from scratch (its crop folder is removed first). Failed videos write no part, so they are
tried again on the next run and listed in every report until they succeed. A part remembers the
input record it was made from: when the reader now gives that video other labels, split or extra
columns (other reader options), its rows are rewritten from the new record and the crops kept;
when the source itself changed (path, media or mask), the video is redone.
"""

from __future__ import annotations

import functools
import json
import math
import multiprocessing
import re
import shutil
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from common.choices import check_choice
from datamodules.preprocess.faces import (
    Face,
    FaceAligner,
    choose_by_mask,
    choose_largest,
    landmark_model_path,
    mask_to_binary,
)
from datamodules.preprocess.video import MEDIA_KINDS, MediaError, read_media_frames, sample_media
from datamodules.records import RECORD_COLUMNS, validate_records
from evaluation.results import atomic_write_text

FACE_CHOICES: tuple[str, ...] = ("largest", "mask")
IMAGE_FORMATS: tuple[str, ...] = ("png", "jpg")
INDEX_COLUMNS: tuple[str, ...] = ("source_path", "frame_index", "landmarks", "box")
# Record fields a crop depends on (with the settings); the others are only copied into its rows.
CROP_INPUTS: tuple[str, ...] = ("path", "media", "mask_path")
# Bump when the content of crops or parts changes meaning, so old outputs are not mixed in.
FORMAT_VERSION = 1


class PreprocessError(ValueError):
    """Input records or an output folder that the pipeline cannot work with; says what and why."""


@dataclass(frozen=True)
class PreprocessConfig:
    """What to extract. Everything but ``workers`` is fixed for the life of an output folder."""

    frames: int = 32
    size: int = 256
    margin: float = 1.3
    face: str = "largest"
    image_format: str = "png"
    jpeg_quality: int = 95
    upsample: int = 1
    detect_max_side: int = 640
    workers: int = 1

    def __post_init__(self) -> None:
        if self.frames < 1 or self.size < 8 or self.margin <= 0 or self.workers < 1:
            raise PreprocessError(
                f"need frames >= 1, size >= 8, margin > 0, workers >= 1; got frames={self.frames}, "
                f"size={self.size}, margin={self.margin}, workers={self.workers}"
            )
        check_choice("face", self.face, FACE_CHOICES, error=PreprocessError)
        check_choice("image_format", self.image_format, IMAGE_FORMATS, error=PreprocessError)
        if not 1 <= self.jpeg_quality <= 100:
            raise PreprocessError(f"jpeg_quality={self.jpeg_quality}; expected 1..100")

    def settings(self) -> dict[str, Any]:
        """The settings that determine the output (not ``workers``), as stored in settings.json."""
        values = asdict(self)
        values.pop("workers")
        values["landmarks"] = "dlib68-to-5"
        values["format_version"] = FORMAT_VERSION
        return values


@dataclass(frozen=True)
class VideoTask:
    """One record to preprocess (a video, a frame folder or an image)."""

    video_id: str
    media: str
    source: str  # absolute path of the video / folder / image
    mask: str | None  # absolute path of the manipulation mask source, if any
    output_name: str  # relative folder name under crops/ and parts/, derived from video_id
    record: dict[str, Any]  # the input row (JSON-safe values)


@dataclass
class PreprocessResult:
    """What :func:`preprocess_records` produced: the index rows and the report (also on disk)."""

    index: pd.DataFrame
    report: dict[str, Any]
    processed_now: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- small helpers


def json_safe(value: Any) -> Any:
    """A record value as plain JSON: numpy scalars unwrapped, NaN/NaT as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NaT or value is None:
        return None
    return value


def output_name_for(video_id: str) -> str:
    """A relative folder path for ``video_id``: '/'-separated parts kept, odd characters replaced."""
    parts = []
    for part in str(video_id).split("/"):
        cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", part)
        parts.append("_" + cleaned if cleaned in ("", ".", "..") else cleaned)
    return "/".join(parts)


def _check_output_names(tasks: list[VideoTask]) -> None:
    """Fail if two video ids map to the same folder, or one folder would lie inside another's."""
    owners: dict[str, str] = {}
    for task in tasks:
        if task.output_name in owners:
            raise PreprocessError(
                f"video ids {owners[task.output_name]!r} and {task.video_id!r} map to the same output "
                f"folder {task.output_name!r}; make the ids differ in letters, digits or . _ -"
            )
        owners[task.output_name] = task.video_id
    for task in tasks:
        for parent in PurePosixPath(task.output_name).parents:
            if str(parent) in owners:
                raise PreprocessError(
                    f"output folder of video id {task.video_id!r} lies inside that of "
                    f"{owners[str(parent)]!r}; redoing one would delete the other's crops"
                )


def _has_value(value: Any) -> bool:
    return json_safe(value) not in (None, "")


# ----------------------------------------------------------------------------- one video


def process_video(
    task: VideoTask, out: Path, config: PreprocessConfig, aligner: FaceAligner
) -> dict[str, Any]:
    """Crop one video/folder/image; write its crops and, last, its part (the done-marker).

    Returns the part (``status`` "done") or a failure (``status`` "failed", nothing kept).
    """
    crop_dir = out / "crops" / task.output_name
    if crop_dir.exists():
        shutil.rmtree(crop_dir)  # leftovers of an interrupted run: never mix them with new crops
    try:
        sampled = sample_media(Path(task.source), task.media, config.frames)
    except MediaError as error:
        return {
            "status": "failed",
            "video_id": task.video_id,
            "path": task.record["path"],
            "error": str(error),
        }

    masks, mask_problem = _load_masks(task, config, sorted(sampled.frames))
    crop_dir.mkdir(parents=True, exist_ok=True)
    rows, no_face, mask_fallback = [], [], []
    extension = "jpg" if config.image_format == "jpg" else "png"
    for frame_index in sorted(sampled.frames):
        frame = sampled.frames[frame_index]
        faces = aligner.detect(frame)
        if not faces:
            no_face.append(frame_index)
            continue
        face, fallback_reason = _choose_face(faces, frame, frame_index, task, masks, mask_problem, config)
        if fallback_reason:
            mask_fallback.append({"frame_index": frame_index, "reason": fallback_reason})
        aligned = aligner.align(frame, face)
        crop_path = crop_dir / f"{frame_index:06d}.{extension}"
        _save_crop(aligned.crop, crop_path, config)
        rows.append(
            {
                **task.record,
                "path": crop_path.relative_to(out).as_posix(),
                "media": "image",
                "source_path": task.record["path"],
                "frame_index": frame_index,
                "landmarks": json.dumps(np.round(aligned.landmarks5, 2).tolist()),
                "box": json.dumps([round(v, 1) for v in face.box]),
            }
        )
    part = {
        "status": "done",
        "video_id": task.video_id,
        "path": task.record["path"],
        "media": task.media,
        "settings": config.settings(),
        "frames_requested": 1 if task.media == "image" else config.frames,
        "frames_available": sampled.decoded_count,
        "metadata_frame_count": sampled.metadata_count,
        "resampled": sampled.resampled,
        "decode_errors": sampled.decode_errors,
        "frames_written": len(rows),
        "no_face_frames": no_face,
        "mask_fallback": mask_fallback,
        "record": task.record,
        "rows": rows,
    }
    atomic_write_text(out / "parts" / f"{task.output_name}.json", json.dumps(part))
    return part


def _load_masks(
    task: VideoTask, config: PreprocessConfig, indices: list[int]
) -> tuple[dict[int, np.ndarray], str | None]:
    """Mask frames at the video's indices, or the reason there are none (reported per frame)."""
    if config.face != "mask" or task.mask is None:
        return {}, None
    try:
        return read_media_frames(Path(task.mask), task.media, indices), None
    except MediaError as error:
        return {}, f"mask unreadable: {error}"


def _choose_face(
    faces: list[Face],
    frame: np.ndarray,
    frame_index: int,
    task: VideoTask,
    masks: dict[int, np.ndarray],
    mask_problem: str | None,
    config: PreprocessConfig,
) -> tuple[Face, str | None]:
    """The face to crop and, when the mask could not decide between several faces, why."""
    largest = choose_largest(faces)
    # Reals have no mask (empty mask_path): "largest" is the rule there, not a fallback.
    if config.face != "mask" or task.mask is None or len(faces) == 1:
        return largest, None
    if mask_problem is not None:
        return largest, mask_problem
    if frame_index not in masks:
        return largest, f"mask source has no frame {frame_index}"
    chosen = choose_by_mask(faces, mask_to_binary(masks[frame_index], frame.shape))
    if chosen is None:
        return largest, "mask overlaps none of the detected faces"
    return chosen, None


def _save_crop(crop: np.ndarray, path: Path, config: PreprocessConfig) -> None:
    image = Image.fromarray(crop)
    if config.image_format == "jpg":
        image.save(path, quality=config.jpeg_quality)
    else:
        image.save(path, compress_level=1)  # level 1: far faster, files only slightly larger


# ----------------------------------------------------------------------------- workers

_WORKER_STATE: dict[str, Any] = {}


@functools.lru_cache(maxsize=2)
def _cached_aligner(size: int, margin: float, upsample: int, detect_max_side: int) -> FaceAligner:
    # The dlib models take ~0.5-1 s to load, far more than one frame: load once per process.
    return FaceAligner(size, margin, upsample, detect_max_side)


def _init_worker(config: PreprocessConfig, out: str) -> None:
    _WORKER_STATE["aligner"] = _cached_aligner(
        config.size, config.margin, config.upsample, config.detect_max_side
    )
    _WORKER_STATE["config"] = config
    _WORKER_STATE["out"] = Path(out)


def _run_task(task: VideoTask) -> dict[str, Any]:
    try:
        return process_video(task, _WORKER_STATE["out"], _WORKER_STATE["config"], _WORKER_STATE["aligner"])
    except Exception as error:  # a bug on one video must not end a day-long run; it is reported
        return {
            "status": "failed",
            "video_id": task.video_id,
            "path": task.record["path"],
            "error": f"unexpected {type(error).__name__}: {error}",
            "traceback": traceback.format_exc(limit=8),
        }


def _run_all(tasks: list[VideoTask], out: Path, config: PreprocessConfig) -> Iterator[dict[str, Any]]:
    if config.workers == 1 or len(tasks) <= 1:
        _init_worker(config, str(out))
        yield from map(_run_task, tasks)
        return
    # spawn, not fork: the progress bar runs a thread, and forking a threaded process can deadlock.
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(config.workers, len(tasks)), _init_worker, (config, str(out))) as pool:
        yield from pool.imap_unordered(_run_task, tasks)


# ----------------------------------------------------------------------------- the whole run


def build_tasks(records: pd.DataFrame, root: Path, config: PreprocessConfig) -> list[VideoTask]:
    """Check the input records and turn each row into a task (one per video id)."""
    records = validate_records(records, "preprocess input records")
    if "media" not in records.columns:
        raise PreprocessError(
            f"records lack the 'media' column (one of {list(MEDIA_KINDS)}) that says whether "
            f"'path' is a video, an image or a folder of frames; found columns {list(records.columns)}"
        )
    bad_media = records.loc[~records["media"].isin(MEDIA_KINDS), "media"]
    if len(bad_media):
        raise PreprocessError(
            f"{len(bad_media)} record(s) have media outside {list(MEDIA_KINDS)}: "
            f"examples {sorted(set(map(str, bad_media)))[:5]}"
        )
    if config.face == "mask" and "mask_path" not in records.columns:
        raise PreprocessError(
            "face='mask' chooses the face overlapping the manipulation mask, but the records have no "
            "'mask_path' column; use a reader that provides masks (FF++) or face='largest'"
        )
    duplicated = records.loc[records["video_id"].duplicated(keep=False), "video_id"]
    if len(duplicated):
        raise PreprocessError(
            f"video_id must be unique per record (one row per video, frame folder or image); "
            f"{duplicated.nunique()} id(s) repeat, e.g. {sorted(set(duplicated))[:5]}"
        )
    tasks = []
    for row in records.to_dict("records"):
        record = {key: json_safe(value) for key, value in row.items()}
        mask = record.get("mask_path")
        tasks.append(
            VideoTask(
                video_id=record["video_id"],
                media=record["media"],
                source=str(root / record["path"]),
                mask=str(root / mask) if _has_value(mask) else None,
                output_name=output_name_for(record["video_id"]),
                record=record,
            )
        )
    _check_output_names(tasks)
    return tasks


def _check_settings(out: Path, config: PreprocessConfig) -> None:
    settings_path = out / "settings.json"
    wanted = config.settings()
    if settings_path.exists():
        stored = json.loads(settings_path.read_text(encoding="utf-8"))
        if stored != wanted:
            differences = {
                k: (stored.get(k), wanted.get(k))
                for k in set(stored) | set(wanted)
                if stored.get(k) != wanted.get(k)
            }
            raise PreprocessError(
                f"{out} was made with other settings ({{name: (stored, now)}} = {differences}); "
                f"resuming would mix crops of both. Use another --out or the stored settings."
            )
    else:
        atomic_write_text(settings_path, json.dumps(wanted, indent=2))


def _load_part(path: Path, task: VideoTask, config: PreprocessConfig) -> dict[str, Any] | None:
    """The finished part of ``task``, or None if it has none (or an unusable one: then redone).

    A part whose input record differs from ``task.record`` only in fields the crops do not depend
    on (label, split, extra columns) gets its rows rewritten from the new record, is saved again
    and carries ``"record_updated": True``; one whose source differs is not usable.
    """
    if not path.is_file():
        return None
    try:
        part = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if part.get("video_id") != task.video_id or part.get("settings") != config.settings():
        return None
    stored = _stored_record(part)
    if stored is None or stored == task.record:
        return part
    if any(stored.get(key) != task.record.get(key) for key in CROP_INPUTS):
        return None
    crop_fields = ("path", "media", *INDEX_COLUMNS)
    part["rows"] = [
        {**task.record, **{key: row[key] for key in crop_fields if key in row}} for row in part["rows"]
    ]
    part["record"] = task.record
    atomic_write_text(path, json.dumps(part))
    return {**part, "record_updated": True}


def _stored_record(part: dict[str, Any]) -> dict[str, Any] | None:
    """The input record a part was made from (older parts: rebuilt from their first row)."""
    if "record" in part:
        return part["record"]
    if not part.get("rows"):
        return None  # no rows: nothing of the record reached the index
    row = part["rows"][0]
    record = {key: value for key, value in row.items() if key not in ("path", "media", *INDEX_COLUMNS)}
    return {**record, "path": row["source_path"], "media": part.get("media")}


def preprocess_records(
    records: pd.DataFrame,
    root: Path | str,
    out: Path | str,
    config: PreprocessConfig | None = None,
    show_progress: bool = True,
) -> PreprocessResult:
    """Preprocess every record of ``records`` (paths relative to ``root``) into ``out``.

    Writes crops, per-video parts, ``index.csv`` and ``report.json`` (layout in the module
    docstring) and returns the index and the report. With ``config.workers > 1`` the workers are
    started with ``spawn``: a script calling this must do so under ``if __name__ == "__main__":``.
    """
    config = config or PreprocessConfig()
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise PreprocessError(f"dataset root {root} is not a directory")
    tasks = build_tasks(records, root, config)
    # Fail here, once, if the model is missing: a worker whose initializer fails is respawned forever.
    landmark_model_path()
    out.mkdir(parents=True, exist_ok=True)
    _check_settings(out, config)

    parts: dict[str, dict[str, Any]] = {}
    pending: list[VideoTask] = []
    redone_partial: list[str] = []
    records_updated: list[str] = []
    for task in tasks:
        part = _load_part(out / "parts" / f"{task.output_name}.json", task, config)
        if part is not None:
            parts[task.video_id] = part
            if part.get("record_updated"):
                records_updated.append(task.video_id)
        else:
            pending.append(task)
            if (out / "crops" / task.output_name).exists():
                redone_partial.append(task.video_id)
    skipped = len(parts)

    failures: list[dict[str, Any]] = []
    processed_now: list[str] = []
    progress = Progress(
        TextColumn("[bold]faces"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeRemainingColumn(),
        disable=not show_progress,
    )
    with progress:
        bar = progress.add_task("faces", total=len(tasks), completed=skipped, failed=0)
        for result in _run_all(pending, out, config):
            if result["status"] == "done":
                parts[result["video_id"]] = result
                processed_now.append(result["video_id"])
            else:
                failures.append(
                    {k: result[k] for k in ("video_id", "path", "error", "traceback") if k in result}
                )
            progress.update(bar, advance=1, failed=len(failures))

    index = _assemble_index(tasks, parts, records.columns, out)
    report = build_report(tasks, parts, failures, skipped, redone_partial, config, root, out, records_updated)
    # What the reader tolerated in the dataset's own files (e.g. repeated list lines kept once).
    report["reader"] = json_safe(dict(records.attrs.get("reader_report", {})))
    atomic_write_text(out / "report.json", json.dumps(report, indent=2))
    return PreprocessResult(index=index, report=report, processed_now=processed_now)


def _assemble_index(
    tasks: list[VideoTask], parts: dict[str, dict[str, Any]], input_columns: pd.Index, out: Path
) -> pd.DataFrame:
    """All rows of the finished videos in input order, validated and written atomically."""
    rows = [row for task in tasks if task.video_id in parts for row in parts[task.video_id]["rows"]]
    extra = [c for c in input_columns if c not in RECORD_COLUMNS and c not in INDEX_COLUMNS]
    if "media" not in extra:
        extra.append("media")
    columns = [*RECORD_COLUMNS, *extra, *INDEX_COLUMNS]
    index = pd.DataFrame(rows, columns=columns)
    index = validate_records(index, str(out / "index.csv"))
    atomic_write_text(out / "index.csv", index.to_csv(index=False))
    return index


def build_report(
    tasks: list[VideoTask],
    parts: dict[str, dict[str, Any]],
    failures: list[dict[str, Any]],
    skipped: int,
    redone_partial: list[str],
    config: PreprocessConfig,
    root: Path,
    out: Path,
    records_updated: list[str] | None = None,
) -> dict[str, Any]:
    """Counts and per-video lists of everything that did not go as asked."""
    finished = [parts[t.video_id] for t in tasks if t.video_id in parts]
    no_face = [
        {"video_id": p["video_id"], "path": p["path"], "frame_indices": p["no_face_frames"]}
        for p in finished
        if p["no_face_frames"]
    ]
    short = [
        {
            "video_id": p["video_id"],
            "path": p["path"],
            "frames_requested": p["frames_requested"],
            "frames_available": p["frames_available"],
            "frames_written": p["frames_written"],
        }
        for p in finished
        if p["frames_written"] < p["frames_requested"]
    ]
    mismatch = [
        {
            "video_id": p["video_id"],
            "path": p["path"],
            "metadata_count": p["metadata_frame_count"],
            "decoded_count": p["frames_available"],
        }
        for p in finished
        if p["resampled"]
    ]
    decode_errors = [
        {"video_id": p["video_id"], "path": p["path"], "errors": p["decode_errors"]}
        for p in finished
        if p["decode_errors"]
    ]
    mask_fallback = [
        {"video_id": p["video_id"], "frames": p["mask_fallback"]} for p in finished if p["mask_fallback"]
    ]
    counts = {
        "videos": len(tasks),
        "finished": len(finished),
        "processed_now": len(finished) - skipped,
        "skipped_already_done": skipped,
        "redone_partial": len(redone_partial),
        "records_updated": len(records_updated or []),
        "failed": len(failures),
        "videos_short": len(short),
        "videos_frame_count_mismatch": len(mismatch),
        "videos_with_decode_errors": len(decode_errors),
        "frames_requested": sum(p["frames_requested"] for p in finished),
        "frames_written": sum(p["frames_written"] for p in finished),
        "frames_no_face": sum(len(p["no_face_frames"]) for p in finished),
        "frames_mask_fallback": sum(len(p["mask_fallback"]) for p in finished),
    }
    return {
        "root": str(root),
        "out": str(out),
        "settings": config.settings(),
        "counts": counts,
        "failed": failures,
        "no_face": no_face,
        "short": short,
        "frame_count_mismatch": mismatch,
        "decode_errors": decode_errors,
        "mask_fallback": mask_fallback,
        "redone_partial": redone_partial,
        "records_updated": list(records_updated or []),
    }


def format_summary(report: dict[str, Any], examples: int = 5) -> str:
    """A readable summary of a report (the full lists are in report.json)."""
    c = report["counts"]
    lines = [
        f"videos: {c['videos']} | finished {c['finished']} (now {c['processed_now']}, "
        f"already done {c['skipped_already_done']}, partial redone {c['redone_partial']}, "
        f"labels/split/columns updated {c['records_updated']}) | failed {c['failed']}",
        f"frames: {c['frames_written']} written of {c['frames_requested']} requested | "
        f"no face {c['frames_no_face']} | mask fallback {c['frames_mask_fallback']}",
        f"videos with fewer frames than asked: {c['videos_short']} | "
        f"frame count differing from metadata (resampled): {c['videos_frame_count_mismatch']} | "
        f"damaged streams (bad packets skipped): {c['videos_with_decode_errors']}",
    ]
    repeated = report.get("reader", {}).get("repeated_list_lines")
    if repeated:
        per_list = report["reader"]["repeated_lines_by_list"]
        lines.append(
            f"reader: {repeated} repeated list line(s) (same path, split and label) kept once: "
            + ", ".join(f"{name} {entry['count']}" for name, entry in per_list.items())
        )
    for failure in report["failed"][:examples]:
        lines.append(f"  FAILED {failure['video_id']}: {failure['error']}")
    if len(report["failed"]) > examples:
        lines.append(f"  ... {len(report['failed']) - examples} more failures")
    for entry in report["no_face"][:examples]:
        lines.append(f"  no face in {entry['video_id']} frames {entry['frame_indices']}")
    if len(report["no_face"]) > examples:
        lines.append(f"  ... {len(report['no_face']) - examples} more videos with faceless frames")
    lines.append(f"details: {Path(report['out']) / 'report.json'}")
    return "\n".join(lines)
