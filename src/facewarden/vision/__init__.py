"""Face detection, quality checks, alignment and embedding."""

from facewarden.vision.engine import DetectedFace, FaceEngine, FaceQualityError, ModelInfo

__all__ = ["DetectedFace", "FaceEngine", "FaceQualityError", "ModelInfo"]
