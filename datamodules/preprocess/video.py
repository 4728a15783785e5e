"""Uniform frame sampling and decoding of videos (PyAV), frame folders and single images.

How the frame count of a video is determined
--------------------------------------------
1. The container's own count (``stream.frames``, the ``nb_frames`` of the stream header, exact
   for MP4/MOV) is read first; when it is missing (0, common for AVI/MKV/WebM), the packets of
   the video stream are counted by demuxing, without decoding (cheap: no pixel work).
2. ``n`` indices are chosen uniformly over that count (:func:`uniform_indices`) and the whole
   stream is decoded once, converting only the chosen frames to RGB. Decoding always runs to the
   end, so the number of frames the decoder really produced is known afterwards.
3. Metadata lies (truncated files whose header still announces every frame, variable frame rate
   containers, broken ``nb_frames``): when the decoded count differs from the count of step 1,
   the indices are chosen again over the decoded count and the video is decoded a second time.
   The mismatch is returned (``SampledFrames.metadata_count`` vs ``decoded_count``) so the
   pipeline can report it; no frame is ever substituted for another.

Damaged streams: a packet the decoder rejects is skipped and a file cut short ends where the
demuxer stops, as with the ffmpeg command line; the errors are returned for the report and the
sample is drawn over the frames that really decode. A file that cannot be opened, or yields no
frame at all, raises :class:`MediaError` (the pipeline lists the video as failed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from PIL import Image

IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
MEDIA_KINDS: tuple[str, ...] = ("video", "image", "frames")


class MediaError(RuntimeError):
    """A video, image or frame folder that cannot be read; the message names the file and why."""


@dataclass(frozen=True)
class SampledFrames:
    """Frames chosen from one source.

    ``frames`` maps the frame index (0-based, in presentation order for videos, in sorted-file
    order for frame folders) to an RGB ``uint8`` array of shape (H, W, 3).
    ``metadata_count`` is the count announced before decoding (container header, packet count
    or number of files); ``decoded_count`` the frames that really exist; ``resampled`` says the
    indices were chosen a second time because the two differ; ``decode_errors`` lists packets
    the decoder rejected or where a cut-short file ended (the frames kept are all real frames).
    """

    frames: dict[int, np.ndarray]
    metadata_count: int | None
    decoded_count: int
    resampled: bool = False
    decode_errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DecodedVideo:
    """One decoding pass: the kept frames, how many frames decoded, and what went wrong."""

    frames: dict[int, np.ndarray]
    decoded_count: int
    errors: list[str]


def uniform_indices(available: int, wanted: int) -> np.ndarray:
    """Indices of ``wanted`` frames spread uniformly over ``available`` frames.

    Each index is the centre of one of ``wanted`` equal segments of the video
    (``floor((i + 0.5) * available / wanted)``), so the sample covers the whole length, never
    the first frames only, and avoids the first and last frame, which are the most often
    damaged. With fewer frames than wanted every frame is taken once (no repeats: the caller
    reports the shortfall).
    """
    if available < 0 or wanted < 0:
        raise ValueError(
            f"uniform_indices needs non-negative counts, got available={available}, wanted={wanted}"
        )
    if available <= wanted:
        return np.arange(available, dtype=np.int64)
    centres = (np.arange(wanted, dtype=np.float64) + 0.5) * available / wanted
    return np.floor(centres).astype(np.int64)


def natural_sort_key(name: str) -> list[object]:
    """Sort key that orders ``frame2.png`` before ``frame10.png`` (digit runs compared as numbers)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_frame_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, in natural order (frame numbers need not be zero-padded)."""
    if not folder.is_dir():
        raise MediaError(f"frame folder {folder} does not exist or is not a directory")
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: natural_sort_key(p.name))


def read_image(path: Path) -> np.ndarray:
    """An image file as an RGB ``uint8`` array (H, W, 3)."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as error:  # PIL raises UnidentifiedImageError (an OSError) or ValueError
        raise MediaError(f"cannot read image {path}: {error}") from error


def _open_video(path: Path) -> av.container.InputContainer:
    if not path.is_file():
        raise MediaError(f"video {path} does not exist")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as error:
        raise MediaError(f"cannot open video {path}: {error}") from error
    if not container.streams.video:
        container.close()
        raise MediaError(f"{path} holds no video stream")
    return container


def video_frame_count_from_metadata(path: Path) -> int | None:
    """Frames announced by the container header (``nb_frames``), None when it announces none."""
    with _open_video(path) as container:
        announced = container.streams.video[0].frames
    return int(announced) if announced and announced > 0 else None


def video_frame_count_from_packets(path: Path) -> int:
    """Frames counted as the non-empty packets of the video stream (demux only, no decoding)."""
    container = _open_video(path)
    try:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size > 0)
    except av.FFmpegError as error:
        raise MediaError(f"cannot demux video {path}: {error}") from error
    finally:
        container.close()


def decode_video_frames(path: Path, indices: np.ndarray) -> DecodedVideo:
    """Decode the whole video once; keep the RGB frames at ``indices``, count every frame.

    Frames not in ``indices`` are decoded (codecs need them) but never converted to RGB.
    A packet the decoder rejects is skipped and recorded, as the ffmpeg command line does; a
    demuxer error (a file cut short) ends the stream there. Either way the errors are returned
    for the report and the decoded count says how many frames really exist.
    Decoding runs single-threaded: parallelism comes from the pipeline's worker processes.
    """
    wanted = {int(i) for i in indices}
    frames: dict[int, np.ndarray] = {}
    errors: list[str] = []
    decoded = 0

    def keep(decoded_frames: list[av.VideoFrame]) -> None:
        nonlocal decoded
        for frame in decoded_frames:
            if decoded in wanted:
                frames[decoded] = frame.to_ndarray(format="rgb24")
            decoded += 1

    container = _open_video(path)
    try:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as error:
                errors.append(f"demuxing stopped after {decoded} frame(s): {error}")
                break
            try:
                keep(packet.decode())
            except av.FFmpegError as error:
                errors.append(f"packet at frame {decoded} rejected: {error}")
        try:
            keep(stream.codec_context.decode(None))  # frames the decoder still holds
        except av.EOFError:
            pass  # the demuxer's final empty packet already flushed the decoder
        except av.FFmpegError as error:
            errors.append(f"flushing the decoder failed after {decoded} frame(s): {error}")
    finally:
        container.close()
    return DecodedVideo(frames=frames, decoded_count=decoded, errors=errors)


def sample_video(path: Path, wanted: int) -> SampledFrames:
    """``wanted`` frames uniformly over the video, with the count policy of the module docstring."""
    announced = video_frame_count_from_metadata(path)
    expected = announced if announced is not None else video_frame_count_from_packets(path)
    first = decode_video_frames(path, uniform_indices(expected, wanted))
    if first.decoded_count == 0:
        raise MediaError(
            f"video {path} decoded to 0 frames (header announced {announced}); errors: {first.errors[:3]}"
        )
    if first.decoded_count == expected:
        return SampledFrames(first.frames, expected, expected, resampled=False, decode_errors=first.errors)
    # The count used for sampling was wrong: the indices above cover only part of the video (or
    # point past its end). Sample again over the true length rather than keep a skewed sample.
    second = decode_video_frames(path, uniform_indices(first.decoded_count, wanted))
    if second.decoded_count != first.decoded_count:
        raise MediaError(
            f"video {path} decodes to a different number of frames on each pass "
            f"({first.decoded_count} then {second.decoded_count}); cannot sample it reliably"
        )
    return SampledFrames(
        second.frames, expected, second.decoded_count, resampled=True, decode_errors=second.errors
    )


def sample_frame_folder(folder: Path, wanted: int) -> SampledFrames:
    """``wanted`` frames uniformly over the image files of ``folder`` (natural file order)."""
    files = list_frame_files(folder)
    if not files:
        raise MediaError(f"frame folder {folder} holds no image files (looked for {sorted(IMAGE_SUFFIXES)})")
    indices = uniform_indices(len(files), wanted)
    return SampledFrames(
        frames={int(i): read_image(files[int(i)]) for i in indices},
        metadata_count=len(files),
        decoded_count=len(files),
    )


def sample_media(path: Path, media: str, wanted: int) -> SampledFrames:
    """Frames of one record's source: a video, a folder of frames, or a single image (index 0)."""
    if media == "video":
        return sample_video(path, wanted)
    if media == "frames":
        return sample_frame_folder(path, wanted)
    if media == "image":
        return SampledFrames(frames={0: read_image(path)}, metadata_count=1, decoded_count=1)
    raise ValueError(f"unknown media kind {media!r} for {path}; expected one of {list(MEDIA_KINDS)}")


def read_media_frames(path: Path, media: str, indices: list[int]) -> dict[int, np.ndarray]:
    """The frames at exactly ``indices`` (used for masks, which follow their video's indices).

    Indices the source does not have are absent from the result; the caller reports them.
    """
    if media == "video":
        return decode_video_frames(path, np.asarray(indices, dtype=np.int64)).frames
    if media == "frames":
        files = list_frame_files(path)
        return {i: read_image(files[i]) for i in indices if 0 <= i < len(files)}
    if media == "image":
        return {0: read_image(path)} if 0 in indices else {}
    raise ValueError(f"unknown media kind {media!r} for {path}; expected one of {list(MEDIA_KINDS)}")
