"""Forgery and attack artifacts for the embedded synthetic dataset, as pure array functions.

Every function takes float32 RGB images (H, W, 3) in [0, 1] (and, where the artifact is local,
a soft region mask (H, W) in [0, 1]) and returns a new image; nothing is modified in place and
all randomness comes in as explicit parameters, so each artifact is testable on its own.

Families and the trace each one leaves (what a detector can learn, and what the tests check):

=====================  ======================================================================
face_swap              inner face of another identity pasted with a soft mask and a colour
                       mismatch: a step in colour/gradient along the blend boundary
self_blend             the face blended onto itself after a slight scale/shift and colour
                       jitter (SBI-style): a faint boundary, doubled edges inside the mask
gan_upsampling         region re-synthesised at 1/period resolution and upsampled with a
                       periodic (checkerboard-like) pattern: spectral peaks at N / period
diffusion_smoothing    fine texture and noise removed in the region while strong edges stay
                       (detail coring): less high-frequency energy, "plastic" skin
print_attack           halftone dot screen and gamut loss (lower saturation and contrast,
                       paper tint): spectral peak at the dot period
replay_attack          screen moire (beat of two close gratings), glare blob, screen colour
adversarial_noise      small structured +-epsilon perturbation over the whole image
capture                the camera / codec of a domain: colour cast, blur, sensor noise, JPEG
=====================  ======================================================================
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image
from scipy.ndimage import affine_transform, gaussian_filter


def _check_image(image: np.ndarray, name: str) -> None:
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name}: expected an RGB image of shape (H, W, 3), got shape {image.shape}")


def _check_mask(mask: np.ndarray, image: np.ndarray, name: str) -> None:
    if mask.shape != image.shape[:2]:
        raise ValueError(f"{name}: mask shape {mask.shape} does not match image shape {image.shape[:2]}")


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an (H, W) or (H, W, C) array over the two spatial axes only."""
    if sigma <= 0:
        return image.copy()
    sigmas = (sigma, sigma) if image.ndim == 2 else (sigma, sigma, 0)
    return gaussian_filter(image, sigmas, mode="nearest")


def _blend(background: np.ndarray, foreground: np.ndarray, mask: np.ndarray) -> np.ndarray:
    alpha = np.clip(mask, 0.0, 1.0)[..., None]
    return (alpha * foreground + (1 - alpha) * background).astype(np.float32)


def feathered_mask(mask: np.ndarray, feather_sigma: float, shrink: float = 0.5) -> np.ndarray:
    """Soften a region mask: first pull its edge inwards (threshold ``shrink`` of a blurred
    copy), then blur by ``feather_sigma`` pixels. A small sigma gives a visible seam, a large
    one a smooth, hard to see transition."""
    core = (blur(mask, max(feather_sigma, 0.5)) > shrink).astype(np.float32)
    return np.clip(blur(core, feather_sigma), 0.0, 1.0)


def face_swap(
    target: np.ndarray,
    source: np.ndarray,
    mask: np.ndarray,
    feather_sigma: float,
    colour_gain: tuple[float, float, float],
    source_blur_sigma: float = 0.0,
) -> np.ndarray:
    """Paste ``source`` (another identity in the same pose) into ``target`` inside ``mask``.

    ``colour_gain`` multiplies the pasted face per channel (the colour mismatch between the two
    people / the synthesis network); ``source_blur_sigma`` imitates the low-resolution output of
    an autoencoder. The blend uses a mask feathered by ``feather_sigma`` pixels.
    """
    _check_image(target, "face_swap target")
    _check_image(source, "face_swap source")
    _check_mask(mask, target, "face_swap")
    pasted = np.clip(blur(source, source_blur_sigma) * np.asarray(colour_gain, dtype=np.float32), 0.0, 1.0)
    return _blend(target, pasted, feathered_mask(mask, feather_sigma))


def shift_and_scale(image: np.ndarray, scale: float, shift: tuple[float, float], center: tuple[float, float]) -> np.ndarray:
    """Resample ``image`` scaled by ``scale`` about ``center`` (row, col) and moved by ``shift``
    (rows, cols) pixels, bilinear, edges repeated."""
    _check_image(image, "shift_and_scale")
    matrix = np.diag([1 / scale, 1 / scale])
    offset = np.asarray(center) - matrix @ (np.asarray(center) + np.asarray(shift))
    channels = [affine_transform(image[..., c], matrix, offset=offset, order=1, mode="nearest") for c in range(3)]
    return np.stack(channels, axis=-1).astype(np.float32)


def self_blend(
    image: np.ndarray,
    mask: np.ndarray,
    scale: float,
    shift: tuple[float, float],
    colour_gain: tuple[float, float, float],
    feather_sigma: float,
    sharpen: float = 0.0,
    source: np.ndarray | None = None,
) -> np.ndarray:
    """SBI-style self-blending: the image, slightly rescaled/shifted and colour-jittered, is
    blended back onto itself inside ``mask``. ``sharpen`` > 0 adds unsharp masking to the
    pasted copy (< 0 blurs it), as the source/target mismatch of a real blending pipeline.

    ``source`` (default: ``image``) is the same person at another moment, for an expression
    reenactment: the pasted copy then also has another mouth / eyes."""
    _check_image(image, "self_blend")
    _check_mask(mask, image, "self_blend")
    source = image if source is None else source
    _check_image(source, "self_blend source")
    rows, cols = np.nonzero(mask > 0.5)
    center = (float(rows.mean()), float(cols.mean())) if len(rows) else (image.shape[0] / 2, image.shape[1] / 2)
    source = shift_and_scale(source, scale, shift, center)
    if sharpen > 0:
        source = source + sharpen * (source - blur(source, 1.0))
    elif sharpen < 0:
        source = blur(source, -sharpen)
    source = np.clip(source * np.asarray(colour_gain, dtype=np.float32), 0.0, 1.0)
    return _blend(image, source, feathered_mask(mask, feather_sigma))


def upsampling_pattern(period: int, rng: np.random.Generator, checkerboard_weight: float = 0.6) -> np.ndarray:
    """A zero-mean (period, period) tile with unit standard deviation: the fixed imprint of a
    transposed-convolution upsampler (part pure checkerboard, part random per generator)."""
    if period < 2:
        raise ValueError(f"upsampling_pattern: period must be >= 2, got {period}")
    index = np.add.outer(np.arange(period), np.arange(period))
    checkerboard = np.where(index % 2 == 0, 1.0, -1.0)
    tile = checkerboard_weight * checkerboard + (1 - checkerboard_weight) * rng.normal(0.0, 1.0, (period, period))
    tile = tile - tile.mean()
    return (tile / max(float(tile.std()), 1e-6)).astype(np.float32)


def gan_upsampling(
    image: np.ndarray, mask: np.ndarray, period: int, strength: float, pattern: np.ndarray, feather_sigma: float = 1.0
) -> np.ndarray:
    """Re-synthesise the masked region like a GAN decoder: average-pool by ``period``, upsample
    (half nearest, half bilinear), and modulate by the periodic ``pattern`` with relative
    amplitude ``strength``. Leaves spectral peaks at multiples of (image size / period)."""
    _check_image(image, "gan_upsampling")
    _check_mask(mask, image, "gan_upsampling")
    if pattern.shape != (period, period):
        raise ValueError(f"gan_upsampling: pattern shape {pattern.shape} does not match period {period}")
    height, width = image.shape[:2]
    pad_h, pad_w = (-height) % period, (-width) % period
    padded = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    low = padded.reshape(padded.shape[0] // period, period, padded.shape[1] // period, period, 3).mean(axis=(1, 3))
    nearest = np.repeat(np.repeat(low, period, axis=0), period, axis=1)[:height, :width]
    low_image = Image.fromarray(np.round(np.clip(low, 0, 1) * 255).astype(np.uint8), "RGB")
    bilinear = np.asarray(low_image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    upsampled = 0.5 * nearest + 0.5 * bilinear
    tiled = np.tile(pattern, (height // period + 1, width // period + 1))[:height, :width]
    textured = np.clip(upsampled * (1 + strength * tiled[..., None]), 0.0, 1.0)
    return _blend(image, textured, feathered_mask(mask, feather_sigma))


def diffusion_smoothing(
    image: np.ndarray,
    mask: np.ndarray,
    sigma: float,
    edge_threshold: float,
    saturation_boost: float = 0.0,
    feather_sigma: float = 1.0,
) -> np.ndarray:
    """Over-smoothed, noise-free texture in the masked region, as diffusion models produce.

    Detail coring: the image is split into a blurred base (``sigma``) and a detail layer; detail
    weaker than ``edge_threshold`` (skin texture, sensor noise) is dropped, strong edges (eyes,
    mouth, outline) are kept. ``saturation_boost`` adds the slightly glossy colour look.
    """
    _check_image(image, "diffusion_smoothing")
    _check_mask(mask, image, "diffusion_smoothing")
    base = blur(image, sigma)
    detail = image - base
    magnitude = np.abs(detail).max(axis=2, keepdims=True)
    keep = np.clip((magnitude - edge_threshold) / max(edge_threshold, 1e-6), 0.0, 1.0)
    smoothed = base + detail * keep
    if saturation_boost:
        grey = smoothed.mean(axis=2, keepdims=True)
        smoothed = grey + (smoothed - grey) * (1 + saturation_boost)
    return _blend(image, np.clip(smoothed, 0.0, 1.0), feathered_mask(mask, feather_sigma, shrink=0.3))


def halftone_screen(shape: tuple[int, int], period: float, angle: float) -> np.ndarray:
    """A dot-screen threshold map in [0, 1] with dots every ``period`` pixels at ``angle``."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    u = cols * math.cos(angle) + rows * math.sin(angle)
    v = -cols * math.sin(angle) + rows * math.cos(angle)
    return (0.5 + 0.25 * (np.cos(2 * math.pi * u / period) + np.cos(2 * math.pi * v / period))).astype(np.float32)


def print_attack(
    image: np.ndarray,
    dot_period: float,
    screen_angle: float,
    halftone_mix: float,
    saturation: float,
    contrast: float,
    paper_tint: tuple[float, float, float],
) -> np.ndarray:
    """A printed photo held up to the camera: gamut loss (``saturation`` < 1, ``contrast`` < 1
    around mid-grey, lifted blacks) on tinted paper, and ink dots from a halftone screen mixed
    in with weight ``halftone_mix`` (the printer's resolution is above the camera's, so the
    dots appear partly resolved)."""
    _check_image(image, "print_attack")
    grey = image.mean(axis=2, keepdims=True)
    faded = grey + (image - grey) * saturation
    faded = 0.5 + (faded - 0.5) * contrast
    faded = np.clip(faded * np.asarray(paper_tint, dtype=np.float32), 0.0, 1.0)
    screen = halftone_screen(image.shape[:2], dot_period, screen_angle)[..., None]
    # Ink coverage is 1 - intensity; a soft threshold against the screen makes the dots.
    ink = 1 / (1 + np.exp(-((1 - faded) - screen) / 0.08))
    dotted = 1 - ink
    return np.clip((1 - halftone_mix) * faded + halftone_mix * dotted, 0.0, 1.0).astype(np.float32)


def moire_pattern(shape: tuple[int, int], frequency: float, angle: float, beat: float) -> np.ndarray:
    """Product of two gratings of nearby frequencies/angles (screen pixel grid x camera sensor):
    zero-mean, contains the low difference frequency that shows as moire bands."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)

    def grating(freq: float, theta: float) -> np.ndarray:
        return np.cos(2 * math.pi * freq * (cols * math.cos(theta) + rows * math.sin(theta)))

    product = grating(frequency, angle) * grating(frequency + beat, angle + 0.08)
    return (product - product.mean()).astype(np.float32)


def replay_attack(
    image: np.ndarray,
    moire_amplitude: float,
    moire_frequency: float,
    moire_angle: float,
    moire_beat: float,
    glare_center: tuple[float, float],
    glare_radius: float,
    glare_strength: float,
    screen_gain: tuple[float, float, float],
) -> np.ndarray:
    """A face replayed on a screen and re-captured: per-channel screen colour (``screen_gain``,
    usually bluish), multiplicative moire bands, and a soft glare blob at ``glare_center``
    (row, col fractions) of ``glare_radius`` (fraction of size) adding ``glare_strength``."""
    _check_image(image, "replay_attack")
    height, width = image.shape[:2]
    screen = image * np.asarray(screen_gain, dtype=np.float32)
    moire = moire_pattern((height, width), moire_frequency, moire_angle, moire_beat)
    screen = screen * (1 + moire_amplitude * moire[..., None])
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    distance2 = ((rows / height - glare_center[0]) ** 2 + (cols / width - glare_center[1]) ** 2) / glare_radius**2
    glare = glare_strength * np.exp(-distance2)[..., None]
    return np.clip(screen + glare * (1 - screen), 0.0, 1.0).astype(np.float32)


def adversarial_pattern(shape: tuple[int, int], rng: np.random.Generator, components: int = 6) -> np.ndarray:
    """A structured sign pattern in {-1, +1}: the sign of a few random mid/high-frequency
    sinusoids plus fine noise, the look of an iterative sign-gradient attack."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    field = 0.4 * rng.normal(0.0, 1.0, shape)
    for _ in range(components):
        frequency = rng.uniform(0.12, 0.45)
        theta = rng.uniform(0, math.pi)
        phase = rng.uniform(0, 2 * math.pi)
        field = field + np.cos(2 * math.pi * frequency * (cols * math.cos(theta) + rows * math.sin(theta)) + phase)
    return np.where(field >= 0, 1.0, -1.0).astype(np.float32)


def adversarial_noise(image: np.ndarray, epsilon: float, pattern: np.ndarray) -> np.ndarray:
    """Add ``epsilon`` times a {-1, +1} ``pattern`` (H, W) or (H, W, 3); L-infinity norm <= epsilon."""
    _check_image(image, "adversarial_noise")
    if pattern.shape[:2] != image.shape[:2]:
        raise ValueError(f"adversarial_noise: pattern shape {pattern.shape} does not match image {image.shape}")
    perturbation = epsilon * (pattern if pattern.ndim == 3 else pattern[..., None])
    return np.clip(image + perturbation, 0.0, 1.0).astype(np.float32)


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode to JPEG at ``quality`` and decode again (in memory)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"jpeg_roundtrip: quality {quality} is outside [1, 100]")
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image), "RGB").save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32) / 255.0


def capture(
    image: np.ndarray,
    colour_cast: tuple[float, float, float],
    blur_sigma: float,
    noise: np.ndarray | None,
    jpeg_quality: int | None,
) -> np.ndarray:
    """The camera and codec of a domain, applied to every image (real or fake) after the
    forgery: per-channel colour cast, optical blur, additive sensor ``noise`` (H, W, 3), JPEG."""
    _check_image(image, "capture")
    out = np.clip(image * np.asarray(colour_cast, dtype=np.float32), 0.0, 1.0)
    out = blur(out, blur_sigma)
    if noise is not None:
        out = np.clip(out + noise, 0.0, 1.0)
    if jpeg_quality is not None:
        out = jpeg_roundtrip(out, jpeg_quality)
    return out.astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] float image to uint8 with rounding (the format images are stored in)."""
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
