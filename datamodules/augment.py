"""Named training augmentation sets (config group ``augment``), built on torchvision.transforms.v2.

A set is a mapping ``op name -> probability`` or ``op name -> {p: ..., parameters}``; the ops run in
the mapping's order (``conf/augment/*.yaml``; docs/AUGMENTATION.md lists the sets, their sources
and where a paper is silent). Every op works on the resized uint8 CHW image tensor, before the
conversion to float: the pixel work runs on a quarter of the bytes, and JPEG needs uint8 anyway.
The geometric, blur, lookup-table and JPEG ops call OpenCV on the uint8 pixels (an HWC view of the
tensor, no copy when the tensor is channels-last, as decoded and resized ones are): on one thread
they measured 5-15x faster than torchvision's float paths (docs/BENCHMARKS.md, "Loader
throughput"); the composition, flip, colour jitter and greyscale are torchvision v2 transforms.

Randomness comes only from torch's RNG (``torch.rand``/``randint``/``randn`` and torchvision's
transforms, which use it too), never from Python's ``random`` or NumPy: in DataLoader workers that
RNG is seeded per worker from the loader's base seed, in the main process it follows
``seed_everything``, so a run's augmentations are the same for the same seed (and a resumed run
that restores the RNG state continues the same stream).

The ops and what they reproduce (Albumentations names of the public recipes in brackets):

- ``hflip`` (HorizontalFlip): mirror left-right.
- ``rotate`` (Rotate): angle uniform in +-``degrees``, bilinear; ``border: reflect`` (Albumentations'
  default, reflect-101) or ``constant`` (black).
- ``shift_scale_rotate`` (ShiftScaleRotate): shift +-``shift`` of the side, scale 1 +- ``scale``,
  angle +-``degrees``, black border.
- ``pad_crop`` (PadIfNeeded + RandomCrop; torchvision's RandomCrop with ``padding``): pad ``padding``
  pixels on each side (``border: reflect`` or ``constant``) and cut the original size back out at a
  random offset: a whole-pixel shift of up to +-``padding``, no resampling (nothing is blurred).
- ``gaussian_blur`` (GaussianBlur): odd kernel uniform in ``kernel`` = [min, max]; sigma from the
  kernel as OpenCV does (0.3 * ((k - 1) * 0.5 - 1) + 0.8).
- ``gauss_noise`` (GaussNoise): per pixel and channel, variance uniform in ``var`` (pixel units).
- ``brightness_contrast`` (RandomBrightnessContrast): ``x * (1 + c) + b * 255``, c uniform in
  +-``contrast``, b in +-``brightness``.
- ``hue_saturation`` (HueSaturationValue): hue shifted by +-``hue`` (fraction of the colour circle),
  saturation and value scaled by 1 +- ``saturation`` / ``value``.
- ``fancy_pca`` (FancyPCA): AlexNet colour augmentation: the image's own RGB principal components
  scaled by N(0, ``alpha``) are added.
- ``color_jitter``: torchvision's ColorJitter (``brightness``, ``contrast``, ``saturation``, ``hue``).
- ``to_gray`` (ToGray): luminance in all three channels.
- ``jpeg`` (ImageCompression): JPEG round trip at a quality uniform in ``quality`` = [min, max].
- ``one_of`` (OneOf): with probability ``p`` one of the ops under ``ops`` (chosen uniformly) runs.

A bare number is the probability with the op's default parameters (``hflip: 0.5``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import cv2
import numpy as np
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from common.choices import check_choice

Op = Callable[[torch.Tensor], torch.Tensor]

# One image is ~0.2 MB: OpenCV's own thread pool only adds hand-offs, and DataLoader workers already
# run one per core (the same reasoning as frame_dataset.per_sample_threads for torch).
cv2.setNumThreads(1)


class AugmentConfigError(ValueError):
    """An augmentation set names an unknown op or parameter, or a value out of range."""


def _uniform(low: float, high: float) -> float:
    return float(low + (high - low) * torch.rand(()).item())


class RandomOp(torch.nn.Module):
    """Apply ``apply(image)`` with probability ``p`` (drawn from torch's RNG)."""

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise AugmentConfigError(f"augment: probability p must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if self.p < 1.0 and torch.rand(()).item() >= self.p:
            return image
        return self.apply(image)

    def apply(self, image: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Wrapped(RandomOp):
    """A deterministic-given-params torchvision transform applied with probability ``p``."""

    def __init__(self, p: float, transform: Op):
        super().__init__(p)
        self.transform = transform

    def apply(self, image: torch.Tensor) -> torch.Tensor:
        return self.transform(image)


def _as_uint8(values: torch.Tensor) -> torch.Tensor:
    return values.round_().clamp_(0, 255).to(torch.uint8)


def _hwc(image: torch.Tensor) -> np.ndarray:
    """The uint8 CHW tensor as a contiguous HWC array for OpenCV (a view when channels-last)."""
    if image.dtype != torch.uint8:
        raise TypeError(f"augmentation ops take uint8 images, got {image.dtype}")
    return np.ascontiguousarray(image.permute(1, 2, 0).numpy())


def _chw(array: np.ndarray) -> torch.Tensor:
    if array.ndim == 2:  # OpenCV drops a channel axis of size 1
        array = array[:, :, None]
    return torch.from_numpy(array).permute(2, 0, 1)


def _warp(image: torch.Tensor, angle: float, scale: float, shift: tuple[float, float], border: int) -> torch.Tensor:
    """Rotate by ``angle`` degrees and scale about the centre, then shift (fractions of the side)."""
    height, width = image.shape[-2:]
    matrix = cv2.getRotationMatrix2D((width / 2 - 0.5, height / 2 - 0.5), angle, scale)
    matrix[0, 2] += shift[0] * width
    matrix[1, 2] += shift[1] * height
    warped = cv2.warpAffine(_hwc(image), matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=border)
    return _chw(warped)


BORDERS = {"reflect": cv2.BORDER_REFLECT_101, "constant": cv2.BORDER_CONSTANT}


class Rotate(RandomOp):
    def __init__(self, p: float, degrees: float = 10.0, border: str = "reflect"):
        super().__init__(p)
        check_choice("augment.rotate: border", border, BORDERS, error=AugmentConfigError)
        self.degrees, self.border = float(degrees), BORDERS[border]

    def apply(self, image: torch.Tensor) -> torch.Tensor:
        return _warp(image, _uniform(-self.degrees, self.degrees), 1.0, (0.0, 0.0), self.border)


class ShiftScaleRotate(RandomOp):
    def __init__(self, p: float, shift: float = 0.1, scale: float = 0.2, degrees: float = 10.0):
        super().__init__(p)
        self.shift, self.scale, self.degrees = float(shift), float(scale), float(degrees)

    def apply(self, image: torch.Tensor) -> torch.Tensor:
        angle = _uniform(-self.degrees, self.degrees)
        scale = 1.0 + _uniform(-self.scale, self.scale)
        shift = (_uniform(-self.shift, self.shift), _uniform(-self.shift, self.shift))
        return _warp(image, angle, scale, shift, cv2.BORDER_CONSTANT)


class PadCrop(RandomOp):
    def __init__(self, p: float, padding: int = 4, border: str = "reflect"):
        super().__init__(p)
        check_choice("augment.pad_crop: border", border, BORDERS, error=AugmentConfigError)
        if int(padding) != padding or padding < 1:
            raise AugmentConfigError(f"augment.pad_crop: padding must be a whole number of pixels >= 1, got {padding}")
        self.padding, self.border = int(padding), BORDERS[border]

    def apply(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        pad = self.padding
        padded = cv2.copyMakeBorder(_hwc(image), pad, pad, pad, pad, self.border)
        top, left = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,)))
        return _chw(np.ascontiguousarray(padded[top : top + height, left : left + width]))


class GaussianBlur(RandomOp):
    def __init__(self, p: float, kernel: tuple[int, int] | list[int] = (3, 7)):
        super().__init__(p)
        low, high = int(kernel[0]), int(kernel[1])
        if low < 3 or high < low or low % 2 == 0 or high % 2 == 0:
            raise AugmentConfigError(f"augment.gaussian_blur: kernel must be odd [min, max] >= 3, got {list(kernel)}")
        self.sizes = list(range(low, high + 1, 2))

    def apply(self, image: torch.Tensor) -> torch.Tensor:
        size = self.sizes[int(torch.randint(len(self.sizes), ()).item())]
        return _chw(cv2.GaussianBlur(_hwc(image), (size, size), 0))  # sigma 0: OpenCV's sigma for the kernel


class GaussNoise(RandomOp):
    def __init__(self, p: float, var: tuple[float, float] | list[float] = (10.0, 50.0)):
        super().__init__(p)
        self.var = (float(var[0]), float(var[1]))

    def apply(self, image: torch.Tensor) -> torch.Tensor:
        std = math.sqrt(_uniform(*self.var))
        return _as_uint8(image.float() + torch.randn(image.shape) * std)


class BrightnessContrast(RandomOp):
    def __init__(self, p: float, brightness: float = 0.1, contrast: float = 0.1):
        super().__init__(p)
        self.brightness, self.contrast = float(brightness), float(contrast)

    def apply(self, image: torch.Tensor) -> torch.Tensor:
        alpha = 1.0 + _uniform(-self.contrast, self.contrast)
        beta = 255.0 * _uniform(-self.brightness, self.brightness)
        # A 256-entry lookup table, as Albumentations does for uint8: one lookup per pixel.
        table = np.clip(np.rint(np.arange(256, dtype=np.float32) * alpha + beta), 0, 255).astype(np.uint8)
        return _chw(cv2.LUT(_hwc(image), table))


class Jpeg(RandomOp):
    def __init__(self, p: float, quality: tuple[int, int] | list[int] = (40, 100)):
        super().__init__(p)
        low, high = int(quality[0]), int(quality[1])
        if not 1 <= low <= high <= 100:
            raise AugmentConfigError(f"augment.jpeg: quality must be [min, max] within 1..100, got {list(quality)}")
        self.quality = (low, high)

    def apply(self, image: torch.Tensor) -> torch.Tensor:
        quality = int(torch.randint(self.quality[0], self.quality[1] + 1, ()).item())
        # OpenCV encodes BGR; the channel order only matters for the colour transform, so swap in and out.
        bgr = cv2.cvtColor(_hwc(image), cv2.COLOR_RGB2BGR)
        ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError(f"augment.jpeg: OpenCV could not encode an image of shape {tuple(image.shape)}")
        return _chw(cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))


class HueSaturation(RandomOp):
    def __init__(self, p: float, hue: float = 20 / 360, saturation: float = 0.3, value: float = 0.2):
        super().__init__(p)
        self.hue, self.saturation, self.value = float(hue), float(saturation), float(value)

    def apply(self, image: torch.Tensor) -> torch.Tensor:
        image = F.adjust_hue(image, _uniform(-self.hue, self.hue))
        image = F.adjust_saturation(image, 1.0 + _uniform(-self.saturation, self.saturation))
        return F.adjust_brightness(image, 1.0 + _uniform(-self.value, self.value))


class FancyPCA(RandomOp):
    def __init__(self, p: float, alpha: float = 0.1):
        super().__init__(p)
        self.alpha = float(alpha)

    def apply(self, image: torch.Tensor) -> torch.Tensor:
        pixels = image.reshape(3, -1).T.float() / 255.0
        centred = pixels - pixels.mean(0)
        eigenvalues, eigenvectors = torch.linalg.eigh(centred.T @ centred / max(1, len(centred) - 1))
        shift = eigenvectors @ (torch.randn(3) * self.alpha * eigenvalues.clamp(min=0))
        return _as_uint8(image.float() + 255.0 * shift.view(3, 1, 1))


class OneOf(RandomOp):
    def __init__(self, p: float, ops: list[Op]):
        super().__init__(p)
        if not ops:
            raise AugmentConfigError("augment.one_of: 'ops' must name at least one op")
        self.ops = torch.nn.ModuleList(op if isinstance(op, torch.nn.Module) else Wrapped(1.0, op) for op in ops)

    def apply(self, image: torch.Tensor) -> torch.Tensor:
        return self.ops[int(torch.randint(len(self.ops), ()).item())](image)


def _color_jitter(
    p: float, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0, hue: float = 0.0
) -> RandomOp:
    return Wrapped(p, v2.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue))


# op name -> builder(p, **parameters); the parameters and their defaults are the builder's.
OPS: dict[str, Callable[..., RandomOp]] = {
    "hflip": lambda p: Wrapped(p, v2.RandomHorizontalFlip(p=1.0)),
    "rotate": Rotate,
    "shift_scale_rotate": ShiftScaleRotate,
    "pad_crop": PadCrop,
    "gaussian_blur": GaussianBlur,
    "gauss_noise": GaussNoise,
    "brightness_contrast": BrightnessContrast,
    "hue_saturation": HueSaturation,
    "fancy_pca": FancyPCA,
    "color_jitter": _color_jitter,
    "to_gray": lambda p: Wrapped(p, v2.Grayscale(num_output_channels=3)),
    "jpeg": Jpeg,
}
METADATA_KEYS = ("name",)  # descriptive keys of a set, not ops


def _build_op(name: str, value: Any) -> RandomOp | None:
    if name == "one_of":
        if not isinstance(value, Mapping) or not isinstance(value.get("ops"), Mapping):
            raise AugmentConfigError("augment.one_of must be {p: ..., ops: {op name: parameters, ...}}")
        inner = [_build_op(n, {**_params(n, v), "p": 1.0}) for n, v in value["ops"].items()]
        return OneOf(float(value.get("p", 1.0)), [op for op in inner if op is not None])
    if name not in OPS:
        raise AugmentConfigError(
            f"augment: unknown op {name!r}; known ops: {sorted([*OPS, 'one_of'])} (docs/AUGMENTATION.md)"
        )
    params = _params(name, value)
    p = float(params.pop("p", 1.0))
    if p == 0.0:
        return None
    try:
        return OPS[name](p, **params)
    except TypeError as error:  # a parameter the op does not take
        raise AugmentConfigError(f"augment.{name}: {error} (given {sorted(params)}; docs/AUGMENTATION.md)") from None


def _params(name: str, value: Any) -> dict[str, Any]:
    if value is None or value is False:
        return {"p": 0.0}
    if value is True:
        return {"p": 1.0}
    if isinstance(value, int | float):
        return {"p": float(value)}
    if isinstance(value, Mapping):
        return {str(k): (list(v) if isinstance(v, list | tuple) else v) for k, v in value.items()}
    raise AugmentConfigError(f"augment.{name}: expected a probability or a mapping of parameters, got {value!r}")


def build_augment(spec: Mapping | None) -> list[RandomOp]:
    """The ops of an augmentation set, in the set's order (ops with p = 0 are left out)."""
    ops = []
    for name, value in dict(spec or {}).items():
        if name in METADATA_KEYS:
            continue
        op = _build_op(str(name), value)
        if op is not None:
            ops.append(op)
    return ops
