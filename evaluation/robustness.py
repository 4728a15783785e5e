"""Image corruptions for robustness evaluation, at five severity levels (severity 0 = identity).

The levels follow DeeperForensics-1.0 (Jiang et al., CVPR 2020, ``perturbation/`` of its code
release), the definitions the DFMoE, DTN and GM-DF robustness figures cite. This is an own
implementation in numpy / PIL / PyAV (no OpenCV); where DeeperForensics' OpenCV calls have a
detail worth matching it is matched and said so below.

===============  =====================================  ================================  ==========
name             DeeperForensics key and meaning        parameter per severity 1..5       worse when
===============  =====================================  ================================  ==========
saturation       CS: chroma (Cb, Cr) scaled by p         0.4, 0.3, 0.2, 0.1, 0.0           smaller
contrast         CC: intensities scaled by p             0.85, 0.725, 0.6, 0.475, 0.35     smaller
block_wise       BW: p grey 8x8 blocks per 256 px        16, 32, 48, 64, 80                larger
gaussian_noise   GNC: white Gaussian noise of variance   0.001, 0.002, 0.005, 0.01, 0.05   larger
                 p in YCbCr
gaussian_blur    GB: k x k Gaussian, sigma = k / 6       7, 9, 13, 17, 21                  larger
pixelation       "JPEG" in DF's code: down-scale by p,   2, 3, 4, 5, 6                     larger
                 up-scale back (bilinear)
h264             VC: H.264 (x264) constant rate factor   30, 32, 35, 38, 40                larger
                 (each frame a one-frame stream)
h264_video       VC on the frames of a video, encoded    30, 32, 35, 38, 40                larger
                 as one stream (DTN Fig. 5)
uniform_noise    GNC with uniform instead of Gaussian    0.001, 0.002, 0.005, 0.01, 0.05   larger
                 noise of the same variance (DTN Fig. 5)
jpeg             not in DF-1.0: JPEG quality             90, 70, 50, 30, 10                smaller
===============  =====================================  ================================  ==========

Details and deliberate differences:

* DeeperForensics' code names pixelation ``JPEG``; real JPEG compression is not one of its seven
  corruptions. Papers that report "JPEG" while citing DF-1.0 (DFMoE Fig. 2) most likely mean
  pixelation. ``jpeg`` here is real JPEG at the qualities above (the project's choice: evenly
  spaced from light to heavy; DTN's text gives an unreadable list), configurable.
* contrast: DF multiplies by p and truncates (``astype(uint8)``), which darkens towards black
  rather than compressing around the mean; matched, truncation included.
* gaussian_noise: DF adds N(0, p) to YCbCr expressed in studio swing ([16, 235] / 255 for Y,
  [16, 240] / 255 for chroma); in full-range units that is a standard deviation of
  sqrt(p) * 255 / 219 on Y and sqrt(p) * 255 / 224 on Cb, Cr, which is what is added here.
* block_wise: DF places ``p * (min side // 256)`` blocks of 8 x 8 px, value 128, uniformly at
  random. For images of 256 px or more this is exactly DF. Below 256 px DF's formula gives no
  block at all, so the block side shrinks with the image (``round(8 * side / 256)``, >= 1) and
  the count stays p: the covered fraction is DF's at 256 px.
* h264: DF re-encodes whole videos with ffmpeg ``-crf p``. Frames are scored one at a time here,
  so each frame is encoded as a one-frame H.264 stream (an intra frame, yuv420p, x264 preset
  medium) at CRF p and decoded back: the degradation of the key frames of such a video.
* h264_video: the frames of one video that are scored (a test set's evaluation frames of that
  video, in frame order) are encoded together as one H.264 stream (libx264 through PyAV, yuv420p,
  preset medium, CRF p, 25 fps, x264's default GOP: one key frame then predicted frames) and decoded
  back, so predicted frames carry the inter-frame coding loss that DF re-encoding gives. The frames are
  padded (edge replication) to the video's largest frame and cropped back. It needs a whole video:
  :func:`corrupt_video`, used by ``engine.robustness`` for names in :data:`VIDEO_CORRUPTIONS`.
* uniform_noise: DTN replaces the Gaussian noise of DF-1.0 by uniform noise ("as Gaussian noise has
  been used in the MoE module"); here U(-a, a) with a = sqrt(3) x the standard deviation of
  gaussian_noise at the same level, so both have the same variance at every severity.
* Random corruptions (block_wise, gaussian_noise, uniform_noise) draw from a generator seeded by the image
  content and ``seed``, not by the severity: every model sees the same corrupted pixels, and the
  blocks / noise of severity s are contained in (scaled up to) those of severity s + 1, so the
  damage grows monotonically with severity.
"""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
"""The corrupted severity levels; 0 is the clean image."""


@dataclass(frozen=True)
class CorruptionSpec:
    """One corruption: its parameter at each severity 1..5 and what the parameter means."""

    name: str
    label: str
    parameter: str
    levels: tuple[float, ...]
    source: str


CORRUPTIONS: dict[str, CorruptionSpec] = {
    spec.name: spec
    for spec in (
        CorruptionSpec("gaussian_blur", "Gaussian blur", "kernel size k (sigma = k / 6)", (7, 9, 13, 17, 21), "DF-1.0 GB"),
        CorruptionSpec("block_wise", "Block-wise", "grey 8x8 blocks per 256 px", (16, 32, 48, 64, 80), "DF-1.0 BW"),
        CorruptionSpec("contrast", "Contrast", "intensity factor", (0.85, 0.725, 0.6, 0.475, 0.35), "DF-1.0 CC"),
        CorruptionSpec("saturation", "Saturation", "chroma factor", (0.4, 0.3, 0.2, 0.1, 0.0), "DF-1.0 CS"),
        CorruptionSpec("jpeg", "JPEG", "JPEG quality", (90, 70, 50, 30, 10), "project choice (not in DF-1.0)"),
        CorruptionSpec(
            "gaussian_noise", "White Gaussian noise", "noise variance (YCbCr)", (0.001, 0.002, 0.005, 0.01, 0.05), "DF-1.0 GNC"
        ),
        CorruptionSpec("pixelation", "Pixelation", "down-scaling factor", (2, 3, 4, 5, 6), "DF-1.0 'JPEG' (pixelation)"),
        CorruptionSpec("h264", "H.264 compression", "x264 constant rate factor", (30, 32, 35, 38, 40), "DF-1.0 VC"),
        CorruptionSpec(
            "h264_video", "H.264 video compression", "x264 constant rate factor", (30, 32, 35, 38, 40),
            "DF-1.0 VC on the frames of a video (DTN Fig. 5)",
        ),
        CorruptionSpec(
            "uniform_noise", "Uniform noise", "noise variance (YCbCr)", (0.001, 0.002, 0.005, 0.01, 0.05),
            "DF-1.0 GNC with uniform noise (DTN Fig. 5)",
        ),
    )
}
"""Every corruption, by name, in the order the figures show them."""
VIDEO_CORRUPTIONS: frozenset[str] = frozenset({"h264_video"})
"""Corruptions of a whole video (:func:`corrupt_video`), not of one image."""

# Full-range BT.601 (JFIF) RGB <-> YCbCr, the conversion JPEG and OpenCV's YCrCb use.
_RGB_TO_YCBCR = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=np.float64
)
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR)
_BLOCK_VALUE = 128
_BLOCK_SIDE = 8
_REFERENCE_SIDE = 256


class CorruptionError(ValueError):
    """An unknown corruption, a severity outside 0..5, or an image that is not RGB uint8."""


def corruption_parameter(name: str, severity: int, levels: Mapping[str, Sequence[float]] | None = None) -> float:
    """The parameter of corruption ``name`` at ``severity`` (1..5); ``levels`` overrides the defaults."""
    spec = _spec(name)
    values = tuple(levels[name]) if levels is not None and name in levels else spec.levels
    if len(values) != len(SEVERITIES):
        raise CorruptionError(f"corruption {name!r}: {len(values)} levels given {list(values)}; expected {len(SEVERITIES)}")
    if severity not in SEVERITIES:
        raise CorruptionError(f"corruption {name!r}: severity {severity!r} has no parameter; expected one of {list(SEVERITIES)}")
    return values[severity - 1]


def corrupt(
    image: np.ndarray,
    name: str,
    severity: int,
    seed: int = 0,
    levels: Mapping[str, Sequence[float]] | None = None,
) -> np.ndarray:
    """``image`` (H, W, 3) uint8 RGB corrupted by ``name`` at ``severity`` (0 returns a copy).

    ``seed`` and the image content seed the random corruptions, so the result is reproducible
    and the same for every model; ``levels`` maps corruption names to 5 custom parameters.
    """
    _spec(name)
    if name in VIDEO_CORRUPTIONS:
        raise CorruptionError(f"corruption {name!r} acts on the frames of a whole video: use corrupt_video")
    _check_severity(name, severity)
    pixels = _check_image(image, name)
    if severity == 0:
        return pixels.copy()
    parameter = corruption_parameter(name, int(severity), levels)
    if name in _RANDOM_CORRUPTIONS:
        return _RANDOM_CORRUPTIONS[name](pixels, parameter, image_rng(pixels, seed, name))
    return _CORRUPTIONS[name](pixels, parameter)


def corrupt_video(
    frames: Sequence[np.ndarray], name: str, severity: int, levels: Mapping[str, Sequence[float]] | None = None
) -> list[np.ndarray]:
    """The frames (each (H, W, 3) uint8 RGB, in play order) of one video corrupted together by the
    video corruption ``name`` at ``severity`` (0 returns copies); one output frame per input frame."""
    if name not in VIDEO_CORRUPTIONS:
        raise CorruptionError(f"corruption {name!r} is not a video corruption ({sorted(VIDEO_CORRUPTIONS)}); use corrupt")
    _check_severity(name, severity)
    pixels = [_check_image(frame, name) for frame in frames]
    if not pixels:
        raise CorruptionError(f"corruption {name!r}: a video needs at least one frame, got none")
    if severity == 0:
        return [frame.copy() for frame in pixels]
    return h264_video(pixels, corruption_parameter(name, int(severity), levels))


def image_rng(image: np.ndarray, seed: int, name: str) -> np.random.Generator:
    """A generator determined by the pixels, ``seed`` and the corruption name (not the severity)."""
    content = zlib.crc32(np.ascontiguousarray(image).tobytes())
    return np.random.default_rng([int(seed), content, zlib.crc32(name.encode())])


class CorruptImage:
    """A picklable PIL -> PIL transform applying one corruption (for DataLoader workers)."""

    def __init__(self, name: str, severity: int, seed: int = 0, levels: Mapping[str, Sequence[float]] | None = None):
        self.name = name
        self.severity = int(severity)
        self.seed = int(seed)
        self.levels = {k: tuple(v) for k, v in (levels or {}).items()}
        _spec(name)
        if name in VIDEO_CORRUPTIONS:
            raise CorruptionError(f"corruption {name!r} acts on whole videos, not single images: use corrupt_video")
        if self.severity:  # fail at construction, not in a DataLoader worker
            corruption_parameter(name, self.severity, self.levels)

    def __call__(self, image: Image.Image) -> Image.Image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
        return Image.fromarray(corrupt(rgb, self.name, self.severity, self.seed, self.levels))

    def __repr__(self) -> str:
        return f"CorruptImage({self.name!r}, severity={self.severity}, seed={self.seed})"


def psnr(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 images (inf when identical)."""
    if reference.shape != distorted.shape:
        raise ValueError(f"psnr: shapes differ, {reference.shape} vs {distorted.shape}")
    mse = float(np.mean((reference.astype(np.float64) - distorted.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


# --------------------------------------------------------------------------- the corruptions


def gaussian_blur(image: np.ndarray, kernel_size: float) -> np.ndarray:
    """k x k Gaussian with sigma = k / 6, borders reflected without repeating the edge pixel
    (OpenCV's default BORDER_REFLECT_101 = scipy's ``mirror``)."""
    size = int(kernel_size)
    if size < 1 or size % 2 == 0:
        raise CorruptionError(f"gaussian_blur: kernel size must be odd and >= 1, got {kernel_size!r}")
    sigma = size / 6.0
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    kernel = np.exp(-(offsets**2) / (2.0 * sigma**2))
    kernel /= kernel.sum()
    blurred = image.astype(np.float64)
    for axis in (0, 1):
        blurred = ndimage.convolve1d(blurred, kernel, axis=axis, mode="mirror")
    return _to_uint8(blurred)


def block_wise(image: np.ndarray, blocks_per_256: float, rng: np.random.Generator) -> np.ndarray:
    """Grey (128) square blocks at uniformly random positions (see the module notes for size)."""
    height, width = image.shape[:2]
    side_ratio = min(height, width) / _REFERENCE_SIDE
    if side_ratio >= 1:
        block, count = _BLOCK_SIDE, int(blocks_per_256) * int(min(height, width) // _REFERENCE_SIDE)
    else:
        block, count = max(1, round(_BLOCK_SIDE * side_ratio)), int(blocks_per_256)
    block = min(block, height - 1, width - 1)
    # One (count, 2) draw: its first k rows equal a (k, 2) draw from the same generator, so the
    # blocks of a lower severity are always among those of a higher one.
    corners = rng.integers(0, [height - block, width - block], size=(count, 2))
    out = image.copy()
    for top, left in corners:
        out[top : top + block, left : left + block, :] = _BLOCK_VALUE
    return out


def contrast(image: np.ndarray, factor: float) -> np.ndarray:
    """Intensities times ``factor``, truncated as DeeperForensics does (darkens towards black)."""
    return np.clip(np.floor(image.astype(np.float64) * float(factor)), 0, 255).astype(np.uint8)


def saturation(image: np.ndarray, factor: float) -> np.ndarray:
    """Chroma (Cb, Cr) scaled by ``factor`` around neutral; 0 gives a grey image."""
    ycbcr = rgb_to_ycbcr(image)
    ycbcr[..., 1:] = 0.5 + (ycbcr[..., 1:] - 0.5) * float(factor)
    return _to_uint8(ycbcr_to_rgb(ycbcr) * 255.0)


def gaussian_noise(image: np.ndarray, variance: float, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise in YCbCr with DeeperForensics' amplitude (see the module notes)."""
    ycbcr = rgb_to_ycbcr(image)
    std = math.sqrt(float(variance))
    noise = rng.standard_normal(ycbcr.shape)
    ycbcr[..., 0] += noise[..., 0] * std * 255.0 / 219.0
    ycbcr[..., 1:] += noise[..., 1:] * std * 255.0 / 224.0
    return _to_uint8(ycbcr_to_rgb(ycbcr) * 255.0)


def uniform_noise(image: np.ndarray, variance: float, rng: np.random.Generator) -> np.ndarray:
    """Uniform noise in YCbCr with the variance of :func:`gaussian_noise` at the same ``variance``."""
    ycbcr = rgb_to_ycbcr(image)
    half_width = math.sqrt(3.0 * float(variance))  # U(-a, a) has variance a^2 / 3
    noise = rng.uniform(-1.0, 1.0, size=ycbcr.shape)
    ycbcr[..., 0] += noise[..., 0] * half_width * 255.0 / 219.0
    ycbcr[..., 1:] += noise[..., 1:] * half_width * 255.0 / 224.0
    return _to_uint8(ycbcr_to_rgb(ycbcr) * 255.0)


def pixelation(image: np.ndarray, factor: float) -> np.ndarray:
    """Bilinear down-scaling by ``factor`` (sizes floored as ``h // factor``) and back up.

    Bilinear without anti-aliasing and with pixel-centre alignment, i.e. OpenCV's INTER_LINEAR
    that DeeperForensics uses.
    """
    height, width = image.shape[:2]
    small = (max(1, height // int(factor)), max(1, width // int(factor)))
    reduced = _bilinear_resize(image.astype(np.float64), small)
    return _to_uint8(_bilinear_resize(reduced, (height, width)))


def jpeg(image: np.ndarray, quality: float) -> np.ndarray:
    """A JPEG round trip at ``quality`` (libjpeg through PIL, 4:2:0 chroma subsampling)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.uint8).copy()


def h264(image: np.ndarray, crf: float) -> np.ndarray:
    """A one-frame H.264 (libx264, yuv420p) round trip at constant rate factor ``crf``."""
    return _h264_round_trip([image], crf, "h264")[0]


def h264_video(frames: Sequence[np.ndarray], crf: float) -> list[np.ndarray]:
    """The frames of one video as one H.264 stream (libx264, yuv420p, CRF ``crf``), decoded back."""
    return _h264_round_trip(frames, crf, "h264_video")


def _h264_round_trip(frames: Sequence[np.ndarray], crf: float, name: str) -> list[np.ndarray]:
    import av

    sizes = [frame.shape[:2] for frame in frames]
    # One frame size per stream, and yuv420p needs even sides: pad by edge replication, crop after decoding.
    height = max(h for h, _ in sizes)
    width = max(w for _, w in sizes)
    height, width = height + height % 2, width + width % 2
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="h264") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(int(crf)), "preset": "medium"}
        stream.codec_context.thread_count = 1  # deterministic and polite on shared machines
        for image in frames:
            padded = np.pad(image, ((0, height - image.shape[0]), (0, width - image.shape[1]), (0, 0)), mode="edge")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(padded), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    buffer.seek(0)
    with av.open(buffer, mode="r", format="h264") as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    if len(decoded) != len(frames):
        raise CorruptionError(f"{name}: {len(frames)} frame(s) encoded at crf={crf}, {len(decoded)} decoded")
    return [out[:h, :w].copy() for out, (h, w) in zip(decoded, sizes)]


_CORRUPTIONS = {
    "gaussian_blur": gaussian_blur,
    "contrast": contrast,
    "saturation": saturation,
    "pixelation": pixelation,
    "jpeg": jpeg,
    "h264": h264,
}
_RANDOM_CORRUPTIONS = {"block_wise": block_wise, "gaussian_noise": gaussian_noise, "uniform_noise": uniform_noise}


# --------------------------------------------------------------------------- helpers


def rgb_to_ycbcr(image: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float YCbCr in [0, 1] (full range, chroma centred on 0.5)."""
    ycbcr = (image.astype(np.float64) / 255.0) @ _RGB_TO_YCBCR.T
    ycbcr[..., 1:] += 0.5
    return ycbcr


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """float YCbCr (as from :func:`rgb_to_ycbcr`) -> float RGB in [0, 1] (not clipped)."""
    centred = ycbcr.copy()
    centred[..., 1:] -= 0.5
    return centred @ _YCBCR_TO_RGB.T


def _bilinear_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an (H, W, C) float array to ``size`` = (height, width), half-pixel centres."""
    out = image
    for axis, target in enumerate(size):
        source = out.shape[axis]
        if source == target:
            continue
        centres = (np.arange(target, dtype=np.float64) + 0.5) * (source / target) - 0.5
        centres = np.clip(centres, 0, source - 1)
        low = np.floor(centres).astype(np.int64)
        high = np.minimum(low + 1, source - 1)
        weight = (centres - low).reshape([-1 if a == axis else 1 for a in range(out.ndim)])
        out = np.take(out, low, axis=axis) * (1 - weight) + np.take(out, high, axis=axis) * weight
    return out


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _spec(name: str) -> CorruptionSpec:
    if name not in CORRUPTIONS:
        raise CorruptionError(f"unknown corruption {name!r}; expected one of {list(CORRUPTIONS)}")
    return CORRUPTIONS[name]


def _check_severity(name: str, severity: object) -> None:
    if not isinstance(severity, int | np.integer) or not 0 <= int(severity) <= len(SEVERITIES):
        raise CorruptionError(f"corruption {name!r}: severity {severity!r} must be an integer in 0..{len(SEVERITIES)}")


def _check_image(image: np.ndarray, name: str) -> np.ndarray:
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3 or min(pixels.shape[:2]) < 2:
        raise CorruptionError(
            f"corruption {name!r}: expected an (H, W, 3) uint8 RGB image with sides >= 2, "
            f"got shape {pixels.shape} dtype {pixels.dtype}"
        )
    return pixels
