"""The embedded synthetic multi-domain face dataset: every protocol runs on a fresh machine.

Procedurally drawn faces (:mod:`datamodules.synthetic_faces`) in short videos, manipulated by
forgery and attack families with distinct traces (:mod:`datamodules.synthetic_artifacts`), and
grouped into domains named after the real datasets. Domains differ in capture style (palette,
colour cast, drawing resolution, blur, noise, JPEG quality) and in their mix of families, with
some families shared, so cross-domain transfer is possible but not free.

Generated deterministically from a seed on first use and cached under
``root/<cache key>/`` (key = generator version + seed + spec hash). Generation writes into a
temporary directory that is renamed into place, under an exclusive lock, so DDP ranks calling
:func:`ensure_synthetic` together generate once and all read the same files.

It is a test bed for code, losses and label handling, never a substitute for real data; see
docs/SYNTHETIC.md for the families, domains, types and sizes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from common.choices import check_choice
from common.cpus import cpu_budget
from datamodules import synthetic_artifacts as art
from datamodules.records import SPLITS, validate_records
from datamodules.synthetic_faces import (
    RGB,
    FaceIdentity,
    FramePose,
    RenderedFace,
    SceneSetup,
    move_pose,
    render_face,
    sample_identity,
    sample_pose,
    sample_scene,
)

try:  # POSIX; elsewhere the atomic rename alone decides who wins (see exclusive_lock)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

# Bump whenever drawing, artifacts or the domain table change: old caches are then ignored.
GENERATOR_VERSION = 5
VIDEOS_PER_TASK = 4  # videos a worker process draws per task (the progress bar moves per task)
INDEX_NAME = "index.csv"
SPEC_NAME = "spec.json"
# Pixel sizes (feathering, blur) below are tuned at this image size and scale with it.
REFERENCE_SIZE = 64

FAMILIES: tuple[str, ...] = (
    "face_swap",
    "self_blend",
    "gan_upsampling",
    "diffusion_smoothing",
    "print",
    "replay",
    "adversarial",
)


@dataclass(frozen=True)
class ForgeryRecipe:
    """How one fine-grained type is made: an artifact family plus its variant settings.

    ``region`` is a mask of :data:`datamodules.synthetic_faces.MASK_NAMES` or ``"all"``.
    Amplitudes are multiplied by ``SyntheticSpec.artifact_strength``.
    """

    family: str
    region: str = "inner"
    feather: float = 1.0  # blend-mask feathering in pixels at REFERENCE_SIZE
    colour_mismatch: float = 0.08  # per-channel gain spread of the pasted face
    source_blur: float = 0.0  # face_swap / self_blend: smoother synthesised face (autoencoder, re-rendering)
    swap_identity: bool = False  # gan_upsampling: the synthesised region shows another person
    smooth_source: bool = False  # face_swap: the donor face is diffusion-smoothed first
    reenact: bool = False  # self_blend: the pasted copy has another expression (mouth, eyes)
    period: int = 2  # gan_upsampling: upsampling factor
    amplitude: float = 0.1  # gan pattern / halftone mix / moire depth / adversarial epsilon
    smoothing: float = 1.4  # diffusion_smoothing: blur sigma of the base layer

    def __post_init__(self):
        check_choice("ForgeryRecipe: family", self.family, FAMILIES)
        if self.swap_identity and self.family != "gan_upsampling":
            raise ValueError(f"ForgeryRecipe: swap_identity is a gan_upsampling option, not one of {self.family!r}")

    @property
    def needs_donor(self) -> bool:
        """Whether the fake shows another person's face (a donor video is drawn for it)."""
        return self.family == "face_swap" or self.swap_identity


@dataclass(frozen=True)
class CaptureStyle:
    """How a domain's videos were shot and stored (applied to real and fake alike)."""

    palette: tuple[RGB, ...]
    colour_cast: RGB = (1.0, 1.0, 1.0)
    render_scale: float = 1.0  # < 1: the scene is drawn at lower resolution and upsampled
    blur: float = 0.0  # optical blur sigma in pixels at REFERENCE_SIZE
    noise: tuple[float, float] = (0.004, 0.01)  # sensor noise std range
    jpeg_quality: tuple[int, int] | None = (85, 95)
    face_width: tuple[float, float] = (0.4, 0.5)  # fraction of image width
    roll: float = 8.0  # max first-frame roll in degrees
    light: tuple[float, float] = (0.05, 0.25)  # lighting gradient strength range


@dataclass(frozen=True)
class DomainDesign:
    """One synthetic domain: its genuine type, capture style and fake types with recipes.

    A fake type with several recipes alternates between them over its videos (video n uses
    recipe n mod len), e.g. UniAttackData ``physical`` = print and replay.
    """

    genuine_type: str
    style: CaptureStyle
    fake_types: dict[str, tuple[ForgeryRecipe, ...]]


SWAP_DEEPFAKES = ForgeryRecipe("face_swap", feather=1.0, colour_mismatch=0.1, source_blur=0.8)
SWAP_GRAPHICS = ForgeryRecipe("face_swap", feather=0.4, colour_mismatch=0.21, source_blur=0.5)
SWAP_REFINED = ForgeryRecipe("face_swap", feather=1.6, colour_mismatch=0.08, source_blur=0.6)
REENACT_LOWER = ForgeryRecipe(
    "self_blend", region="lower", feather=1.0, colour_mismatch=0.2, source_blur=0.7, reenact=True
)
SELF_BLEND_INNER = ForgeryRecipe("self_blend", region="inner", feather=0.8, colour_mismatch=0.26)
GAN_MOUTH = ForgeryRecipe("gan_upsampling", region="mouth", period=2, amplitude=0.2)
GAN_SWAP = ForgeryRecipe("gan_upsampling", region="inner", period=2, amplitude=0.1, swap_identity=True)
GAN_SWAP_COARSE = ForgeryRecipe("gan_upsampling", region="inner", period=4, amplitude=0.13, swap_identity=True)
PRINT = ForgeryRecipe("print", region="all", amplitude=0.2)
REPLAY = ForgeryRecipe("replay", region="all", amplitude=0.16)

DOMAINS: dict[str, DomainDesign] = {
    "ffpp": DomainDesign(
        "real",
        CaptureStyle(
            palette=((0.2, 0.3, 0.5), (0.55, 0.58, 0.62), (0.25, 0.25, 0.3), (0.6, 0.5, 0.4)),
            blur=0.3,
            noise=(0.004, 0.01),
            jpeg_quality=(80, 92),
            face_width=(0.38, 0.46),
        ),
        {
            "Deepfakes": (SWAP_DEEPFAKES,),
            "Face2Face": (REENACT_LOWER,),
            "FaceSwap": (SWAP_GRAPHICS,),
            "NeuralTextures": (GAN_MOUTH,),
            "FaceShifter": (GAN_SWAP_COARSE,),
        },
    ),
    "celebdf": DomainDesign(
        "real",
        CaptureStyle(
            palette=((0.5, 0.35, 0.3), (0.75, 0.65, 0.5), (0.3, 0.2, 0.2), (0.6, 0.6, 0.55)),
            colour_cast=(1.06, 1.0, 0.92),
            blur=0.2,
            noise=(0.003, 0.008),
            jpeg_quality=(88, 96),
            face_width=(0.42, 0.52),
        ),
        {"Celeb-synthesis": (SWAP_REFINED,)},
    ),
    "dfdc": DomainDesign(
        "real",
        CaptureStyle(
            palette=((0.3, 0.35, 0.3), (0.5, 0.5, 0.55), (0.7, 0.65, 0.55), (0.2, 0.2, 0.25)),
            colour_cast=(0.95, 1.0, 1.06),
            render_scale=0.8,
            blur=0.35,
            noise=(0.008, 0.016),
            jpeg_quality=(72, 88),
            face_width=(0.34, 0.46),
            light=(0.1, 0.4),
        ),
        {
            "DFAE": (ForgeryRecipe("face_swap", feather=1.2, colour_mismatch=0.12, source_blur=0.8),),
            "NTH": (
                ForgeryRecipe(
                    "self_blend", region="inner", feather=1.0, colour_mismatch=0.2, source_blur=0.9, reenact=True
                ),
            ),
            "FSGAN": (GAN_SWAP,),
        },
    ),
    "diff": DomainDesign(
        "real",
        CaptureStyle(
            palette=((0.85, 0.82, 0.78), (0.6, 0.7, 0.8), (0.8, 0.7, 0.75), (0.5, 0.55, 0.5)),
            noise=(0.002, 0.005),
            jpeg_quality=None,
            face_width=(0.46, 0.56),
        ),
        {
            "T2I": (ForgeryRecipe("diffusion_smoothing", region="all", smoothing=2.1, amplitude=0.2),),
            "I2I": (ForgeryRecipe("diffusion_smoothing", region="face", smoothing=1.8, amplitude=0.065),),
            "FS": (ForgeryRecipe("face_swap", feather=1.5, colour_mismatch=0.05, smooth_source=True),),
            "FE": (
                ForgeryRecipe("diffusion_smoothing", region="mouth", smoothing=1.8),
                ForgeryRecipe("diffusion_smoothing", region="eyes", smoothing=1.8),
            ),
        },
    ),
    "wilddeepfake": DomainDesign(
        "real",
        CaptureStyle(
            palette=((0.3, 0.2, 0.35), (0.55, 0.45, 0.3), (0.15, 0.15, 0.2), (0.4, 0.55, 0.6)),
            colour_cast=(1.04, 0.97, 1.02),
            render_scale=0.65,
            blur=0.55,
            noise=(0.01, 0.02),
            jpeg_quality=(50, 70),
            face_width=(0.34, 0.52),
            roll=12.0,
            light=(0.1, 0.45),
        ),
        {
            "wild-swap": (ForgeryRecipe("face_swap", feather=1.2, colour_mismatch=0.12, source_blur=0.6),),
            "wild-gan": (GAN_SWAP_COARSE,),
        },
    ),
    "uniattack": DomainDesign(
        "live",
        CaptureStyle(
            palette=((0.62, 0.63, 0.62), (0.42, 0.44, 0.47), (0.75, 0.74, 0.7)),
            colour_cast=(0.97, 1.0, 1.04),
            render_scale=0.9,
            noise=(0.006, 0.012),
            jpeg_quality=(85, 92),
            face_width=(0.46, 0.56),
            roll=5.0,
        ),
        {
            "physical": (PRINT, REPLAY),
            "adversarial": (ForgeryRecipe("adversarial", region="all", amplitude=0.03),),
            "digital": (SWAP_DEEPFAKES, GAN_SWAP, SELF_BLEND_INNER),
        },
    ),
    "jfsfdb": DomainDesign(
        "real",
        CaptureStyle(
            palette=((0.45, 0.5, 0.4), (0.3, 0.35, 0.3), (0.65, 0.6, 0.6), (0.35, 0.3, 0.45)),
            colour_cast=(0.97, 1.04, 0.97),
            render_scale=0.85,
            blur=0.3,
            noise=(0.008, 0.016),
            jpeg_quality=(75, 90),
            face_width=(0.4, 0.52),
        ),
        {
            "print": (PRINT,),
            "replay": (REPLAY,),
            "deepfake": (SWAP_DEEPFAKES,),
            "reenactment": (REENACT_LOWER,),
        },
    ),
}
ALL_DOMAINS: tuple[str, ...] = tuple(DOMAINS)


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate.

    ``videos`` = (train, val, test) videos per fake type; a domain's genuine type gets as many
    videos as all its fake types together, so classes are balanced in every domain and split.
    Each domain/split draws its people from its own pool of ``max(3, 2 * videos)`` identities
    (pools never overlap across splits). ``artifact_strength`` scales every artifact amplitude.
    """

    image_size: int = 64
    frames_per_video: int = 4
    videos: tuple[int, int, int] = (16, 2, 6)
    domains: tuple[str, ...] = ALL_DOMAINS
    artifact_strength: float = 1.0

    def __post_init__(self):
        unknown = sorted(set(self.domains) - set(DOMAINS))
        if unknown:
            raise ValueError(f"SyntheticSpec: unknown domain(s) {unknown}; known: {list(ALL_DOMAINS)}")
        if not self.domains:
            raise ValueError("SyntheticSpec: domains is empty; name at least one of " f"{list(ALL_DOMAINS)}")
        if self.image_size < 32:
            raise ValueError(f"SyntheticSpec: image_size {self.image_size} is too small to draw faces; expected >= 32")
        if self.frames_per_video < 1:
            raise ValueError(f"SyntheticSpec: frames_per_video must be >= 1, got {self.frames_per_video}")
        if len(self.videos) != 3 or min(self.videos) < 1:
            raise ValueError(f"SyntheticSpec: videos must be three positive counts (train, val, test), got {self.videos}")
        if self.artifact_strength <= 0:
            raise ValueError(f"SyntheticSpec: artifact_strength must be > 0, got {self.artifact_strength}")

    def key(self) -> str:
        """Hash of the spec and the generator version (part of the cache directory name)."""
        payload = json.dumps({"version": GENERATOR_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha1(payload.encode()).hexdigest()[:12]


def synthetic_dir(root: Path, seed: int = 0, spec: SyntheticSpec | None = None) -> Path:
    """The cache directory of (seed, spec): record paths are relative to it."""
    spec = spec or SyntheticSpec()
    return Path(root) / f"synthetic-v{GENERATOR_VERSION}-seed{seed}-{spec.key()}"


@dataclass(frozen=True)
class VideoPlan:
    """One video to generate: where it sits in the dataset, who is in it, what it is made from.

    As in FF++, a fake is made from a genuine video of the same domain and split (its
    ``original``): same person, scene and motion, so the two differ only by the artifact.
    """

    domain: str
    type: str
    split: str
    number: int
    identity: str  # the person in the video (the target of a forgery)
    donor: str  # the other person a swap takes the face from ("" if none)
    recipe: ForgeryRecipe | None  # None for genuine videos
    timeline_key: tuple[int, ...]  # seeds scene, motion and capture settings (shared with the original)
    artifact_key: tuple[int, ...]  # seeds the artifact draws and this capture's sensor noise
    genuine_type: str = "real"
    original: int = -1  # number of the genuine video a fake is made from (-1: genuine itself)

    @property
    def video_id(self) -> str:
        return f"synthetic/{self.domain}/{self.type}/{self.split}/{self.number:04d}"

    @property
    def original_video_id(self) -> str:
        if self.original < 0:
            return ""
        return f"synthetic/{self.domain}/{self.genuine_type}/{self.split}/{self.original:04d}"

    @property
    def folder(self) -> str:
        return f"{self.domain}/{self.split}/{self.type}/{self.number:04d}"


def identity_pool_size(videos_per_type: int) -> int:
    """People per domain and split: enough that genuine videos repeat each person ~2-3 times."""
    return max(3, 2 * videos_per_type)


def _person(domain: str, split: str, index: int, pool: int) -> str:
    return f"{domain}/{split}/id{index % pool:03d}"


def plan_videos(seed: int, spec: SyntheticSpec) -> list[VideoPlan]:
    """Every video of the dataset, in generation order (pure; no drawing).

    Per domain and split: ``videos * F`` genuine videos (F = number of fake types), person
    ``n mod pool``; fake type k's video n is made from genuine video ``k * videos + n``, so every
    genuine video has exactly one fake twin and classes are balanced.
    """
    plans = []
    for domain in spec.domains:
        design = DOMAINS[domain]
        domain_index = ALL_DOMAINS.index(domain)
        for split_index, split in enumerate(SPLITS):
            per_type = spec.videos[split_index]
            pool = identity_pool_size(per_type)

            for number in range(per_type * len(design.fake_types)):
                plans.append(
                    VideoPlan(
                        domain=domain,
                        type=design.genuine_type,
                        split=split,
                        number=number,
                        identity=_person(domain, split, number, pool),
                        donor="",
                        recipe=None,
                        timeline_key=(seed, domain_index, split_index, 0, number, 0),
                        artifact_key=(seed, domain_index, split_index, 0, number, 1),
                        genuine_type=design.genuine_type,
                    )
                )
            for type_index, (kind, recipes) in enumerate(design.fake_types.items()):
                for number in range(per_type):
                    original = type_index * per_type + number
                    recipe = recipes[number % len(recipes)]
                    plans.append(
                        VideoPlan(
                            domain=domain,
                            type=kind,
                            split=split,
                            number=number,
                            identity=_person(domain, split, original, pool),
                            donor=_person(domain, split, original + 1 + number % (pool - 1), pool) if recipe.needs_donor else "",
                            recipe=recipe,
                            timeline_key=(seed, domain_index, split_index, 0, original, 0),
                            artifact_key=(seed, domain_index, split_index, type_index + 1, number, 1),
                            genuine_type=design.genuine_type,
                            original=original,
                        )
                    )
    return plans


def _identity(seed: int, name: str) -> FaceIdentity:
    """The person called ``name`` (e.g. ``ffpp/train/id003``): a pure function of seed + name."""
    digest = int.from_bytes(hashlib.sha1(name.encode()).digest()[:8], "little")
    return sample_identity(np.random.default_rng([seed, digest]))


def _skin_matched(donor: FaceIdentity, target: FaceIdentity, weight: float = 0.85) -> FaceIdentity:
    """The donor with skin and lips moved ``weight`` of the way to the target's: swap pipelines
    pick similar-looking pairs and colour-correct, so the leftover mismatch is small."""

    def towards(a: RGB, b: RGB) -> RGB:
        return (a[0] + (b[0] - a[0]) * weight, a[1] + (b[1] - a[1]) * weight, a[2] + (b[2] - a[2]) * weight)

    return replace(donor, skin=towards(donor.skin, target.skin), lip_colour=towards(donor.lip_colour, target.lip_colour))


def _scaled(pixels: float, size: int) -> float:
    return pixels * size / REFERENCE_SIZE


def _colour_gain(rng: np.random.Generator, spread: float) -> tuple[float, float, float]:
    """Per-channel gains for a pasted face: a brightness mismatch of 0.5-1 x ``spread`` (sign
    random; lighting of source and target never match exactly) times a colour shift of up to
    half ``spread`` per channel (skin tone / white balance). Never accidentally zero."""
    brightness = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.0) * spread
    tint = rng.uniform(-spread / 2, spread / 2, 3)
    return tuple(float((1 + brightness) * (1 + t)) for t in tint)  # type: ignore[return-value]


def _region(frame: RenderedFace, region: str) -> np.ndarray:
    if region == "all":
        return np.ones(frame.image.shape[:2], dtype=np.float32)
    return frame.masks[region]


@dataclass(frozen=True)
class ArtifactDraws:
    """The per-video random draws of a recipe (fixed across the frames of the video)."""

    colour_gain: tuple[float, float, float]
    scale: float
    shift: tuple[float, float]
    sharpen: float
    pattern: np.ndarray | None
    screen_angle: float
    dot_period: float
    glare_center: tuple[float, float]
    moire: tuple[float, float, float]  # frequency, angle, beat


def draw_artifact(recipe: ForgeryRecipe, size: int, rng: np.random.Generator) -> ArtifactDraws:
    """Draw a video's artifact parameters once, so every frame of a fake is forged alike."""
    pattern = None
    if recipe.family == "gan_upsampling":
        pattern = art.upsampling_pattern(recipe.period, rng)
    elif recipe.family == "adversarial":
        pattern = art.adversarial_pattern((size, size), rng)
    shift = rng.uniform(0.5, 1.5, 2) * rng.choice([-1.0, 1.0], 2) * size / REFERENCE_SIZE
    return ArtifactDraws(
        colour_gain=_colour_gain(rng, recipe.colour_mismatch),
        scale=float(rng.uniform(1.04, 1.1)),
        shift=(float(shift[0]), float(shift[1])),
        sharpen=float(rng.choice([-1.0, 1.0])),
        pattern=pattern,
        screen_angle=float(rng.uniform(0.2, 0.6)),
        dot_period=float(rng.uniform(3.0, 4.0)),
        glare_center=(float(rng.uniform(0.15, 0.6)), float(rng.uniform(0.2, 0.8))),
        moire=(float(rng.uniform(0.3, 0.4)), float(rng.uniform(0.0, np.pi)), float(rng.uniform(0.03, 0.07))),
    )


def apply_recipe(
    recipe: ForgeryRecipe,
    frame: RenderedFace,
    donor: RenderedFace | None,
    variation: ArtifactDraws,
    strength: float,
) -> np.ndarray:
    """Make one fake frame from a genuine ``frame`` (``donor``: the other face, where needed)."""
    size = frame.image.shape[0]
    image, mask = frame.image, _region(frame, recipe.region)
    feather = _scaled(recipe.feather, size)
    gain = tuple(1 + (g - 1) * strength for g in variation.colour_gain)
    if recipe.needs_donor:
        if donor is None:
            raise ValueError(f"apply_recipe: {recipe.family} shows another person's face and needs a donor frame, got None")
        source = donor.image
        if recipe.smooth_source:
            source = art.diffusion_smoothing(source, donor.masks["face"], sigma=_scaled(1.4, size), edge_threshold=0.06)
        if recipe.family == "face_swap":
            return art.face_swap(image, source, mask, feather, gain, _scaled(recipe.source_blur, size))  # type: ignore[arg-type]
        # A GAN-decoded swap: colour-matched donor face, then the decoder's upsampling imprint.
        image = art.face_swap(image, source, mask, _scaled(1.5, size), (1.0, 1.0, 1.0))
    if recipe.family == "gan_upsampling":
        assert variation.pattern is not None
        return art.gan_upsampling(image, mask, recipe.period, recipe.amplitude * strength, variation.pattern, feather)
    if recipe.family == "self_blend":
        source = None
        if recipe.reenact:
            if donor is None:
                raise ValueError("apply_recipe: a reenactment needs the frame with the other expression, got None")
            source, mask = donor.image, np.maximum(mask, _region(donor, recipe.region))
        # SBI draws sharpen or blur at random; a re-rendering method has a known smoother output.
        sharpen = -_scaled(recipe.source_blur, size) if recipe.source_blur > 0 else variation.sharpen
        return art.self_blend(
            image, mask, variation.scale, variation.shift, gain, feather, sharpen, source  # type: ignore[arg-type]
        )
    if recipe.family == "diffusion_smoothing":
        return art.diffusion_smoothing(
            image,
            mask,
            sigma=_scaled(recipe.smoothing, size) * min(strength, 1.5),
            edge_threshold=0.06,
            saturation_boost=recipe.amplitude * strength,
            feather_sigma=_scaled(1.0, size),
        )
    if recipe.family == "print":
        return art.print_attack(
            image,
            dot_period=variation.dot_period,
            screen_angle=variation.screen_angle,
            halftone_mix=min(recipe.amplitude * strength, 0.9),
            saturation=0.7,
            contrast=0.82,
            paper_tint=(1.0, 0.98, 0.92),
        )
    if recipe.family == "replay":
        frequency, angle, beat = variation.moire
        return art.replay_attack(
            image,
            moire_amplitude=recipe.amplitude * strength,
            moire_frequency=frequency,
            moire_angle=angle,
            moire_beat=beat,
            glare_center=variation.glare_center,
            glare_radius=0.18,
            glare_strength=0.3,
            screen_gain=(0.93, 0.98, 1.08),
        )
    if recipe.family == "adversarial":
        assert variation.pattern is not None
        return art.adversarial_noise(image, recipe.amplitude * strength, variation.pattern)
    raise ValueError(f"apply_recipe: no implementation for family {recipe.family!r}")


def render_video(plan: VideoPlan, seed: int, spec: SyntheticSpec) -> list[np.ndarray]:
    """The frames of one video as uint8 RGB arrays (pure function of plan, seed and spec)."""
    timeline = np.random.default_rng(list(plan.timeline_key))
    own = np.random.default_rng(list(plan.artifact_key))
    style = DOMAINS[plan.domain].style
    size = spec.image_size
    render_size = max(16, int(round(size * style.render_scale)))
    identity = _identity(seed, plan.identity)
    donor_identity = _skin_matched(_identity(seed, plan.donor), identity) if plan.donor else None
    scene: SceneSetup = sample_scene(timeline, style.palette, style.light)
    pose: FramePose = sample_pose(timeline, style.face_width, style.roll)
    cast = tuple(c * (1 + timeline.normal(0, 0.02)) for c in style.colour_cast)
    quality = None if style.jpeg_quality is None else int(timeline.integers(style.jpeg_quality[0], style.jpeg_quality[1] + 1))
    noise_std = float(timeline.uniform(*style.noise))
    variation = draw_artifact(plan.recipe, size, own) if plan.recipe else None
    frames = []
    for index in range(spec.frames_per_video):
        if index:
            pose = move_pose(pose, timeline)
        frame = render_face(identity, scene, pose, size, render_size)
        image = frame.image
        if plan.recipe is not None:
            assert variation is not None
            donor = None
            if donor_identity is not None:
                donor = render_face(donor_identity, scene, pose, size, render_size)
            elif plan.recipe.reenact:
                # Same person, another expression: mouth and eyes of a different moment.
                other = replace(pose, mouth_open=1.0 - pose.mouth_open, eyes_open=1.0)
                donor = render_face(identity, scene, other, size, render_size)
            image = apply_recipe(plan.recipe, frame, donor, variation, spec.artifact_strength)
        noise = own.normal(0.0, noise_std, image.shape).astype(np.float32)
        image = art.capture(image, cast, _scaled(style.blur, size), noise, quality)  # type: ignore[arg-type]
        frames.append(art.to_uint8(image))
    return frames


def _record(plan: VideoPlan, frame_index: int) -> dict:
    return {
        "path": f"images/{plan.folder}/{frame_index:02d}.png",
        "label": 0 if plan.recipe is None else 1,
        "domain": plan.domain,
        "type": plan.type,
        "video_id": plan.video_id,
        "split": plan.split,
        "frame_index": frame_index,
        "identity": plan.identity,
        "donor_identity": plan.donor,
        "original_video_id": plan.original_video_id,
        "family": "genuine" if plan.recipe is None else plan.recipe.family,
    }


def _draw_videos(out_dir: Path, plans: list[VideoPlan], seed: int, spec: SyntheticSpec) -> list[dict]:
    """Render ``plans`` and save their frames under ``out_dir``; their records. A pure function of its
    arguments, so worker processes draw the same files as one process would."""
    rows = []
    for plan in plans:
        folder = out_dir / "images" / plan.folder
        folder.mkdir(parents=True, exist_ok=True)
        for index, pixels in enumerate(render_video(plan, seed, spec)):
            record = _record(plan, index)
            Image.fromarray(pixels, "RGB").save(out_dir / record["path"], format="PNG")
            rows.append(record)
    return rows


@contextmanager
def _progress(videos: int, shown: bool) -> Iterator[Callable[[int], None]]:
    """``advance(n)``: n more videos drawn (a transient rich bar when ``shown``)."""
    if not shown:
        yield lambda n: None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(f"synthetic data: {videos} videos", total=videos)
        yield lambda n: bar.advance(task, n)


def generate_synthetic(
    out_dir: Path, seed: int, spec: SyntheticSpec, progress: bool = True, workers: int | None = None
) -> pd.DataFrame:
    """Draw the whole dataset into ``out_dir`` (which must not exist) and write its index.

    ``workers``: processes drawing videos side by side (None: the CPUs this process may use,
    :func:`common.cpus.cpu_budget`; 1: in this process). The files and the index are the same for
    any number. Prefer :func:`ensure_synthetic`, which adds caching, locking and the atomic rename.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=False)
    started = time.perf_counter()
    plans = plan_videos(seed, spec)
    chunks = [plans[i : i + VIDEOS_PER_TASK] for i in range(0, len(plans), VIDEOS_PER_TASK)]
    workers = min(cpu_budget().cpus if workers is None else workers, len(chunks))
    if workers < 1:
        raise ValueError(f"generate_synthetic: workers={workers}: expected at least 1")
    with _progress(len(plans), progress) as advance:
        if workers == 1:
            parts = []
            for chunk in chunks:
                parts.append(_draw_videos(out_dir, chunk, seed, spec))
                advance(len(chunk))
        else:
            # The platform's default start method, as torch's DataLoader workers use it (fork on Linux:
            # no re-import of the main module; the workers only use numpy and PIL).
            with ProcessPoolExecutor(workers) as pool:
                futures = {pool.submit(_draw_videos, out_dir, chunk, seed, spec): len(chunk) for chunk in chunks}
                for future in as_completed(futures):
                    future.result()  # a worker's error stops the generation here
                    advance(futures[future])
                parts = [future.result() for future in futures]  # in plan order
    rows = [row for part in parts for row in part]
    records = validate_records(pd.DataFrame(rows), f"synthetic generator (seed {seed}, {out_dir})")
    records.to_csv(out_dir / INDEX_NAME, index=False)
    (out_dir / SPEC_NAME).write_text(
        json.dumps({"generator_version": GENERATOR_VERSION, "seed": seed, "spec": asdict(spec)}, indent=1, sort_keys=True)
    )
    log.info(
        "generated %d synthetic images (%d videos) in %.1f s into %s",
        len(records),
        records["video_id"].nunique(),
        time.perf_counter() - started,
        out_dir,
    )
    return records


@contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (released when the process dies, so a
    crashed generator never leaves a stale lock). Without fcntl this is a no-op and the atomic
    rename in :func:`ensure_synthetic` decides which process's copy is kept."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# index.csv -> ((inode, size, mtime), its validated records): a run reads the index once per dataset of its
# protocol (up to 8), and a cache directory is never rewritten in place (ensure_synthetic renames a new one in).
_INDEX_MEMO: dict[Path, tuple[tuple[int, int, int], pd.DataFrame]] = {}


def load_synthetic_index(directory: Path) -> pd.DataFrame:
    """Records of a complete cache directory (paths relative to it); a copy of the ones read last
    while the file is the same (inode, size, modification time)."""
    index = Path(directory).resolve() / INDEX_NAME
    if not index.is_file():
        raise FileNotFoundError(f"synthetic cache {str(directory)!r} has no {INDEX_NAME}; expected a complete cache")
    stat = index.stat()
    version = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    known = _INDEX_MEMO.get(index)
    if known is None or known[0] != version:
        frame = pd.read_csv(index, dtype={"path": str, "video_id": str, "type": str, "donor_identity": str, "original_video_id": str},
                            keep_default_na=False)
        known = _INDEX_MEMO[index] = (version, validate_records(frame, str(index)))
    return known[1].copy()


def ensure_synthetic(
    root: Path, seed: int = 0, spec: SyntheticSpec | None = None, progress: bool = True, workers: int | None = None
) -> pd.DataFrame:
    """Records of the synthetic dataset for (seed, spec), generating it on first use (``workers``: see
    :func:`generate_synthetic`).

    Images live under :func:`synthetic_dir` ``(root, seed, spec)``; record paths are relative to
    it. Safe to call from several processes at once: one generates, the others wait and read.
    """
    spec = spec or SyntheticSpec()
    target = synthetic_dir(root, seed, spec)
    if (target / INDEX_NAME).is_file():
        return load_synthetic_index(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(target.parent / f"{target.name}.lock"):
        if (target / INDEX_NAME).is_file():  # another process finished while we waited
            return load_synthetic_index(target)
        # Leftovers of a generator that crashed: nobody else can be writing them (we hold the lock).
        for stale in target.parent.glob(f".{target.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        temporary = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            generate_synthetic(temporary, seed, spec, progress, workers)
            try:
                os.rename(temporary, target)  # atomic: a half-written cache never has the final name
            except OSError:
                if not (target / INDEX_NAME).is_file():
                    raise
                # Without a lock another process may have won the race; its copy is identical.
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
    return load_synthetic_index(target)
