"""Per-frame face box and landmarks with dlib.

Default: dlib's 5-point predictor (eye corners + nose base). Its training data (dlib's own 5-point
annotations) is CC0, so the model is usable commercially. Opt-in: the 68-point predictor, whose iBUG 300-W
training data forbids commercial use; it gives eyelid points, hence the eye aspect ratio.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

import cv2
import dlib
import face_recognition_models as frm
import numpy as np

LandmarkModel = Literal["dlib5", "dlib68"]

# Indices of (outer, inner) eye corners and the nose base in each layout. "Left"/"right" are image sides.
_LAYOUT = {
    "dlib5": {"left_eye": (2, 3), "right_eye": (0, 1), "nose": 4},
    "dlib68": {"left_eye": (36, 39), "right_eye": (45, 42), "nose": 33},
}


@dataclass(frozen=True)
class FaceLandmarks:
    box: tuple[int, int, int, int]  # left, top, right, bottom in frame pixels
    points: np.ndarray  # (5, 2) or (68, 2) float32, frame pixels
    model: LandmarkModel
    score: float  # HOG detector score
    faces: int  # faces found in the frame (the largest is the one described)

    @property
    def left_eye(self) -> tuple[np.ndarray, np.ndarray]:
        """(outer, inner) corners of the eye on the image's left (the subject's right eye)."""
        o, i = _LAYOUT[self.model]["left_eye"]
        return self.points[o], self.points[i]

    @property
    def right_eye(self) -> tuple[np.ndarray, np.ndarray]:
        o, i = _LAYOUT[self.model]["right_eye"]
        return self.points[o], self.points[i]

    @property
    def nose(self) -> np.ndarray:
        return self.points[_LAYOUT[self.model]["nose"]]

    @property
    def eye_distance(self) -> float:
        """Outer-corner distance in pixels: the face's scale."""
        return float(np.linalg.norm(self.right_eye[0] - self.left_eye[0]))

    def five_points(self) -> np.ndarray:
        """The 5 points common to both layouts, in dlib's 5-point order."""
        (lo, li), (ro, ri) = self.left_eye, self.right_eye
        return np.stack([ro, ri, lo, li, self.nose]).astype(np.float32)


class LandmarkDetector:
    """HOG detection on a downscaled copy, landmarks at full resolution. One lock guards the dlib objects."""

    def __init__(self, model: LandmarkModel = "dlib5", *, detect_max_side: int = 320, min_face_px: int = 60) -> None:
        if model == "dlib5":
            path = frm.pose_predictor_five_point_model_location()
        elif model == "dlib68":
            path = frm.pose_predictor_model_location()
        else:
            raise ValueError(f"unknown landmark model {model!r}")
        self.model: LandmarkModel = model
        self.detect_max_side = detect_max_side
        self.min_face_px = min_face_px
        self._hog = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(path)
        self._lock = threading.Lock()

    def _detect(self, rgb: np.ndarray) -> tuple[list[tuple[dlib.rectangle, float]], float]:
        h, w = rgb.shape[:2]
        scale = min(1.0, self.detect_max_side / max(h, w))
        small = rgb if scale == 1.0 else cv2.resize(rgb, (round(w * scale), round(h * scale)),
                                                    interpolation=cv2.INTER_AREA)
        with self._lock:
            rects, scores, _ = self._hog.run(small, 0, 0.0)
            if not len(rects):
                # a face below ~80 px in the detection image needs one upsampling (4x the cost)
                rects, scores, _ = self._hog.run(small, 1, 0.0)
        return list(zip(rects, scores, strict=True)), scale

    def locate(self, rgb: np.ndarray) -> FaceLandmarks | None:
        """Landmarks of the largest face, or None when no face of at least `min_face_px` is found."""
        found, scale = self._detect(rgb)
        if not found:
            return None
        h, w = rgb.shape[:2]
        rect, score = max(found, key=lambda rs: rs[0].area())
        box = dlib.rectangle(max(0, round(rect.left() / scale)), max(0, round(rect.top() / scale)),
                             min(w - 1, round(rect.right() / scale)), min(h - 1, round(rect.bottom() / scale)))
        if min(box.width(), box.height()) < self.min_face_px:
            return None
        with self._lock:
            shape = self._shape(rgb, box)
        pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
        return FaceLandmarks(box=(box.left(), box.top(), box.right(), box.bottom()), points=pts,
                             model=self.model, score=float(score), faces=len(found))
