"""What turns a genuine frame into an attack instrument as a camera sees it: a print, a screen, glare and
moire, the room behind, and the camera's own noise and compression."""

from __future__ import annotations

import io
import math

import cv2
import numpy as np
from PIL import Image

__all__ = ["camera", "degrade_print", "glare", "moire", "room_background", "screen_content"]


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def camera(rgb: np.ndarray, rng: np.random.Generator, noise: float = 1.5, quality: int = 88) -> np.ndarray:
    """What a camera adds to whatever it films: sensor noise and JPEG compression."""
    noisy = rgb.astype(np.float32) + rng.normal(0.0, noise, rgb.shape).astype(np.float32)
    return _jpeg(np.clip(noisy, 0, 255).astype(np.uint8), quality)


def _smooth_field(shape: tuple[int, int], rng: np.random.Generator, scale: float) -> np.ndarray:
    """Zero-mean, unit-ish random field smoothed over `scale` pixels."""
    f = cv2.GaussianBlur(rng.normal(0.0, 1.0, shape).astype(np.float32), (0, 0), scale)
    return f / max(float(f.std()), 1e-6)


def room_background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A room behind the held photo or screen: a smooth, dim colour gradient with texture."""
    base = rng.uniform(60, 150, 3).astype(np.float32)
    light = _smooth_field((h, w), rng, 60.0)[..., None] * 18.0
    texture = _smooth_field((h, w), rng, 2.0)[..., None] * 4.0
    return np.clip(base + light + texture, 0, 255).astype(np.uint8)


def degrade_print(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A consumer inkjet/laser print of the image: duller, warmer colours on paper, halftone dots, slight blur,
    paper texture."""
    img = rgb.astype(np.float32) / 255.0
    grey = img.mean(axis=2, keepdims=True)
    img = grey + 0.75 * (img - grey)  # prints lose saturation
    img = 0.08 + 0.84 * img  # and contrast: ink never reaches black, paper is not white
    img *= np.array([1.0, 0.97, 0.90], np.float32)  # warm paper white, weak blue ink
    h, w = img.shape[:2]
    # halftone: each channel thresholded against a rotated dot screen, mixed with the continuous tone (the
    # camera does not resolve the dots fully)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for c, angle in enumerate((15.0, 75.0, 0.0)):
        a = math.radians(angle)
        u, v = xx * math.cos(a) + yy * math.sin(a), -xx * math.sin(a) + yy * math.cos(a)
        screen = 0.5 + 0.25 * (np.cos(2 * math.pi * u / 4.0) + np.cos(2 * math.pi * v / 4.0))
        dots = (img[..., c] > screen).astype(np.float32)
        img[..., c] = 0.6 * img[..., c] + 0.4 * dots
    img = cv2.GaussianBlur(img, (0, 0), 1.1)
    paper = 1.0 + 0.035 * _smooth_field((h, w), rng, 3.0) + 0.02 * _smooth_field((h, w), rng, 25.0)
    img *= paper[..., None]
    return np.clip(img * 255.0, 0, 255).astype(np.uint8)


def screen_content(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The image shown on a phone/tablet screen: gamma and a blue cast, a visible RGB pixel grid (which the
    camera's resampling aliases into moiré), inside a black bezel."""
    img = (rgb.astype(np.float32) / 255.0) ** 0.8  # screens shown to a camera look brighter, flatter
    img *= np.array([0.92, 0.98, 1.08], np.float32)
    h, w = img.shape[:2]
    # subpixel stripes at 3 px per pixel triad, plus the dark gaps between pixel rows
    cols = np.arange(w) % 3
    stripe = np.stack([np.where(cols == c, 1.06, 0.97) for c in range(3)], axis=-1).astype(np.float32)
    rows = np.where(np.arange(h) % 3 == 2, 0.9, 1.0).astype(np.float32)[:, None, None]
    img = img * stripe[None, :, :] * rows
    pad_x, pad_y = int(0.07 * w), int(0.07 * h)
    framed = np.zeros((h + 2 * pad_y, w + 2 * pad_x, 3), np.float32) + 0.04  # bezel
    framed[pad_y:pad_y + h, pad_x:pad_x + w] = img
    framed = cv2.resize(framed, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(framed * 255.0, 0, 255).astype(np.uint8)


def glare(rgb: np.ndarray, rng: np.random.Generator, at: tuple[float, float]) -> np.ndarray:
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = at[0] * w, at[1] * h
    spot = np.exp(-(((xx - cx) / (0.18 * w)) ** 2 + ((yy - cy) / (0.12 * h)) ** 2))
    return np.clip(rgb.astype(np.float32) + 70.0 * spot[..., None], 0, 255).astype(np.uint8)


def moire(rgb: np.ndarray, phase: float) -> np.ndarray:
    """Low-frequency interference bands, as a camera filming a pixel grid records them."""
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    band = 1.0 + 0.05 * np.sin(2 * math.pi * (0.8 * xx + 0.6 * yy) / 23.0 + phase) \
        * np.sin(2 * math.pi * (-0.5 * xx + 0.86 * yy) / 31.0 + 0.7 * phase)
    return np.clip(rgb.astype(np.float32) * band[..., None], 0, 255).astype(np.uint8)

