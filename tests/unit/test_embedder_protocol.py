"""The Embedder protocol: a model other than dlib plugs in with its own dimension and metric, and the gallery measures
distance exactly as the embedder does."""

from __future__ import annotations

import numpy as np
import pytest

from facewarden.errors import ErrorKind, Unprocessable
from facewarden.gallery import GalleryEntry, make_gallery
from facewarden.vision import DetectedFace, Embedder, FaceQualityError, ModelInfo
from facewarden.vision.distance import distance


class FakeEmbedder:
    """A deterministic stand-in: the embedding is the mean colour of four image quadrants (12-D), cosine metric."""

    model = ModelInfo("fake_quadrants", "1")
    dimension = 12
    metric = "cosine"

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        return distance(self.metric, a, b)

    def single_face(self, rgb: np.ndarray, *, whole_image_fallback: bool = False) -> DetectedFace:
        if not rgb.any():
            raise FaceQualityError("No face in a black image.", code="no_face")
        h, w = rgb.shape[0] // 2, rgb.shape[1] // 2
        quads = [rgb[:h, :w], rgb[:h, w:], rgb[h:, :w], rgb[h:, w:]]
        vec = np.concatenate([q.reshape(-1, 3).mean(axis=0) for q in quads]).astype(np.float32)
        return DetectedFace((0, 0, rgb.shape[1] - 1, rgb.shape[0] - 1), vec, sharpness=100.0, detector_score=1.0)

    def faces(self, rgb: np.ndarray, *, check_quality: bool = True) -> list[DetectedFace]:
        return [self.single_face(rgb)]


def test_a_fake_embedder_satisfies_the_protocol_and_drives_the_gallery() -> None:
    embedder = FakeEmbedder()
    assert isinstance(embedder, Embedder)
    assert not isinstance(object(), Embedder)
    gallery = make_gallery("memory", dimension=embedder.dimension, metric=embedder.metric)
    rng = np.random.default_rng(3)
    photos = {f"s{i}": rng.integers(1, 256, size=(32, 32, 3), dtype=np.uint8) for i in range(20)}
    enrolled = {s: embedder.single_face(rgb).embedding for s, rgb in photos.items()}
    gallery.add([GalleryEntry("t", s, f"{s}/0", "access", vec) for s, vec in enrolled.items()])
    probe = embedder.faces(photos["s7"])[0].embedding
    found = gallery.search("t", probe, threshold=2.0, max_candidates=20)
    assert found[0].subject_id == "s7" and found[0].distance == pytest.approx(0.0, abs=1e-6)
    for c in found:  # 1:N and 1:1 agree to float32 precision
        assert c.distance == pytest.approx(embedder.distance(probe, enrolled[c.subject_id]), abs=1e-5)
    with pytest.raises(FaceQualityError):
        embedder.single_face(np.zeros((8, 8, 3), np.uint8))


def test_face_quality_error_is_unprocessable() -> None:
    err = FaceQualityError("No face.", code="no_face")
    assert isinstance(err, Unprocessable) and err.kind is ErrorKind.UNPROCESSABLE and err.code == "no_face"
    assert not hasattr(err, "status")


def test_the_dlib_engine_is_an_embedder() -> None:
    from facewarden.vision import FaceEngine

    engine = FaceEngine()
    assert isinstance(engine, Embedder)
    assert (engine.dimension, engine.metric) == (128, "euclidean")
    assert engine.model.label.startswith("dlib_resnet_v1_128d@dlib-")
    a, b = np.random.default_rng(5).normal(size=(2, 128)).astype(np.float32)
    assert engine.distance(a, b) == pytest.approx(float(np.linalg.norm(a - b)), rel=1e-6)
