"""What the service needs from a face model, so another model can replace dlib without touching the use cases.

Pure (no model library is imported here): tests and the gallery can use these types without loading dlib.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from facewarden.errors import Unprocessable


class FaceQualityError(Unprocessable):
    """The photo is well-formed but holds no usable face (none, several, too small, too blurred)."""


@dataclass(frozen=True)
class ModelInfo:
    """Identity of the embedding model, stored with every template."""

    model_id: str
    version: str  # library version + digest of the weights file

    @property
    def label(self) -> str:
        return f"{self.model_id}@{self.version}"


@dataclass(frozen=True)
class DetectedFace:
    box: tuple[int, int, int, int]  # left, top, right, bottom in original pixels
    embedding: np.ndarray  # float32, shape (dimension,)
    sharpness: float
    detector_score: float
    quality: float = 1.0  # vision/quality.py: predicted chance, in [0, 1], that a genuine comparison matches
    faces_in_photo: int = 1  # faces seen in the photo: more than 1 when the main one was picked (selection.py)


@runtime_checkable
class Embedder(Protocol):
    """Turns photos into embeddings. Templates are only comparable within one `model.version`.

    `metric` names a function in `facewarden.vision.distance`; the gallery is built with the same metric and
    `dimension`, so 1:1 and 1:N distances agree and one threshold means the same thing in both.
    """

    model: ModelInfo
    dimension: int
    metric: str

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """Distance between two embeddings of this model; smaller is nearer."""
        ...

    def single_face(self, rgb: np.ndarray, *, whole_image_fallback: bool = False) -> DetectedFace:
        """Exactly one quality-checked face in an RGB uint8 image, else FaceQualityError. With
        `whole_image_fallback`, an image without a detected face is embedded whole (pre-cropped datasets)."""
        ...

    def faces(self, rgb: np.ndarray, *, check_quality: bool = True) -> list[DetectedFace]:
        """Every face in the image, largest first; FaceQualityError when there is none (or, when checking
        quality, when one of them fails the checks)."""
        ...
