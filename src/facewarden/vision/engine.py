"""dlib face pipeline: detect (HOG or CNN) -> 5-point alignment -> 128-D embedding + quality (vision/quality.py).

Speed: large photos are downscaled to `detect_max_side` for detection only; landmarks and the
embedding chip come from the full-resolution image, so accuracy does not drop with the shortcut.
"""

from __future__ import annotations

import hashlib
import math
import threading
from dataclasses import replace
from functools import cache

import dlib
import face_recognition_models as frm
import numpy as np
from PIL import Image

from facewarden.vision import quality
from facewarden.vision.distance import distance
from facewarden.vision.embedder import DetectedFace, FaceQualityError, ModelInfo
from facewarden.vision.quality import QualityFeatures
from facewarden.vision.selection import DOMINANT_MARGIN, main_face_index

EMBEDDING_DIM = 128
CHIP_SIZE = 150
CHIP_PADDING = 0.25


@cache
def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def model_info() -> ModelInfo:
    weights = frm.face_recognition_model_location()
    return ModelInfo("dlib_resnet_v1_128d", f"dlib-{dlib.__version__}+{_file_digest(weights)}")


def as_dlib_image(rgb: np.ndarray) -> np.ndarray:
    """The one form every array takes before dlib or OpenCV sees it: HxWx3 uint8 RGB, C-contiguous.

    Decoders can hand back views (a row stride padded for alignment, a rotation, a crop, a grey or RGBA image);
    dlib's bindings refuse those with a TypeError, which would otherwise surface as a 500."""
    arr = np.asarray(rgb)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise FaceQualityError(
            f"The image has an unusable shape {tuple(arr.shape)}; send an RGB photo.", code="unprocessable")
    if arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


class FaceEngine:
    """The dlib `Embedder`: loads the models once. dlib objects are not shared across threads: one lock guards them."""

    dimension = EMBEDDING_DIM
    metric = "euclidean"  # dlib's ResNet was trained for L2 distance

    def __init__(self, *, detector: str = "hog", detect_max_side: int = 640, min_face_px: int = 32,
                 min_sharpness: float = quality.HARD_MIN_SHARPNESS,
                 min_quality: float = quality.QUALITY_FLOOR) -> None:
        self.detector_kind = detector
        self.detect_max_side = detect_max_side
        self.min_face_px = min_face_px
        self.min_sharpness = min_sharpness  # raw Laplacian variance of the chip: below it, `face_blurred`
        self.min_quality = min_quality  # vision/quality.py score: below it, `face_low_quality`
        if detector == "cnn":
            self._cnn = dlib.cnn_face_detection_model_v1(frm.cnn_face_detector_model_location())
        else:
            self._hog = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self._encoder = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
        self._lock = threading.Lock()
        self.model = model_info()

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        return distance(self.metric, a, b)

    # -- input -----------------------------------------------------------------------------
    def checked(self, rgb: np.ndarray) -> np.ndarray:
        """`as_dlib_image`, and a refusal of pictures too narrow or too short to hold a face of the minimum size
        (a 1x4000 strip would otherwise be scaled to zero pixels for detection)."""
        arr = as_dlib_image(rgb)
        h, w = arr.shape[:2]
        if min(h, w) < self.min_face_px:
            raise FaceQualityError(
                f"The image is {w}x{h} pixels: too small in one direction to hold a face (at least "
                f"{self.min_face_px} px each way). Send an uncropped photo in which the face is at least "
                f"{self.min_face_px} px wide.", code="image_too_small")
        return arr

    # -- detection -------------------------------------------------------------------------
    def detect(self, rgb: np.ndarray) -> list[tuple[dlib.rectangle, float]]:
        """Face boxes in original pixels, with detector confidence, largest first."""
        rgb = self.checked(rgb)
        h, w = rgb.shape[:2]
        scale = min(1.0, self.detect_max_side / max(h, w))
        small = rgb
        if scale < 1.0:
            # at least one pixel each way: a very elongated picture must not round to an empty image
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = np.ascontiguousarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
        # Upsampling once finds faces down to ~40 px in the detection image.
        with self._lock:
            if self.detector_kind == "cnn":
                found = [(d.rect, float(d.confidence)) for d in self._cnn(small, 1)]
            else:
                rects, scores, _ = self._hog.run(small, 1, 0.0)
                found = list(zip(rects, scores, strict=True))
        out = []
        for rect, score in found:
            r = dlib.rectangle(
                max(0, round(rect.left() / scale)), max(0, round(rect.top() / scale)),
                min(w - 1, round(rect.right() / scale)), min(h - 1, round(rect.bottom() / scale)))
            out.append((r, score))
        out.sort(key=lambda rs: rs[0].area(), reverse=True)
        return out

    def _no_face(self, rgb: np.ndarray) -> str:
        """The no-face message, with the face size this photo needs: detection runs on a copy shrunk to
        `detect_max_side`, so a large photo needs a proportionally larger face."""
        h, w = rgb.shape[:2]
        need = max(self.min_face_px, math.ceil(SMALLEST_DETECTED_PX * max(1.0, max(h, w) / self.detect_max_side)))
        return (f"{_NO_FACE[:-1]} and at least {need} pixels wide in this {w}x{h} photo (move closer, or crop "
                "the photo around the face).")

    # -- embedding -------------------------------------------------------------------------
    def measure_box(self, rgb: np.ndarray, rect: dlib.rectangle, score: float = 0.0
                    ) -> tuple[np.ndarray, QualityFeatures]:
        """The embedding of the face in `rect` and its quality features, with no gate (benchmarks, the gate)."""
        with self._lock:
            shape = self._shape(rgb, rect)
            chip = dlib.get_face_chip(rgb, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
            vec = np.asarray(self._encoder.compute_face_descriptor(chip), dtype=np.float32)
        landmarks = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        gray = np.asarray(Image.fromarray(chip).convert("L"))
        return vec, quality.measure(landmarks, gray, score)

    def embed_box(self, rgb: np.ndarray, rect: dlib.rectangle, score: float = 0.0,
                  check_quality: bool = True) -> DetectedFace:
        rgb = as_dlib_image(rgb)  # callers outside this class (liveness) pass decoder frames directly
        if not rgb.size or rect.is_empty() or min(rect.width(), rect.height()) < 2:
            raise FaceQualityError(_NO_FACE, code="no_face")
        if check_quality and min(rect.width(), rect.height()) < self.min_face_px:
            raise FaceQualityError(
                f"The face is too small ({min(rect.width(), rect.height())} px; at least "
                f"{self.min_face_px} px needed). Move closer to the camera or send a larger photo.",
                code="face_too_small")
        vec, feats = self.measure_box(rgb, rect, score)
        q = quality.quality_score(feats)
        if check_quality and (refusal := quality.gate_failure(feats, q, floor=self.min_quality,
                                                              min_sharpness=self.min_sharpness)):
            raise FaceQualityError(refusal[1], code=refusal[0])
        return DetectedFace(
            box=(rect.left(), rect.top(), rect.right(), rect.bottom()), embedding=vec,
            sharpness=feats.sharpness, detector_score=score, quality=q)

    def faces(self, rgb: np.ndarray, *, check_quality: bool = True) -> list[DetectedFace]:
        """Every face in the photo (for identification of group photos)."""
        rgb = self.checked(rgb)
        found = self.detect(rgb)
        if not found:
            raise FaceQualityError(self._no_face(rgb), code="no_face")
        return [self.embed_box(rgb, r, s, check_quality) for r, s in found]

    def single_face(self, rgb: np.ndarray, *, whole_image_fallback: bool = False) -> DetectedFace:
        """Exactly one face, quality-checked; several faces is an error where one is required."""
        return self._one_face(rgb, whole_image_fallback=whole_image_fallback, margin=None)

    def main_face(self, rgb: np.ndarray, margin: float = DOMINANT_MARGIN, *,
                  whole_image_fallback: bool = False) -> DetectedFace:
        """The only face, or the main one of several (vision/selection.py: clearly the largest, or the one the
        photo is framed on), quality-checked like `single_face`; an ambiguous photo is `multiple_faces`.
        `faces_in_photo` of the result says how many faces were seen."""
        return self._one_face(rgb, whole_image_fallback=whole_image_fallback, margin=margin)

    def _one_face(self, rgb: np.ndarray, *, whole_image_fallback: bool, margin: float | None) -> DetectedFace:
        rgb = self.checked(rgb)
        found = self.detect(rgb)
        if not found and whole_image_fallback:
            h, w = rgb.shape[:2]
            return self.embed_box(rgb, dlib.rectangle(0, 0, w - 1, h - 1), 0.0, check_quality=False)
        if not found:
            raise FaceQualityError(self._no_face(rgb), code="no_face")
        if len(found) > 1 and margin is None:
            raise FaceQualityError(
                f"The photo shows {len(found)} faces; exactly one is required here (this deployment does not pick "
                "a main face: a template made from the wrong face would let that other person verify as this "
                "subject). Crop the photo to the one person, or take a new photo of them alone.",
                code="multiple_faces")
        index = 0
        if len(found) > 1 and margin is not None:
            h, w = rgb.shape[:2]
            index = main_face_index([(r.left(), r.top(), r.right(), r.bottom()) for r, _ in found], w, h, margin)
        rect, score = found[index]
        return replace(self.embed_box(rgb, rect, score), faces_in_photo=len(found))


_NO_FACE = ("No face was found in the photo. Send a well-lit, frontal photo in which the face is "
            "clearly visible.")
SMALLEST_DETECTED_PX = 40  # HOG, upsampled once: its smallest box is ~37-40 px in the detection image

