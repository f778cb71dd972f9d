"""Texture change under a head movement: what a 2D warp of one photo cannot show.

A photo animated into a head turn (piecewise-affine or thin-plate warps from landmarks, a driver's landmark
motion transferred to it, per-half "turns") makes every frame a remapping of the same picture: each pixel of a
turned frame is some pixel of the photo, moved. A real head turning in front of a camera is not a remapping of
its frontal view: the nose hides part of the far cheek and uncovers the near one, the shading of each surface
patch changes with its angle to the light, the ear and jaw line appear. That is a physical fact, not a fitted
pattern, and it is cheap to test: align the frontal frame to a turned frame with dense optical flow (DIS, which
can follow any smooth 2D deformation, the attacker's included) and measure what the flow cannot explain.

Camera noise and compression also leave a residual, so the reading is the *excess* over a local floor: the
residual between the turned frame and its nearest neighbour frame (same pose, same noise, same compression).
Noise that changes from frame to frame raises the floor as much as the reading. (A floor over neighbours two
frames away was tried: a real head moves enough in 0.13 s that genuine turns of video/ fell to -1.8.) Noise
held still over neighbouring frames but not from the baseline, like re-lighting, is change the flow cannot
explain: an attacker who adds it passes this check.

Not covered, and said so: an attacker who also re-lights the warped photo as it turns, adds noise held over
neighbouring frames, or uses a 3D-aware generator produces such change; this check raises the cost of the cheap
attack, it does not end the class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from facewarden.imaging.video import Frame
from facewarden.liveness.measures import FrameMeasures

__all__ = ["TextureResult", "texture_change"]

CROP_PX = 200  # faces are compared at one size, whatever the camera's resolution
_INNER = (0.15, 0.85)  # the part of the crop (1.2x the face box) that is face: cheeks, nose, eyes, mouth


@dataclass(frozen=True)
class TextureResult:
    excess: float | None  # median over the peaks of (residual to the baseline frame - local floor); None: not read
    peaks: tuple[int, ...]  # the frames compared with the baseline frame
    pose_change: float  # degrees (|yaw| + |pitch| from the baseline) at the median peak
    reason: str | None = None  # why no reading: "no_baseline", "no_pose_change"


def _crop(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    left, top, right, bottom = box
    side = 1.2 * max(1, right - left)
    s = CROP_PX / side
    m = np.float32([[s, 0, CROP_PX / 2 - (left + right) / 2 * s], [0, s, CROP_PX / 2 - (top + bottom) / 2 * s]])
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.warpAffine(grey, m, (CROP_PX, CROP_PX), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def _unexplained(source: np.ndarray, target: np.ndarray, flow_engine: cv2.DISOpticalFlow) -> float:
    """Mean grey-level difference inside the face after `source` is warped onto `target` by dense flow."""
    flow = flow_engine.calc(target, source, None)
    xs, ys = np.meshgrid(np.arange(CROP_PX, dtype=np.float32), np.arange(CROP_PX, dtype=np.float32))
    warped = cv2.remap(source, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    a, b = (round(x * CROP_PX) for x in _INNER)
    diff = np.abs(warped[a:b, a:b].astype(np.float32) - target[a:b, a:b].astype(np.float32))
    return float(diff.mean())


def texture_change(frames: Sequence[Frame], measures: Sequence[FrameMeasures], *, baseline_s: float = 0.7,
                   peaks: int = 3, min_pose_change: float = 10.0) -> TextureResult:
    """How much of the face's change between its baseline pose and its most turned poses no 2D warp explains."""
    t = np.array([f.t for f in frames], dtype=np.float64)
    yaw = np.array([m.yaw for m in measures], dtype=np.float64)
    pitch = np.array([m.pitch for m in measures], dtype=np.float64)
    face = np.array([m.face and m.landmarks is not None for m in measures]) & np.isfinite(yaw) & np.isfinite(pitch)
    base = np.flatnonzero(face & (t <= t[0] + baseline_s)) if len(t) else np.array([], int)
    if len(base) < 2:
        return TextureResult(None, (), 0.0, "no_baseline")
    b_yaw, b_pitch = float(np.median(yaw[base])), float(np.median(pitch[base]))
    dev = np.where(face, np.abs(yaw - b_yaw) + np.abs(pitch - b_pitch), -1.0)
    ref = int(base[np.argmin(dev[base])])  # the baseline frame nearest the baseline pose
    order = [int(i) for i in np.argsort(-dev) if dev[i] >= min_pose_change][:peaks]
    if not order:
        return TextureResult(None, (), float(dev.max(initial=0.0)), "no_pose_change")
    engine = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    ref_crop = _crop(frames[ref].rgb, measures[ref].landmarks.box)  # type: ignore[union-attr]
    excess = []
    for i in order:
        target = _crop(frames[i].rgb, measures[i].landmarks.box)  # type: ignore[union-attr]
        near = next((j for j in (i - 1, i + 1, i - 2, i + 2) if 0 <= j < len(frames) and face[j]), None)
        floor = 0.0
        if near is not None:
            floor = _unexplained(_crop(frames[near].rgb, measures[near].landmarks.box),  # type: ignore[union-attr]
                                 target, engine)
        excess.append(_unexplained(ref_crop, target, engine) - floor)
    mid = int(np.argsort(excess)[len(excess) // 2])
    return TextureResult(float(np.median(excess)), tuple(order), float(dev[order[mid]]))
