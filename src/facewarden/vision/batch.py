"""Embedding many photos on every core: one FaceEngine per worker process (dlib holds the GIL)."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from facewarden.config import Settings
from facewarden.errors import FaceWardenError
from facewarden.imaging import ImageLimits, decode_image
from facewarden.vision.embedder import DetectedFace
from facewarden.vision.engine import FaceEngine


@dataclass(frozen=True)
class EngineOptions:
    detector: str = "hog"
    detect_max_side: int = 640
    min_face_px: int = 32
    min_sharpness: float = 4.8
    max_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000
    min_quality: float = 0.5
    main_face: bool = True  # the main face of a photo that shows several (selection.py), like enrolment
    main_face_margin: float = 2.0

    @classmethod
    def from_settings(cls, s: Settings) -> EngineOptions:
        return cls(s.detector, s.detect_max_side, s.min_face_px, s.min_sharpness, s.max_upload_bytes,
                   s.max_image_pixels, s.min_quality, s.enrol_main_face, s.dominant_face_margin)

    def engine(self) -> FaceEngine:
        return FaceEngine(detector=self.detector, detect_max_side=self.detect_max_side,
                          min_face_px=self.min_face_px, min_sharpness=self.min_sharpness,
                          min_quality=self.min_quality)


@dataclass(frozen=True)
class BatchResult:
    path: Path
    face: DetectedFace | None
    error_code: str | None = None
    error: str | None = None


_engine: FaceEngine | None = None
_opts: EngineOptions | None = None


def _init(opts: EngineOptions) -> None:
    global _engine, _opts
    _opts = opts
    _engine = opts.engine()


def _embed_one(args: tuple[Path, bool]) -> BatchResult:
    path, whole_image_fallback = args
    assert _engine is not None and _opts is not None
    try:
        rgb = decode_image(path.read_bytes(), ImageLimits(_opts.max_bytes, _opts.max_pixels))
        if _opts.main_face:
            face = _engine.main_face(rgb, _opts.main_face_margin, whole_image_fallback=whole_image_fallback)
        else:
            face = _engine.single_face(rgb, whole_image_fallback=whole_image_fallback)
        return BatchResult(path, face)
    except FaceWardenError as exc:
        return BatchResult(path, None, exc.code, exc.message)


def embed_files(paths: list[Path], opts: EngineOptions, *, workers: int = 2,
                whole_image_fallback: bool = False) -> Iterator[BatchResult]:
    """Yield one result per path, in input order, as they complete in order."""
    jobs = [(p, whole_image_fallback) for p in paths]
    if workers <= 1:
        _init(opts)
        yield from map(_embed_one, jobs)
        return
    ctx = mp.get_context("spawn")  # dlib objects must not be forked mid-use
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init,
                             initargs=(opts,)) as pool:
        yield from pool.map(_embed_one, jobs, chunksize=1)
