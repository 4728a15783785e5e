"""Face detection (dlib HOG), 68-point landmarks, and 5-point similarity alignment.

The 68 dlib landmarks are reduced to the 5 points of the usual face-recognition template
(eye centres, nose tip, mouth corners, in image-left to image-right order); a similarity
transform (rotation, uniform scale, translation) fitted by least squares (Umeyama) maps them
onto a canonical template; the crop is that transform applied to the frame.

The canonical template is the widely used 112x112 five-point face-recognition template. With
``margin`` m the template square occupies the central 1/m of the output side, so m = 1.3 keeps
some forehead, chin and background around the face, which forgery detectors need (blending
boundaries lie at the face border).

The model files ship in the ``face-recognition-models`` package; it is located with
``importlib.util.find_spec`` and never imported (its ``__init__`` needs ``pkg_resources``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import dlib
import numpy as np
from PIL import Image

from common.choices import check_choice

# Five-point template (x, y) in a 112x112 face box: image-left eye, image-right eye, nose tip,
# image-left mouth corner, image-right mouth corner.
TEMPLATE_5POINTS_112: np.ndarray = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
TEMPLATE_BOX_SIDE = 112.0

LANDMARK_MODEL_FILES: dict[str, str] = {"68": "shape_predictor_68_face_landmarks.dat"}


class FaceModelError(RuntimeError):
    """The dlib model files cannot be found or loaded."""


@dataclass(frozen=True)
class Face:
    """One detected face: box (x0, y0, x1, y1) and 5 landmarks (5, 2), both in frame pixels."""

    box: tuple[float, float, float, float]
    score: float
    landmarks5: np.ndarray

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)


@dataclass(frozen=True)
class AlignedFace:
    """An aligned crop, its 5 landmarks in crop pixels and the 2x3 frame->crop matrix."""

    crop: np.ndarray
    landmarks5: np.ndarray
    matrix: np.ndarray


def face_models_dir() -> Path:
    """Folder holding the dlib model files of the ``face-recognition-models`` package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceModelError(
            "package face-recognition-models is not installed; it ships the dlib landmark model "
            "(pip install face-recognition-models, listed in pyproject.toml)"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "models"
        if candidate.is_dir():
            return candidate
    raise FaceModelError(
        f"face-recognition-models has no models/ folder in {list(spec.submodule_search_locations)}"
    )


def landmark_model_path(points: str = "68") -> Path:
    """Path of the dlib shape predictor file for ``points`` landmarks."""
    check_choice("landmark model", points, LANDMARK_MODEL_FILES)
    path = face_models_dir() / LANDMARK_MODEL_FILES[points]
    if not path.is_file():
        raise FaceModelError(f"dlib landmark model {path} is missing from face-recognition-models")
    return path


def canonical_template(size: int, margin: float) -> np.ndarray:
    """The 5-point template in the pixels of a ``size`` x ``size`` crop with ``margin``."""
    if size <= 0 or margin <= 0:
        raise ValueError(f"crop size and margin must be positive, got size={size}, margin={margin}")
    unit = TEMPLATE_5POINTS_112 / TEMPLATE_BOX_SIDE  # template in [0, 1]
    return ((unit - 0.5) / margin + 0.5) * size


def five_points_from_68(landmarks68: np.ndarray) -> np.ndarray:
    """Eye centres (mean of 6 points each), nose tip (30) and mouth corners (48, 54) of dlib's 68."""
    if landmarks68.shape != (68, 2):
        raise ValueError(f"expected 68 landmarks of shape (68, 2), got {landmarks68.shape}")
    return np.stack(
        [
            landmarks68[36:42].mean(axis=0),  # image-left eye (the subject's right eye)
            landmarks68[42:48].mean(axis=0),
            landmarks68[30],
            landmarks68[48],
            landmarks68[54],
        ]
    ).astype(np.float64)


def umeyama_similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama 1991) mapping ``source`` points onto ``target``.

    Returns the 2x3 matrix ``M`` with ``target ~ source @ M[:, :2].T + M[:, 2]``. Reflections are
    excluded (a mirrored face is not the same face).
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 2 or len(source) < 2:
        raise ValueError(f"need two matching (N>=2, 2) point arrays, got {source.shape} and {target.shape}")
    if not np.isfinite(source).all() or not np.isfinite(target).all():
        raise ValueError("similarity transform: points must be finite")
    # scikit-image's SimilarityTransform estimates exactly this (its Umeyama, reflections excluded;
    # equal to the former hand-written version to 1e-15 on random point sets). Imported here: it loads
    # scipy's spatial and special modules (0.3 s), which a command stopped by a wrong argument never needs.
    from skimage.transform import SimilarityTransform

    if hasattr(SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        transform = SimilarityTransform.from_estimate(source, target)
        ok = bool(transform)
    else:
        transform = SimilarityTransform()
        ok = transform.estimate(source, target)
    if not ok or not np.isfinite(transform.params).all():
        raise ValueError("source points are all identical (or collinear in a degenerate way); no similarity transform is defined")
    return np.asarray(transform.params[:2], dtype=np.float64)


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (N, 2) mapped by a 2x3 affine matrix."""
    return np.asarray(points, dtype=np.float64) @ matrix[:, :2].T + matrix[:, 2]


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """``image`` resampled (bilinear) into a ``size`` x ``size`` crop by the frame->crop ``matrix``.

    Outside the frame the crop is black. PIL wants the crop->frame mapping, hence the inverse.
    """
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(full)[:2]
    warped = Image.fromarray(image).transform(
        (size, size), Image.Transform.AFFINE, data=tuple(inverse.ravel()), resample=Image.Resampling.BILINEAR
    )
    return np.asarray(warped)


def choose_largest(faces: list[Face]) -> Face:
    """The face with the largest box (the subject, when bystanders are in the frame)."""
    if not faces:
        raise ValueError("choose_largest needs at least one face")
    return max(faces, key=lambda face: face.area)


def box_mask_iou(box: tuple[float, float, float, float], mask: np.ndarray) -> float:
    """Intersection over union of a box and the True pixels of a boolean mask (same frame size)."""
    height, width = mask.shape
    x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x1, y1 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
    mask_area = int(mask.sum())
    box_area = max(0, x1 - x0) * max(0, y1 - y0)
    inside = int(mask[y0:y1, x0:x1].sum()) if box_area else 0
    union = box_area + mask_area - inside
    return inside / union if union else 0.0


def choose_by_mask(faces: list[Face], mask: np.ndarray) -> Face | None:
    """The face whose box best overlaps the manipulation mask; None if no box touches it.

    None (empty mask, or a mask away from every box) lets the caller fall back explicitly and
    report that frame, rather than pick a face the mask does not support.
    """
    if not faces:
        raise ValueError("choose_by_mask needs at least one face")
    overlaps = [box_mask_iou(face.box, mask) for face in faces]
    best = int(np.argmax(overlaps))
    return faces[best] if overlaps[best] > 0 else None


def mask_to_binary(mask_frame: np.ndarray, frame_shape: tuple[int, ...]) -> np.ndarray:
    """A mask frame (RGB or grey, maybe compressed) as a boolean array of the frame's height and width."""
    grey = mask_frame.mean(axis=2) if mask_frame.ndim == 3 else mask_frame.astype(np.float64)
    if grey.shape != tuple(frame_shape[:2]):
        # Some releases store masks at another resolution; nearest keeps the mask binary.
        resized = Image.fromarray(grey.astype(np.uint8)).resize(
            (frame_shape[1], frame_shape[0]), Image.Resampling.NEAREST
        )
        grey = np.asarray(resized, dtype=np.float64)
    return grey > 127  # lossy video codecs blur 0/255 masks; mid-grey separates them


class FaceAligner:
    """dlib detector + 68-point landmarks + 5-point similarity alignment to a ``size`` crop.

    ``upsample`` is dlib's pyramid upsampling (1 finds faces down to about 40 px, at 4x the cost
    of 0). Frames whose longer side exceeds ``detect_max_side`` are downscaled for detection only;
    landmarks and the crop always use the full-resolution frame.
    """

    def __init__(
        self,
        size: int = 256,
        margin: float = 1.3,
        upsample: int = 1,
        detect_max_side: int = 640,
        landmark_points: str = "68",
    ) -> None:
        if upsample < 0 or detect_max_side <= 0:
            raise ValueError(
                f"upsample must be >= 0 and detect_max_side > 0, got {upsample} and {detect_max_side}"
            )
        self.size = size
        self.margin = margin
        self.upsample = upsample
        self.detect_max_side = detect_max_side
        self.template = canonical_template(size, margin)
        self._detector = dlib.get_frontal_face_detector()
        model = landmark_model_path(landmark_points)
        try:
            self._predictor = dlib.shape_predictor(str(model))
        except RuntimeError as error:
            raise FaceModelError(f"dlib cannot load landmark model {model}: {error}") from error

    def detect(self, frame: np.ndarray) -> list[Face]:
        """All faces of an RGB ``uint8`` frame, each with its box, score and 5 landmarks."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 frame (H, W, 3), got {frame.dtype} {frame.shape}")
        frame = np.ascontiguousarray(frame)
        height, width = frame.shape[:2]
        scale = min(1.0, self.detect_max_side / max(height, width))
        small = frame
        if scale < 1.0:
            small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = np.asarray(Image.fromarray(frame).resize(small_size, Image.Resampling.BILINEAR))
        rectangles, scores, _ = self._detector.run(small, self.upsample, 0.0)
        faces = []
        for rectangle, score in zip(rectangles, scores):
            box = (
                rectangle.left() / scale,
                rectangle.top() / scale,
                (rectangle.right() + 1) / scale,
                (rectangle.bottom() + 1) / scale,
            )
            full_rectangle = dlib.rectangle(
                int(round(box[0])), int(round(box[1])), int(round(box[2])) - 1, int(round(box[3])) - 1
            )
            shape = self._predictor(frame, full_rectangle)
            landmarks68 = np.array([[point.x, point.y] for point in shape.parts()], dtype=np.float64)
            faces.append(Face(box=box, score=float(score), landmarks5=five_points_from_68(landmarks68)))
        return faces

    def align(self, frame: np.ndarray, face: Face) -> AlignedFace:
        """The crop of ``face`` aligned to the canonical template."""
        matrix = umeyama_similarity(face.landmarks5, self.template)
        return AlignedFace(
            crop=warp_affine(frame, matrix, self.size),
            landmarks5=apply_affine(matrix, face.landmarks5),
            matrix=matrix,
        )
