"""Face detection, quality checks, alignment and embedding, behind the `Embedder` protocol.

`FaceEngine` (dlib) is imported on first use only, so the protocol, the distance functions and the gallery that
shares them load without the model library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from facewarden.vision.embedder import DetectedFace, Embedder, FaceQualityError, ModelInfo

if TYPE_CHECKING:
    from facewarden.vision.engine import FaceEngine

__all__ = ["DetectedFace", "Embedder", "FaceEngine", "FaceQualityError", "ModelInfo"]


def __getattr__(name: str) -> Any:
    if name == "FaceEngine":
        from facewarden.vision.engine import FaceEngine

        return FaceEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
