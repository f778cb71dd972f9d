"""Passive presentation-attack detection with the two MiniFASNet ONNX models (Silent-Face-Anti-Spoofing).

The models are loaded from a configured folder, never downloaded. Each file's bytes are hashed and compared
with the pinned SHA-256 before onnxruntime sees them, and the very bytes that were hashed are the ones loaded
(no second read of the file that could race a swap). Input conventions (the folder's README): BGR, raw 0-255,
1x3x80x80, the face box scaled by 2.7 (v2) or 4.0 (v1se) about its centre, capped to fit and shifted inside
the image; softmax index 1 = genuine. The score is the genuine probability averaged over both models.
A passive model alone does not stop a digitally injected genuine video: it is one signal among several.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facewarden.errors import Unavailable

GENUINE_INDEX = 1


@dataclass(frozen=True)
class PadModelSpec:
    filename: str
    sha256: str
    crop_scale: float


DEFAULT_MODELS = (
    PadModelSpec("minifasnet_v2.onnx", "055c2fc1647ce440b854bd75fd45669e04a117712a7c5b7986cc6b370b43f938", 2.7),
    PadModelSpec("minifasnet_v1se.onnx", "d0700ecf7111bac47d60477cf2e45d6c2e6a49e7cfd89bfbef0239056ed3e01b", 4.0),
)


class PadModelError(Unavailable):
    """The PAD models are missing or not the pinned files: a deployment fault, not a client error."""

    code = "pad_model_unavailable"


def crop_face(bgr: np.ndarray, box: tuple[float, float, float, float], scale: float, size: int = 80) -> np.ndarray:
    """The README's crop: box (x, y, w, h) scaled about its centre, capped to fit, shifted inside, resized."""
    img_h, img_w = bgr.shape[:2]
    x, y, w, h = box
    w, h = max(w, 1.0), max(h, 1.0)
    scale = min(scale, (img_h - 1) / h, (img_w - 1) / w)
    cx, cy = x + w / 2.0, y + h / 2.0
    new_w, new_h = w * scale, h * scale
    left, top = cx - new_w / 2.0, cy - new_h / 2.0
    right, bottom = cx + new_w / 2.0, cy + new_h / 2.0
    if left < 0:
        right -= left
        left = 0
    if top < 0:
        bottom -= top
        top = 0
    if right > img_w - 1:
        left -= right - (img_w - 1)
        right = img_w - 1
    if bottom > img_h - 1:
        top -= bottom - (img_h - 1)
        bottom = img_h - 1
    crop = bgr[int(top):int(bottom) + 1, int(left):int(right) + 1]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)


class PadScorer:
    """Both models, loaded once. onnxruntime sessions are thread-safe for `run`; a lock keeps CPU use predictable."""

    def __init__(self, model_dir: str | Path, specs: Sequence[PadModelSpec] = DEFAULT_MODELS,
                 threads: int = 1) -> None:
        import onnxruntime as ort  # imported here: only deployments that enable PAD pay for it

        self.specs = tuple(specs)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._sessions = []
        for spec in self.specs:
            path = Path(model_dir) / spec.filename
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise PadModelError(f"The PAD model {path} cannot be read ({exc.strerror}). Point the PAD model "
                                    "directory at the folder that holds the pinned MiniFASNet files.") from None
            digest = hashlib.sha256(data).hexdigest()
            if digest != spec.sha256:
                raise PadModelError(f"The PAD model {path} has SHA-256 {digest}, not the pinned {spec.sha256}; "
                                    "refusing to load it. Restore the original file.")
            self._sessions.append(ort.InferenceSession(data, options, providers=["CPUExecutionProvider"]))
        self._inputs = [s.get_inputs()[0].name for s in self._sessions]
        self._lock = threading.Lock()

    def score(self, rgb: np.ndarray, box: tuple[int, int, int, int]) -> float:
        """Genuine probability (0-1) of the face in `box` (left, top, right, bottom) of an RGB frame."""
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        left, top, right, bottom = box
        xywh = (float(left), float(top), float(right - left + 1), float(bottom - top + 1))
        probs = []
        with self._lock:
            for spec, session, name in zip(self.specs, self._sessions, self._inputs, strict=True):
                x = crop_face(bgr, xywh, spec.crop_scale).astype(np.float32).transpose(2, 0, 1)[None]
                logits = session.run(None, {name: x})[0][0].astype(np.float64)
                e = np.exp(logits - logits.max())
                probs.append(e / e.sum())
        return float(np.mean(probs, axis=0)[GENUINE_INDEX])

    def score_frames(self, frames: Sequence[np.ndarray], boxes: Sequence[tuple[int, int, int, int] | None],
                     max_frames: int = 8) -> list[float]:
        """Scores of up to `max_frames` frames spread evenly over those with a face (PAD is the dearest block)."""
        found = [(frame, box) for frame, box in zip(frames, boxes, strict=True) if box is not None]
        if len(found) > max_frames:
            picks = np.linspace(0, len(found) - 1, max(1, max_frames)).round().astype(int)
            found = [found[k] for k in picks]
        return [self.score(frame, box) for frame, box in found]
