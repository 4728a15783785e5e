"""Procedural face drawing for the embedded synthetic dataset (numpy + PIL, no downloads).

A face is the product of three independent descriptions:

- :class:`FaceIdentity`: who it is (face shape, skin tone, eye/nose/mouth geometry, hair,
  skin texture); fixed for a person across all their videos;
- :class:`SceneSetup`: where and how the video was shot (background, clothing, lighting);
  fixed within a video;
- :class:`FramePose`: what changes from frame to frame (position, size, roll, yaw, mouth and
  eye opening).

:func:`render_face` turns the three into a float RGB image in [0, 1] plus soft region masks
(whole face, inner face, mouth, eyes) that the artifact functions use as blend masks. Drawing
happens on a supersampled canvas and is box-downsampled, so edges are anti-aliased and masks
are soft (sub-pixel accurate) rather than binary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[float, float, float]

# Drawing happens at this multiple of the output resolution, then is box-downsampled.
SUPERSAMPLE = 2

# Anchor skin tones from light to dark (linear interpolation between neighbours gives the rest).
SKIN_TONE_ANCHORS: tuple[RGB, ...] = (
    (0.98, 0.86, 0.77),
    (0.94, 0.76, 0.63),
    (0.83, 0.62, 0.47),
    (0.66, 0.46, 0.32),
    (0.47, 0.31, 0.21),
    (0.33, 0.22, 0.15),
)
HAIR_COLOURS: tuple[RGB, ...] = (
    (0.08, 0.06, 0.05),
    (0.22, 0.14, 0.08),
    (0.40, 0.26, 0.14),
    (0.66, 0.50, 0.30),
    (0.85, 0.75, 0.52),
    (0.55, 0.20, 0.10),
    (0.62, 0.62, 0.62),
)
EYE_COLOURS: tuple[RGB, ...] = (
    (0.25, 0.15, 0.08),
    (0.35, 0.22, 0.10),
    (0.20, 0.35, 0.55),
    (0.25, 0.45, 0.30),
    (0.40, 0.40, 0.42),
)
MASK_NAMES: tuple[str, ...] = ("face", "inner", "lower", "mouth", "eyes")
HAIR_STYLES: tuple[str, ...] = ("short", "fringe", "side_part", "long", "curly", "bald")


@dataclass(frozen=True)
class FaceIdentity:
    """Everything that makes one synthetic person look like themselves."""

    skin: RGB
    face_aspect: float  # height / width of the head outline
    jaw_narrowing: float  # 0 = oval, larger = pointed chin
    eye_spacing: float  # eye centre distance / face width
    eye_height: float  # eye line above the face centre, as a fraction of face half-height
    eye_size: float  # eye width / face width
    eye_colour: RGB
    brow_thickness: float  # fraction of face width
    brow_tilt: float  # outer end raised (+) or lowered (-), fraction of face width
    nose_length: float  # fraction of face half-height
    nose_width: float  # fraction of face width
    mouth_width: float  # fraction of face width
    mouth_height: float  # below the face centre, fraction of face half-height
    lip_colour: RGB
    hair_colour: RGB
    hair_style: str
    hairline: float  # how far the hair comes down, fraction of face half-height above centre
    beard: float  # 0 = none, up to 0.5 = visible stubble
    glasses: bool
    texture_strength: float  # std of the fine skin texture (pores), in intensity units
    texture_seed: int


@dataclass(frozen=True)
class SceneSetup:
    """What stays fixed within one video: background, clothing and lighting."""

    background_top: RGB
    background_bottom: RGB
    background_shapes: tuple[tuple[float, float, float, float, RGB], ...]  # x0, y0, x1, y1, colour
    clothing: RGB
    light_angle: float  # radians, direction the light comes from in the image plane
    light_strength: float  # linear shading gradient amplitude across the image
    face_shading: float  # darkening towards the face outline (gives a rounded look)


@dataclass(frozen=True)
class FramePose:
    """What moves from frame to frame in a video."""

    center_x: float  # face centre, fraction of image width
    center_y: float
    face_width: float  # fraction of image width
    roll_degrees: float
    yaw: float  # -1 (turned left) .. 1 (turned right); shifts the features sideways
    mouth_open: float  # 0 closed .. 1 wide open
    eyes_open: float  # 0 closed (blink) .. 1 open


@dataclass(frozen=True)
class RenderedFace:
    """A drawn image (H, W, 3) float32 in [0, 1] with soft masks (H, W) float32 in [0, 1]."""

    image: np.ndarray
    masks: dict[str, np.ndarray]


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t)


def _scale(colour: RGB, factor: float) -> RGB:
    return (colour[0] * factor, colour[1] * factor, colour[2] * factor)


def _clip_colour(colour: RGB) -> RGB:
    return (min(max(colour[0], 0.0), 1.0), min(max(colour[1], 0.0), 1.0), min(max(colour[2], 0.0), 1.0))


def _jitter(colour: RGB, rng: np.random.Generator, amount: float) -> RGB:
    noise = rng.normal(0.0, amount, 3)
    return _clip_colour((colour[0] + noise[0], colour[1] + noise[1], colour[2] + noise[2]))


def _rgba(colour: RGB, alpha: float = 1.0) -> tuple[int, int, int, int]:
    return (
        int(round(255 * min(max(colour[0], 0.0), 1.0))),
        int(round(255 * min(max(colour[1], 0.0), 1.0))),
        int(round(255 * min(max(colour[2], 0.0), 1.0))),
        int(round(255 * min(max(alpha, 0.0), 1.0))),
    )


def sample_identity(rng: np.random.Generator) -> FaceIdentity:
    """Draw a random person; every field comes from ``rng`` so the same stream gives the same face."""
    tone_position = rng.uniform(0.0, len(SKIN_TONE_ANCHORS) - 1)
    low = int(math.floor(tone_position))
    high = min(low + 1, len(SKIN_TONE_ANCHORS) - 1)
    skin = _jitter(_mix(SKIN_TONE_ANCHORS[low], SKIN_TONE_ANCHORS[high], tone_position - low), rng, 0.02)
    hair_colour = _jitter(HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))], rng, 0.03)
    lip_base = _mix(skin, (0.70, 0.25, 0.28), rng.uniform(0.35, 0.6))
    return FaceIdentity(
        skin=skin,
        face_aspect=float(rng.uniform(1.15, 1.42)),
        jaw_narrowing=float(rng.uniform(0.0, 0.3)),
        eye_spacing=float(rng.uniform(0.36, 0.46)),
        eye_height=float(rng.uniform(0.08, 0.22)),
        eye_size=float(rng.uniform(0.15, 0.21)),
        eye_colour=_jitter(EYE_COLOURS[rng.integers(len(EYE_COLOURS))], rng, 0.03),
        brow_thickness=float(rng.uniform(0.025, 0.06)),
        brow_tilt=float(rng.uniform(-0.04, 0.05)),
        nose_length=float(rng.uniform(0.22, 0.36)),
        nose_width=float(rng.uniform(0.13, 0.21)),
        mouth_width=float(rng.uniform(0.3, 0.44)),
        mouth_height=float(rng.uniform(0.42, 0.56)),
        lip_colour=_clip_colour(lip_base),
        hair_colour=hair_colour,
        hair_style=HAIR_STYLES[int(rng.integers(len(HAIR_STYLES)))],
        hairline=float(rng.uniform(0.45, 0.7)),
        beard=float(rng.uniform(0.15, 0.45)) if rng.random() < 0.2 else 0.0,
        glasses=bool(rng.random() < 0.12),
        texture_strength=float(rng.uniform(0.018, 0.035)),
        texture_seed=int(rng.integers(2**31 - 1)),
    )


def sample_scene(rng: np.random.Generator, palette: tuple[RGB, ...], light_range: tuple[float, float]) -> SceneSetup:
    """Draw a background from ``palette`` (a domain's colours), clothing and a light direction."""
    top = _jitter(palette[int(rng.integers(len(palette)))], rng, 0.04)
    bottom = _jitter(palette[int(rng.integers(len(palette)))], rng, 0.04)
    shapes = []
    for _ in range(int(rng.integers(0, 4))):
        x0, y0 = rng.uniform(-0.1, 0.9, 2)
        width, height = rng.uniform(0.1, 0.5, 2)
        colour = _jitter(palette[int(rng.integers(len(palette)))], rng, 0.08)
        shapes.append((float(x0), float(y0), float(x0 + width), float(y0 + height), colour))
    clothing = _clip_colour(tuple(float(v) for v in rng.uniform(0.05, 0.85, 3)))  # type: ignore[arg-type]
    return SceneSetup(
        background_top=top,
        background_bottom=bottom,
        background_shapes=tuple(shapes),
        clothing=clothing,
        light_angle=float(rng.uniform(0, 2 * math.pi)),
        light_strength=float(rng.uniform(*light_range)),
        face_shading=float(rng.uniform(0.1, 0.25)),
    )


def sample_pose(rng: np.random.Generator, face_width_range: tuple[float, float], roll_range: float) -> FramePose:
    """Draw the first-frame pose of a video (roughly centred, small roll and yaw)."""
    return FramePose(
        center_x=float(rng.uniform(0.45, 0.55)),
        center_y=float(rng.uniform(0.44, 0.54)),
        face_width=float(rng.uniform(*face_width_range)),
        roll_degrees=float(rng.uniform(-roll_range, roll_range)),
        yaw=float(rng.uniform(-0.6, 0.6)),
        mouth_open=float(rng.uniform(0.0, 0.4)),
        eyes_open=1.0,
    )


def move_pose(pose: FramePose, rng: np.random.Generator) -> FramePose:
    """The next frame's pose: a small drift in position, roll and yaw; mouth moves; rare blinks."""
    return replace(
        pose,
        center_x=float(np.clip(pose.center_x + rng.normal(0, 0.008), 0.38, 0.62)),
        center_y=float(np.clip(pose.center_y + rng.normal(0, 0.008), 0.38, 0.6)),
        face_width=float(pose.face_width * (1 + rng.normal(0, 0.01))),
        roll_degrees=float(pose.roll_degrees + rng.normal(0, 1.0)),
        yaw=float(np.clip(pose.yaw + rng.normal(0, 0.06), -0.8, 0.8)),
        mouth_open=float(np.clip(pose.mouth_open + rng.normal(0, 0.15), 0.0, 1.0)),
        eyes_open=0.1 if rng.random() < 0.1 else 1.0,
    )


def _head_outline(cx: float, cy: float, half_w: float, half_h: float, jaw: float, points: int = 72) -> list:
    """Head outline polygon: an ellipse whose lower half narrows towards the chin by ``jaw``."""
    outline = []
    for k in range(points):
        t = 2 * math.pi * k / points
        sin_t = math.sin(t)  # positive = lower half (image y grows downwards)
        width = half_w * (1 - jaw * max(0.0, sin_t) ** 3)
        outline.append((cx + width * math.cos(t), cy + half_h * sin_t))
    return outline


def _ellipse_box(cx: float, cy: float, rx: float, ry: float) -> tuple[float, float, float, float]:
    return (cx - rx, cy - ry, cx + rx, cy + ry)


def _draw_background(size: int, scene: SceneSetup, identity: FaceIdentity, pose: FramePose) -> Image.Image:
    """Gradient background, some blurry furniture shapes, long hair behind the head, shoulders."""
    rows = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    top = np.asarray(scene.background_top, dtype=np.float32)
    bottom = np.asarray(scene.background_bottom, dtype=np.float32)
    gradient = np.broadcast_to(top * (1 - rows) + bottom * rows, (size, size, 3))
    canvas = Image.fromarray(np.round(gradient * 255).astype(np.uint8), "RGB").convert("RGBA")
    draw = ImageDraw.Draw(canvas, "RGBA")
    for x0, y0, x1, y1, colour in scene.background_shapes:
        draw.rectangle((x0 * size, y0 * size, x1 * size, y1 * size), fill=_rgba(colour, 0.55))
    face_w = pose.face_width * size
    half_w, half_h = face_w / 2, face_w / 2 * identity.face_aspect
    cx, cy = pose.center_x * size, pose.center_y * size
    if identity.hair_style == "long":
        draw.rounded_rectangle(
            (cx - half_w * 1.25, cy - half_h * 1.1, cx + half_w * 1.25, cy + half_h * 1.6),
            radius=half_w * 0.9,
            fill=_rgba(identity.hair_colour),
        )
    neck_colour = _scale(identity.skin, 0.82)
    draw.rectangle((cx - half_w * 0.42, cy + half_h * 0.5, cx + half_w * 0.42, cy + half_h * 1.5), fill=_rgba(neck_colour))
    draw.ellipse(
        (cx - half_w * 2.3, cy + half_h * 1.25, cx + half_w * 2.3, cy + half_h * 3.2), fill=_rgba(scene.clothing)
    )
    return canvas


def _draw_face_layer(size: int, identity: FaceIdentity, pose: FramePose) -> tuple[Image.Image, dict[str, Image.Image]]:
    """Draw the head (unrotated) on a transparent layer and its region masks on L images."""
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer, "RGBA")
    masks = {name: Image.new("L", (size, size), 0) for name in MASK_NAMES}
    mask_draw = {name: ImageDraw.Draw(image) for name, image in masks.items()}

    face_w = pose.face_width * size
    half_w, half_h = face_w / 2, face_w / 2 * identity.face_aspect
    cx, cy = pose.center_x * size, pose.center_y * size
    # Yaw moves the inner features sideways more than the outline: a cheap stand-in for 3D.
    feature_shift = pose.yaw * 0.16 * face_w
    skin = identity.skin
    shadow = _scale(skin, 0.78)

    # Ears, then head.
    ear_rx, ear_ry = half_w * 0.16, half_h * 0.2
    for side in (-1, 1):
        ear_x = cx + side * half_w * 0.98 - feature_shift * 0.5
        draw.ellipse(_ellipse_box(ear_x, cy - half_h * 0.05, ear_rx, ear_ry), fill=_rgba(_scale(skin, 0.9)))
    outline = _head_outline(cx + feature_shift * 0.15, cy, half_w, half_h, identity.jaw_narrowing)
    draw.polygon(outline, fill=_rgba(skin))
    mask_draw["face"].polygon(outline, fill=255)

    # Hair cap: the outline grown a little, cut off below the hairline (style decides the cut).
    hair_line_y = cy - half_h * identity.hairline
    if identity.hair_style != "bald":
        # Hair = (grown outline) AND (above the hairline, or at the temples), minus the face below.
        cap = Image.new("L", (size, size), 0)
        ImageDraw.Draw(cap).polygon(
            _head_outline(cx + feature_shift * 0.1, cy - half_h * 0.06, half_w * 1.08, half_h * 1.02, 0.0), fill=255
        )
        region = Image.new("L", (size, size), 0)
        region_draw = ImageDraw.Draw(region)
        if identity.hair_style == "fringe":
            region_draw.rectangle((0, 0, size, hair_line_y + half_h * 0.18), fill=255)
        elif identity.hair_style == "side_part":
            region_draw.polygon([(0, 0), (size, 0), (size, hair_line_y - half_h * 0.05), (0, hair_line_y + half_h * 0.22)], fill=255)
        else:
            region_draw.rectangle((0, 0, size, hair_line_y), fill=255)
        for side in (-1, 1):
            x_edge = cx + side * half_w * 1.2
            region_draw.polygon(
                [(x_edge, cy - half_h * 0.8), (cx + side * half_w * 0.8, cy - half_h * 0.55), (x_edge, cy - half_h * 0.1)],
                fill=255,
            )
        hair = Image.fromarray(np.minimum(np.asarray(cap), np.asarray(region)), "L")
        hair_draw = ImageDraw.Draw(hair)
        inner_cut = _head_outline(cx + feature_shift * 0.15, cy + half_h * 0.1, half_w * 0.9, half_h, identity.jaw_narrowing)
        hair_draw.polygon([p for p in inner_cut if p[1] > hair_line_y + half_h * 0.2] or [(0, 0)], fill=0)
        if identity.hair_style == "curly":
            for k in range(14):
                angle = math.pi + math.pi * k / 13
                hx = cx + math.cos(angle) * half_w * 1.02
                hy = cy - half_h * 0.05 + math.sin(angle) * half_h * 1.0
                hair_draw.ellipse(_ellipse_box(hx, hy, half_w * 0.2, half_w * 0.2), fill=255)
        layer.paste(Image.new("RGBA", (size, size), _rgba(identity.hair_colour)), (0, 0), hair)

    # Beard / stubble on the lower face.
    if identity.beard > 0:
        beard = Image.new("L", (size, size), 0)
        chin = [p for p in outline if p[1] > cy + half_h * 0.25]
        ImageDraw.Draw(beard).polygon(chin + [(cx + half_w * 0.6, cy + half_h * 0.3), (cx - half_w * 0.6, cy + half_h * 0.3)], fill=int(255 * identity.beard))
        layer.paste(Image.new("RGBA", (size, size), _rgba(_scale(identity.hair_colour, 0.9))), (0, 0), beard)

    # Eyes and brows.
    eye_y = cy - half_h * identity.eye_height
    eye_rx = identity.eye_size * face_w / 2
    eye_ry = eye_rx * 0.5 * max(pose.eyes_open, 0.08)
    brow_colour = _mix(identity.hair_colour, (0.05, 0.04, 0.03), 0.4)
    for side in (-1, 1):
        # The eye on the side the head turns away from gets narrower.
        foreshortening = 1 - 0.3 * max(0.0, side * pose.yaw)
        ex = cx + side * identity.eye_spacing * face_w / 2 + feature_shift
        rx = eye_rx * foreshortening
        brow_y = eye_y - eye_rx * 1.05
        draw.line(
            [(ex - side * rx * 1.1, brow_y + 0.0), (ex + side * rx * 1.2, brow_y - identity.brow_tilt * face_w)],
            fill=_rgba(brow_colour),
            width=max(1, int(round(identity.brow_thickness * face_w))),
        )
        if pose.eyes_open > 0.3:
            draw.ellipse(_ellipse_box(ex, eye_y, rx, eye_ry), fill=_rgba((0.95, 0.94, 0.92)))
            iris_r = eye_ry * 0.95
            iris_x = ex + pose.yaw * rx * 0.35
            draw.ellipse(_ellipse_box(iris_x, eye_y, iris_r, iris_r), fill=_rgba(identity.eye_colour))
            draw.ellipse(_ellipse_box(iris_x, eye_y, iris_r * 0.45, iris_r * 0.45), fill=_rgba((0.03, 0.03, 0.03)))
            draw.arc(_ellipse_box(ex, eye_y, rx, eye_ry), 190, 350, fill=_rgba((0.1, 0.07, 0.06)), width=max(1, size // 90))
        else:
            draw.line([(ex - rx, eye_y), (ex + rx, eye_y)], fill=_rgba((0.1, 0.07, 0.06)), width=max(1, size // 80))
        if identity.glasses:
            draw.ellipse(_ellipse_box(ex, eye_y, rx * 1.45, rx * 1.15), outline=_rgba((0.1, 0.1, 0.12)), width=max(1, size // 70))
    if identity.glasses:
        bridge_l = cx - identity.eye_spacing * face_w / 2 + feature_shift + eye_rx * 1.45
        bridge_r = cx + identity.eye_spacing * face_w / 2 + feature_shift - eye_rx * 1.45
        draw.line([(bridge_l, eye_y), (bridge_r, eye_y)], fill=_rgba((0.1, 0.1, 0.12)), width=max(1, size // 70))
    eyes_box = _ellipse_box(
        cx + feature_shift, eye_y - eye_rx * 0.4, identity.eye_spacing * face_w / 2 + eye_rx * 1.6, eye_rx * 1.5
    )
    mask_draw["eyes"].ellipse(eyes_box, fill=255)

    # Nose: a shaded ridge on the side away from the light would need 3D; a soft triangle will do.
    nose_top = eye_y + eye_rx * 0.3
    nose_tip_y = cy - half_h * identity.eye_height + half_h * identity.nose_length + eye_rx * 0.3
    nose_x = cx + feature_shift * 1.3
    nose_half = identity.nose_width * face_w / 2
    draw.polygon(
        [(nose_x - nose_half * 0.25, nose_top), (nose_x + nose_half * 0.15, nose_top), (nose_x + nose_half * 0.5, nose_tip_y), (nose_x - nose_half * 0.6, nose_tip_y)],
        fill=_rgba(shadow, 0.45),
    )
    for side in (-1, 1):
        draw.ellipse(
            _ellipse_box(nose_x + side * nose_half * 0.5, nose_tip_y, nose_half * 0.25, nose_half * 0.14),
            fill=_rgba(_scale(skin, 0.5)),
        )

    # Mouth: lips, and a dark opening that grows with mouth_open.
    mouth_y = cy + half_h * identity.mouth_height
    mouth_x = cx + feature_shift * 1.1
    mouth_rx = identity.mouth_width * face_w / 2
    opening = mouth_rx * 0.45 * pose.mouth_open
    lip_ry = mouth_rx * 0.17
    draw.ellipse(_ellipse_box(mouth_x, mouth_y - lip_ry * 0.6, mouth_rx, lip_ry), fill=_rgba(identity.lip_colour))
    draw.ellipse(_ellipse_box(mouth_x, mouth_y + lip_ry * 0.6 + opening, mouth_rx * 0.92, lip_ry * 1.15), fill=_rgba(_scale(identity.lip_colour, 0.92)))
    if opening > 0.5:
        draw.ellipse(_ellipse_box(mouth_x, mouth_y + opening * 0.5, mouth_rx * 0.8, opening * 0.6), fill=_rgba((0.18, 0.05, 0.06)))
    else:
        draw.line([(mouth_x - mouth_rx * 0.9, mouth_y), (mouth_x + mouth_rx * 0.9, mouth_y)], fill=_rgba(_scale(identity.lip_colour, 0.55)), width=max(1, size // 100))
    mask_draw["mouth"].ellipse(_ellipse_box(mouth_x, mouth_y + opening * 0.5, mouth_rx * 1.35, lip_ry * 3.2 + opening * 0.6), fill=255)

    # Inner face: brows to lower lip, cheek to cheek: what a face swap replaces.
    inner_top = eye_y - eye_rx * 1.6
    inner_bottom = mouth_y + lip_ry * 3.0 + opening
    mask_draw["inner"].ellipse(
        (cx + feature_shift * 0.8 - half_w * 0.8, inner_top, cx + feature_shift * 0.8 + half_w * 0.8, inner_bottom), fill=255
    )
    # Lower face: nose tip to chin: what an expression reenactment changes.
    mask_draw["lower"].ellipse(
        (cx + feature_shift - half_w * 0.75, nose_tip_y - half_h * 0.1, cx + feature_shift + half_w * 0.75, cy + half_h * 0.95),
        fill=255,
    )
    for name in ("inner", "lower", "mouth", "eyes"):
        # Regions never extend past the head outline.
        masks[name] = Image.fromarray(np.minimum(np.asarray(masks[name]), np.asarray(masks["face"])), "L")
    return layer, masks


def _downsample(image: Image.Image, size: int) -> Image.Image:
    return image.resize((size, size), Image.Resampling.BOX)


def render_face(identity: FaceIdentity, scene: SceneSetup, pose: FramePose, size: int, render_size: int | None = None) -> RenderedFace:
    """Draw one frame at ``size`` x ``size``.

    ``render_size`` (default ``size``) is the resolution the face is actually drawn at before
    being resized to ``size``: a value below ``size`` gives the soft look of an upsampled
    low-resolution capture. Masks are always computed at full accuracy.
    """
    if size < 16:
        raise ValueError(f"render_face: image size {size} is too small to draw a face; expected >= 16")
    render_size = size if render_size is None else render_size
    if not 8 <= render_size <= size:
        raise ValueError(f"render_face: render_size {render_size} must lie in [8, size={size}]")
    canvas_size = render_size * SUPERSAMPLE
    canvas = _draw_background(canvas_size, scene, identity, pose)
    layer, masks = _draw_face_layer(canvas_size, identity, pose)
    center = (pose.center_x * canvas_size, pose.center_y * canvas_size)
    if abs(pose.roll_degrees) > 1e-3:
        # Bilinear is enough on the supersampled canvas; masks travel as channels of two images
        # (rotation is the most expensive step of drawing).
        layer = layer.rotate(pose.roll_degrees, resample=Image.Resampling.BILINEAR, center=center)
        # RGBX, not RGBA: PIL premultiplies alpha when resampling RGBA, which would mix channels.
        packed = Image.merge("RGBX", [masks[name] for name in MASK_NAMES[:4]])
        packed = packed.rotate(pose.roll_degrees, resample=Image.Resampling.BILINEAR, center=center)
        last = masks[MASK_NAMES[4]].rotate(pose.roll_degrees, resample=Image.Resampling.BILINEAR, center=center)
        masks = {**dict(zip(MASK_NAMES[:4], packed.split())), MASK_NAMES[4]: last}
    canvas.alpha_composite(layer)
    image = np.asarray(_downsample(canvas.convert("RGB"), render_size), dtype=np.float32) / 255.0
    face_mask_small = np.asarray(_downsample(masks["face"], render_size), dtype=np.float32) / 255.0

    # Skin texture (pores, blemishes): fine noise, fixed per identity, only on the face.
    texture_rng = np.random.default_rng(identity.texture_seed)
    texture = texture_rng.normal(0.0, identity.texture_strength, (render_size, render_size, 1)).astype(np.float32)
    texture = texture * (1 + 0.15 * texture_rng.normal(0.0, 1.0, (render_size, render_size, 3)).astype(np.float32))
    image = image + texture * face_mask_small[..., None]

    # Lighting: a linear gradient over the whole frame, and darkening towards the face outline.
    coords = (np.arange(render_size, dtype=np.float32) + 0.5) / render_size - 0.5
    grid_x, grid_y = np.meshgrid(coords, coords)
    gradient = grid_x * math.cos(scene.light_angle) + grid_y * math.sin(scene.light_angle)
    shading = 1 + scene.light_strength * 2 * gradient
    half_w = pose.face_width / 2
    half_h = half_w * identity.face_aspect
    radius = ((grid_x + 0.5 - pose.center_x) / half_w) ** 2 + ((grid_y + 0.5 - pose.center_y) / half_h) ** 2
    shading = shading * (1 - scene.face_shading * np.clip(radius, 0, 1) * face_mask_small)
    image = np.clip(image * shading[..., None], 0.0, 1.0)

    if render_size != size:
        resized = Image.fromarray(np.round(image * 255).astype(np.uint8), "RGB").resize((size, size), Image.Resampling.BICUBIC)
        image = np.asarray(resized, dtype=np.float32) / 255.0
    soft_masks = {name: np.asarray(_downsample(mask, size), dtype=np.float32) / 255.0 for name, mask in masks.items()}
    return RenderedFace(image=image.astype(np.float32), masks=soft_masks)
