"""Replays an attacker would try next: a genuine recording (whose original was accepted and is on record) played
at another speed with interpolated frames, zoomed and colour-shifted, or with frames dropped. Each stays a
recording of the same moment; only its timing, framing or colours change.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from facewarden.evaluation.attack_effects import camera
from facewarden.imaging.video import Frame


def stretched(times: np.ndarray, images: Sequence[np.ndarray], t0: float, t1: float, fps: float,
              speed: float) -> list[Frame]:
    """The part t0..t1 played at `speed` (0.8: slower, so longer) and re-sampled at `fps`, each output frame
    blended from the two native frames around its source time (frame-rate conversion by interpolation)."""
    out: list[Frame] = []
    n = int((t1 - t0) / speed * fps)
    for k in range(n):
        tau = k / fps
        t = t0 + tau * speed
        j = int(np.clip(np.searchsorted(times, t), 1, len(times) - 1))
        a, b = j - 1, j
        span = float(times[b] - times[a]) or 1.0
        w = float(np.clip((t - times[a]) / span, 0.0, 1.0))
        rgb = (1.0 - w) * images[a].astype(np.float32) + w * images[b].astype(np.float32)
        out.append(Frame(np.clip(rgb + 0.5, 0, 255).astype(np.uint8), round(tau, 6)))
    return out


def zoomed_and_tinted(frames: Sequence[Frame], rng: np.random.Generator, zoom: float = 0.15,
                      gains: tuple[float, float, float] = (1.12, 1.0, 0.86)) -> list[Frame]:
    """Each frame cropped to 1/(1+zoom) around its centre and scaled back (a 15 % zoom), its colour channels
    multiplied by `gains` (a warm cast), then through a camera (noise, JPEG)."""
    out = []
    for f in frames:
        h, w = f.rgb.shape[:2]
        ch, cw = round(h / (1 + zoom)), round(w / (1 + zoom))
        y, x = (h - ch) // 2, (w - cw) // 2
        crop = cv2.resize(f.rgb[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_LINEAR)
        tinted = np.clip(crop.astype(np.float32) * np.array(gains, np.float32), 0, 255).astype(np.uint8)
        out.append(Frame(camera(tinted, rng, noise=1.0, quality=80), f.t))
    return out


def dropped(frames: Sequence[Frame], every: int = 3) -> list[Frame]:
    """Every `every`-th frame removed, timestamps kept (a variable frame rate with gaps)."""
    return [f for k, f in enumerate(frames) if k % every != every - 1]
