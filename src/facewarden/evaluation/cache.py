"""A private on-disk cache of what the face pipeline made of each evaluation photo, so each photo is embedded
once across runs. Keyed by the photo's SHA-256 and the pipeline's options and model; nothing is printed.

One folder per (options, model): ``faces.npz`` (embeddings by photo digest) and ``meta.json`` (box, scores or
the failure code by photo digest). The folder is created with mode 0700: embeddings are biometric data.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from facewarden.vision.batch import BatchResult, EngineOptions

__all__ = ["EmbeddingCache"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class EmbeddingCache:
    def __init__(self, folder: Path, opts: EngineOptions, whole_image_fallback: bool) -> None:
        from facewarden.vision.engine import model_info

        key = json.dumps({"opts": asdict(opts), "whole": whole_image_fallback, "model": model_info().label},
                         sort_keys=True)
        self.dir = Path(folder) / hashlib.sha256(key.encode()).hexdigest()[:16]
        self._digests: dict[Path, str] = {}

    def _load(self) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        if not (self.dir / "meta.json").is_file():
            return {}, {}
        meta = json.loads((self.dir / "meta.json").read_text())
        with np.load(self.dir / "faces.npz") as npz:
            vectors = {k: npz[k] for k in npz.files}
        return vectors, meta

    def lookup(self, paths: Iterable[Path]) -> dict[Path, BatchResult]:
        from facewarden.vision.batch import BatchResult
        from facewarden.vision.embedder import DetectedFace

        vectors, meta = self._load()
        found: dict[Path, BatchResult] = {}
        for path in paths:
            d = self._digests.setdefault(path, _digest(path))
            m = meta.get(d)
            if m is None:
                continue
            if m.get("code"):
                found[path] = BatchResult(path, None, m["code"], m.get("error"))
            elif d in vectors:
                found[path] = BatchResult(path, DetectedFace(
                    tuple(m["box"]), vectors[d], m["sharpness"], m["detector_score"],  # type: ignore[arg-type]
                    m.get("quality", 1.0)))
        return found

    def save(self, results: Iterable[BatchResult]) -> None:
        vectors, meta = self._load()
        for res in results:
            d = self._digests.setdefault(res.path, _digest(res.path))
            if res.face is None:
                meta[d] = {"code": res.error_code or "error", "error": res.error}
            else:
                f = res.face
                vectors[d] = np.asarray(f.embedding, dtype=np.float32)
                meta[d] = {"box": [int(v) for v in f.box], "sharpness": float(f.sharpness),
                           "detector_score": float(f.detector_score), "quality": float(getattr(f, "quality", 1.0))}
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.dir, 0o700)
        tmp = self.dir / "faces.tmp.npz"
        np.savez(tmp, **vectors)
        tmp.replace(self.dir / "faces.npz")
        (self.dir / "meta.json.tmp").write_text(json.dumps(meta))
        (self.dir / "meta.json.tmp").replace(self.dir / "meta.json")
