"""Planar-attack check: does the face move like one flat surface (a photo or screen) or like a 3D head?

Any motion of a plane (a printed photo tilted, a tablet moved) maps image points of one frame onto the next
by a single homography. A head turning in front of the camera does not: the nose moves against the cheeks
(parallax). So between a reference frame and frames where the face moved, point correspondences inside the
face (the 5 landmarks plus corner features followed frame by frame with pyramidal Lucas-Kanade, each step
kept only when the backward track returns to its start) are fitted with a robust homography, and the
residual is measured in units of the outer-eye-corner distance. The decision reads the 90th percentile of the
residuals: on a real head most tracked points (forehead, cheeks) are nearly coplanar and the parallax sits on
a minority (nose, eye sockets, face outline), which a median would hide. On the project's videos a turning
head gave 0.027-0.105 and a genuine frame moved as a flat photo (perspective warps up to +-35 degrees, JPEG
re-encoded) 0.004-0.016: the threshold is 0.02.

The residual needs motion to be meaningful: pairs are the frames whose yaw differs most from the reference
frame, and with too little change the result is inconclusive.
A replayed video on a screen carries the recorded head's parallax inside it: this check catches photos and
other flat props, not replays (those are for the passive model, the random challenge and the fingerprint).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from facewarden.imaging.video import Frame
from facewarden.liveness.landmarks import FaceLandmarks

_LK = {"winSize": (21, 21), "maxLevel": 3,
       "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)}


@dataclass(frozen=True)
class PairParallax:
    ref: int
    other: int
    points: int  # correspondences used (5 landmarks + surviving tracks)
    shape_change: float  # landmark change after a similarity fit, in eye widths
    residual: float  # median homography residual, in eye widths
    residual_p90: float  # 90th percentile: the decision statistic


@dataclass(frozen=True)
class DepthResult:
    planar: bool | None  # None: not enough motion or points to tell
    parallax: float  # median over the pairs of their 90th-percentile residual, in eye widths (nan: inconclusive)
    pairs: tuple[PairParallax, ...]
    reason: str


def _gray(frame: Frame) -> np.ndarray:
    return cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2GRAY)


def shape_change(a: FaceLandmarks, b: FaceLandmarks) -> float:
    """How much the 5 landmarks' configuration changed beyond a similarity transform, in eye widths."""
    pa, pb = a.five_points().astype(np.float64), b.five_points().astype(np.float64)
    m, _ = cv2.estimateAffinePartial2D(pa, pb, method=cv2.LMEDS)
    if m is None:
        return 0.0
    mapped = pa @ m[:, :2].T + m[:, 2]
    return float(np.sqrt(((mapped - pb) ** 2).sum(axis=1).mean()) / max(b.eye_distance, 1.0))


def _face_mask(shape: tuple[int, ...], lm: FaceLandmarks) -> np.ndarray:
    # an ellipse over forehead, cheeks and mouth around the eyes-nose centroid: the face, little background
    (lo, _), (ro, _) = lm.left_eye, lm.right_eye
    centre = (lo + ro + lm.nose) / 3.0
    w = lm.eye_distance
    axis = (ro - lo) / max(w, 1e-6)
    angle = float(np.degrees(np.arctan2(axis[1], axis[0])))
    mask = np.zeros(shape[:2], np.uint8)
    cv2.ellipse(mask, (round(centre[0]), round(centre[1])), (round(0.75 * w), round(0.85 * w)), angle, 0, 360,
                255, -1)
    return mask


def _corners(gray: np.ndarray, lm: FaceLandmarks, max_corners: int) -> np.ndarray:
    corners = cv2.goodFeaturesToTrack(gray, maxCorners=max_corners, qualityLevel=0.01,
                                      minDistance=max(3.0, lm.eye_distance / 12.0), mask=_face_mask(gray.shape, lm),
                                      blockSize=5)
    return np.zeros((0, 2), np.float32) if corners is None else corners.reshape(-1, 2).astype(np.float32)


def _lk_step(g0: np.ndarray, g1: np.ndarray, p0: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Track p0 from g0 to g1; keep a point only when tracking it back lands within `tol` px of its start."""
    if not len(p0):
        return p0, np.zeros(0, bool)
    p1, st1, _ = cv2.calcOpticalFlowPyrLK(g0, g1, p0.reshape(-1, 1, 2), None, **_LK)
    back, st2, _ = cv2.calcOpticalFlowPyrLK(g1, g0, p1, None, **_LK)
    fb = np.linalg.norm(back.reshape(-1, 2) - p0, axis=1)
    ok = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb < tol)
    return p1.reshape(-1, 2), ok


def track_chain(grays: Sequence[np.ndarray], lm_ref: FaceLandmarks, max_corners: int = 80
                ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Corners of the first image followed through every later one (small steps keep the nose, whose
    parallax is the signal, trackable). Returns the start points and, per image, positions and alive masks."""
    p0 = _corners(grays[0], lm_ref, max_corners)
    tol = max(0.5, 0.01 * lm_ref.eye_distance)
    positions, alive = [p0], [np.ones(len(p0), bool)]
    cur, ok = p0, np.ones(len(p0), bool)
    for g0, g1 in itertools.pairwise(grays):
        nxt, step_ok = _lk_step(g0, g1, cur, tol)
        ok = ok & step_ok
        cur = np.where(ok[:, None], nxt, cur).astype(np.float32)
        positions.append(cur.copy())
        alive.append(ok.copy())
    return p0, positions, alive


def track_both_ways(grays: Mapping[int, np.ndarray], ref: int, lo: int, hi: int, lm_ref: FaceLandmarks
                    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """The reference frame's corners followed forwards to `hi` and backwards to `lo` (grays keyed by frame
    index over lo..hi). Per frame: the start points and their positions there, for the tracks still alive."""
    tracks: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for direction, end in ((1, hi), (-1, lo)):
        idx = list(range(ref, end + direction, direction))
        if len(idx) < 2:
            continue
        p0, positions, alive = track_chain([grays[k] for k in idx], lm_ref)
        for k, pos, ok in zip(idx, positions, alive, strict=True):
            tracks[k] = (p0[ok], pos[ok])
    return tracks


def homography_residual(src: np.ndarray, dst: np.ndarray, scale: float,
                        h: np.ndarray | None = None) -> tuple[float, float] | None:
    """Median and 90th-percentile residual of a robust (LMedS) homography src->dst, divided by `scale`.
    `h`: that homography, when the caller has fitted it already.

    LMedS tolerates up to half the points being off the plane or mistracked; its median residual then reads
    how well a single plane explains the face."""
    if len(src) < 12:
        return None
    if h is None:
        h, _ = cv2.findHomography(src.astype(np.float64), dst.astype(np.float64), cv2.LMEDS)
    if h is None:
        return None
    proj = cv2.perspectiveTransform(src.reshape(-1, 1, 2).astype(np.float64), h).reshape(-1, 2)
    res = np.linalg.norm(proj - dst, axis=1) / max(scale, 1.0)
    return float(np.median(res)), float(np.percentile(res, 90))


def planarity(frames: Sequence[Frame], landmarks: Sequence[FaceLandmarks | None], yaws: Sequence[float],
              *, n_pairs: int = 3, min_yaw_change: float = 8.0, planar_below: float = 0.02) -> DepthResult:
    """Planar (True), 3D (False) or inconclusive (None), from the frames whose yaw differs most from a
    reference frame (the face as seen at the median yaw). Apparent yaw also changes when a photo is tilted
    (perspective moves the nose point), so the same selection works for both."""
    present = [i for i, lm in enumerate(landmarks) if lm is not None and np.isfinite(yaws[i])]
    if len(present) < 2:
        return DepthResult(None, float("nan"), (), "too_few_faces")
    y = np.array([yaws[i] for i in present])
    ref = present[int(np.argmin(np.abs(y - np.median(y))))]
    lm_ref = landmarks[ref]
    assert lm_ref is not None
    targets = sorted((j for j in present if abs(yaws[j] - yaws[ref]) >= min_yaw_change),
                     key=lambda j: -abs(yaws[j] - yaws[ref]))[: max(n_pairs * 3, n_pairs)]
    if not targets:
        return DepthResult(None, float("nan"), (), "too_little_motion")
    lo, hi = min([ref, *targets]), max([ref, *targets])
    grays = {k: _gray(frames[k]) for k in range(lo, hi + 1)}
    tracks = track_both_ways(grays, ref, lo, hi, lm_ref)
    pairs: list[PairParallax] = []
    for j in targets:
        lm_j = landmarks[j]
        if lm_j is None or j not in tracks:
            continue
        src = np.concatenate([lm_ref.five_points(), tracks[j][0]])
        dst = np.concatenate([lm_j.five_points(), tracks[j][1]])
        r = homography_residual(src, dst, lm_j.eye_distance)
        if r is None:
            continue
        pairs.append(PairParallax(ref=ref, other=j, points=len(src), shape_change=shape_change(lm_ref, lm_j),
                                  residual=r[0], residual_p90=r[1]))
        if len(pairs) == n_pairs:
            break
    if not pairs:
        return DepthResult(None, float("nan"), (), "too_few_points")
    parallax = float(np.median([p.residual_p90 for p in pairs]))
    return DepthResult(parallax < planar_below, parallax, tuple(pairs), "measured")
