"""The surface check: is the face one plane (a photo or a screen) or a head?

Pairs of frames whose head pose differs by >= 8 degrees are aligned with the best homography (LK tracks for
the start, then ECC on the face at ~48 px per eye width) and the misalignment left inside the face is read
(1 - ZNCC). A plane aligns almost perfectly; a turning head cannot be aligned by one homography (nose against
cheeks). Measured on the attack set: flat photos and prints <= 0.009, screens (glare and moire do not move with
the screen) <= 0.041, genuine clips >= 0.031; planar below 0.02. This replaces `depth.planarity`'s decision:
its LK-track residual put adaptively tilted photos at up to 0.05 and two genuine clips at 0.014-0.019, both
sides of its 0.02 threshold. That residual is still computed on the same pairs and kept in the pair's record.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from facewarden.imaging.video import Frame
from facewarden.liveness.depth import homography_residual, track_both_ways
from facewarden.liveness.landmarks import FaceLandmarks
from facewarden.liveness.measures import FrameMeasures

__all__ = ["SurfaceResult", "surface_misalignment"]

_EYE_PX = 48.0  # working scale: pixels per eye width
_CROP_EYES = 2.6  # crop side in eye widths (the face ellipse is 1.5 x 1.7)
_ECC_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 60, 1e-5)


@dataclass(frozen=True)
class SurfaceResult:
    planar: bool | None  # None: too little pose change or no usable pair
    misalignment: float  # median over pairs of 1 - ZNCC after the best homography (nan when inconclusive)
    pairs: tuple[dict[str, Any], ...]
    reason: str


def _centre(lm: FaceLandmarks) -> np.ndarray:
    return (lm.left_eye[0] + lm.right_eye[0] + lm.nose).astype(np.float64) / 3.0


def _zncc_residual(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return 1.0 - float((a * b).sum()) / den if den > 0 else 1.0


def _pair_misalignment(g_ref: np.ndarray, g_other: np.ndarray, lm_ref: FaceLandmarks, lm_other: FaceLandmarks,
                       src: np.ndarray, dst: np.ndarray) -> dict[str, Any] | None:
    """Align `g_other` onto `g_ref` with one homography and return what stays misaligned inside the face."""
    hom = None
    track_p90 = None
    if len(src) >= 12:
        hom, _ = cv2.findHomography(src.astype(np.float64), dst.astype(np.float64), cv2.LMEDS)
        r = homography_residual(src, dst, lm_other.eye_distance, hom) if hom is not None else None
        track_p90 = r[1] if r else None
    if hom is None:
        affine, _ = cv2.estimateAffinePartial2D(lm_ref.five_points(), lm_other.five_points(), method=cv2.LMEDS)
        if affine is None:
            return None
        hom = np.vstack([affine, [0.0, 0.0, 1.0]])
    # both frames at the same working scale, cropped to the same size around the face (ECC needs equal sizes)
    f = min(1.0, _EYE_PX / max(lm_ref.eye_distance, 1.0))
    side = round(_CROP_EYES * lm_ref.eye_distance * f) | 1
    c_ref = _centre(lm_ref)
    c_other = cv2.perspectiveTransform(c_ref.reshape(1, 1, 2), hom).reshape(2)

    def prep(gray: np.ndarray, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1.0 else gray
        g = cv2.GaussianBlur(g.astype(np.float32), (0, 0), 1.0)  # noise, JPEG and halftone are not relief
        c = np.round(centre * f)
        return cv2.getRectSubPix(g, (side, side), (float(c[0]), float(c[1]))), c - side // 2

    t_ref, o_ref = prep(g_ref, c_ref)
    t_other, o_other = prep(g_other, c_other)
    scale = np.diag([f, f, 1.0])
    shift_ref = np.array([[1.0, 0, -o_ref[0]], [0, 1.0, -o_ref[1]], [0, 0, 1.0]])
    shift_other = np.array([[1.0, 0, -o_other[0]], [0, 1.0, -o_other[1]], [0, 0, 1.0]])
    warp = shift_other @ scale @ hom @ np.linalg.inv(scale) @ np.linalg.inv(shift_ref)
    warp = (warp / warp[2, 2]).astype(np.float32)
    mask = np.zeros((side, side), np.uint8)
    (lo, _), (ro, _) = lm_ref.left_eye, lm_ref.right_eye
    angle = math.degrees(math.atan2(float(ro[1] - lo[1]), float(ro[0] - lo[0])))
    eye = lm_ref.eye_distance * f
    cv2.ellipse(mask, (side // 2, side // 2), (round(0.75 * eye), round(0.85 * eye)), angle, 0, 360, 255, -1)
    inside = mask > 0

    def residual(h: np.ndarray) -> float:
        back = cv2.warpPerspective(t_other, h, (side, side), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        return _zncc_residual(t_ref[inside], back[inside])

    start = residual(warp)
    try:
        _, refined = cv2.findTransformECC(t_ref, t_other, warp.copy(), cv2.MOTION_HOMOGRAPHY, _ECC_CRITERIA, mask, 1)
        best = min(start, residual(refined))
    except cv2.error:  # ECC did not converge: the tracked homography is the best plane there is
        best = start
    return {"misalignment": best, "track_residual_p90": track_p90, "tracks": len(src)}


def surface_misalignment(frames: Sequence[Frame], measures: Sequence[FrameMeasures], *, n_pairs: int = 3,
                         min_pose_change: float = 8.0, planar_below: float = 0.02) -> SurfaceResult:
    """Is the face one plane? The reference is the frame nearest the session's median pose; the others are the
    frames whose (yaw, pitch) differ most from it (at least `min_pose_change`, >= 3 frames apart)."""
    present = [i for i, m in enumerate(measures)
               if m.landmarks is not None and math.isfinite(m.yaw) and math.isfinite(m.pitch)]
    if len(present) < 2:
        return SurfaceResult(None, math.nan, (), "too_few_faces")
    pose = np.array([[measures[i].yaw, measures[i].pitch] for i in present])
    ref = present[int(np.argmin(np.linalg.norm(pose - np.median(pose, axis=0), axis=1)))]
    p_ref = np.array([measures[ref].yaw, measures[ref].pitch])
    change = {j: float(np.linalg.norm(np.array([measures[j].yaw, measures[j].pitch]) - p_ref)) for j in present}
    targets: list[int] = []
    for j in sorted((j for j in present if change[j] >= min_pose_change), key=lambda j: -change[j]):
        if all(abs(j - k) >= 3 for k in targets):
            targets.append(j)
        if len(targets) == n_pairs:
            break
    if not targets:
        return SurfaceResult(None, math.nan, (), "too_little_motion")
    lm_ref = measures[ref].landmarks
    assert lm_ref is not None
    lo, hi = min([ref, *targets]), max([ref, *targets])
    grays = {k: cv2.cvtColor(frames[k].rgb, cv2.COLOR_RGB2GRAY) for k in range(lo, hi + 1)}
    tracks = track_both_ways(grays, ref, lo, hi, lm_ref)
    pairs = []
    for j in targets:
        lm_j = measures[j].landmarks
        assert lm_j is not None
        p_src, p_dst = tracks.get(j, (np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)))
        src = np.concatenate([lm_ref.five_points(), p_src])
        dst = np.concatenate([lm_j.five_points(), p_dst])
        r = _pair_misalignment(grays[ref], grays[j], lm_ref, lm_j, src, dst)
        if r is not None:
            pairs.append({"frames": [ref, j], "pose_change_deg": round(change[j], 2),
                          "misalignment": round(r["misalignment"], 5),
                          "track_residual_p90": None if r["track_residual_p90"] is None
                          else round(r["track_residual_p90"], 5), "tracks": r["tracks"]})
    if not pairs:
        return SurfaceResult(None, math.nan, (), "no_alignment")
    value = float(np.median([p["misalignment"] for p in pairs]))
    return SurfaceResult(value < planar_below, value, tuple(pairs), "measured")
