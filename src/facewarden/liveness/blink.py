"""Eye openness per frame and blink detection against the session's own baseline.

With the 5-point landmarks only the eye corners are known, so openness is read from the pixels of the eye
opening they define: the region is warped to a canonical patch (40 px per eye width, rotated with the eye line)
and scored as sqrt(gradient energy x contrast), both divided by the brightness of the skin under the eye. An
open eye shows iris, sclera and lid edges; a closed one shows smooth lid skin, so both terms drop. The value
has no absolute meaning (it depends on the person, light and camera): a blink is a short dip relative to the
frames around it and below the session's baseline (median of its first frames), never a fixed threshold.
Measured on the project's real videos against the 68-point eye aspect ratio: real blinks dip to 0.5-0.8 of
the surrounding level.

Opt-in (non-commercial 68-point model): the eye aspect ratio (Soukupova & Cech 2016) from the eyelid points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from facewarden.liveness.landmarks import FaceLandmarks

_PX = 40  # patch pixels per eye width (inner-to-outer corner)
_PATCH = 32
_ORIGIN = (16.0, 12.0)  # patch pixel of the corners' midpoint: the patch spans x in [-0.4, 0.4], y in [-0.3, 0.5]
# Measured (68-point contours in 5-point eye coordinates, real videos): the lids lie at y = -0.21 and +0.11.
_OPENING = (slice(2, 17), slice(2, 30))  # y in [-0.25, 0.12], x in [-0.35, 0.35]
_SKIN = (slice(22, 30), slice(0, 32))  # y in [0.25, 0.45]: skin under the lower lid


@dataclass(frozen=True)
class Blink:
    t: float  # time of the deepest frame
    depth: float  # openness there / the higher of the levels around it (lower = deeper)
    level: float  # openness there / the session baseline


@dataclass(frozen=True)
class BlinkThresholds:
    dip: float  # the frame must fall below dip x the open level on both sides
    below_baseline: float  # and below this fraction of the session baseline
    window_s: float = 0.4  # how far before and after the dip the open level is looked for


IMAGE_THRESHOLDS = BlinkThresholds(dip=0.8, below_baseline=0.9)
EAR_THRESHOLDS = BlinkThresholds(dip=0.7, below_baseline=0.85)


def _eye_patch(rgb: np.ndarray, outer: np.ndarray, inner: np.ndarray, u: np.ndarray) -> np.ndarray:
    v = np.array([-u[1], u[0]])
    width = float(np.linalg.norm(outer - inner))
    s = width / _PX
    centre = (outer + inner) / 2.0
    m = np.array([[s * u[0], s * v[0], 0.0], [s * u[1], s * v[1], 0.0]])
    m[:, 2] = centre - m[:, :2] @ np.array(_ORIGIN)
    patch = cv2.warpAffine(rgb, m, (_PATCH, _PATCH), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _patch_openness(gray: np.ndarray) -> float:
    region = gray[_OPENING]
    skin = max(float(np.median(gray[_SKIN])), 1.0)
    grad = float(np.abs(np.diff(region, axis=0)).mean() + np.abs(np.diff(region, axis=1)).mean())
    return math.sqrt(grad * float(region.std())) / skin


def image_openness(rgb: np.ndarray, lm: FaceLandmarks) -> float:
    """Eye openness from the pixels between the eye corners (any landmark layout), both eyes averaged."""
    (lo, li), (ro, ri) = lm.left_eye, lm.right_eye
    axis = (ro - lo).astype(np.float64)
    u = axis / max(float(np.linalg.norm(axis)), 1e-6)
    values = [_patch_openness(_eye_patch(rgb, o.astype(np.float64), i.astype(np.float64), u))
              for o, i in ((lo, li), (ro, ri))]
    return float(np.mean(values))


def eye_aspect_ratio(lm: FaceLandmarks) -> float:
    """Mean eye aspect ratio of both eyes; needs the 68-point layout."""
    if lm.model != "dlib68":
        raise ValueError("the eye aspect ratio needs the 68-point landmarks")
    p = lm.points.astype(np.float64)

    def ear(e: np.ndarray) -> float:
        return float((np.linalg.norm(e[1] - e[5]) + np.linalg.norm(e[2] - e[4])) / (2 * np.linalg.norm(e[0] - e[3])))

    return (ear(p[36:42]) + ear(p[42:48])) / 2.0


def eye_openness(rgb: np.ndarray, lm: FaceLandmarks) -> float:
    """The openness measure that fits the landmark model: EAR for 68 points, the image measure for 5."""
    return eye_aspect_ratio(lm) if lm.model == "dlib68" else image_openness(rgb, lm)


def thresholds_for(model: str) -> BlinkThresholds:
    return EAR_THRESHOLDS if model == "dlib68" else IMAGE_THRESHOLDS


def session_baseline(t: Sequence[float], values: Sequence[float], baseline_s: float = 1.0,
                     min_frames: int = 3) -> float | None:
    """Median of the valid values in the first `baseline_s` seconds (None when too few)."""
    ts = np.asarray(t, dtype=np.float64)
    vs = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(vs) & (ts <= ts[0] + baseline_s) if len(ts) else np.zeros(0, bool)
    if ok.sum() < min_frames:
        return None
    return float(np.median(vs[ok]))


def detect_blinks(t: Sequence[float], values: Sequence[float], thresholds: BlinkThresholds = IMAGE_THRESHOLDS,
                  baseline: float | None = None) -> list[Blink]:
    """Short dips of openness: a local minimum below `dip` x the open level on both sides within `window_s`,
    and below `below_baseline` x the session baseline. NaN marks frames without a usable face."""
    ts = np.asarray(t, dtype=np.float64)
    vs = np.asarray(values, dtype=np.float64)
    if baseline is None:
        baseline = session_baseline(ts, vs)
    if baseline is None or not math.isfinite(baseline) or baseline <= 0:
        return []
    valid = np.isfinite(vs)
    blinks: list[Blink] = []
    w = thresholds.window_s
    for i in np.flatnonzero(valid):
        before = valid & (ts >= ts[i] - w) & (ts < ts[i])
        after = valid & (ts > ts[i]) & (ts <= ts[i] + w)
        if not before.any() or not after.any():
            continue
        near = valid & (np.abs(ts - ts[i]) <= 0.15)
        if vs[i] > vs[near].min() or (blinks and ts[i] - blinks[-1].t < 0.2):
            continue  # not the deepest frame of this dip
        level = min(vs[before].max(), vs[after].max())
        if level <= 0:
            continue
        if vs[i] < thresholds.dip * level and vs[i] < thresholds.below_baseline * baseline:
            blinks.append(Blink(t=float(ts[i]), depth=float(vs[i] / level), level=float(vs[i] / baseline)))
    return blinks
