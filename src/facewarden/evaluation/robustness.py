"""Robustness evaluation helpers: probe transforms, head yaw, end-to-end scores and bootstrap intervals.

Pure numpy / Pillow / OpenCV: no face model is imported here, so the transforms and the statistics are
testable without dlib. The face pipelines that feed them live in ``bench/bench_accuracy.py`` and
``bench/bench_robustness.py``.

Landmarks are dlib's 5-point layout, in image pixels: 0, 1 = outer and inner corner of the eye on the
image's right; 2, 3 = outer and inner corner of the eye on the image's left; 4 = the nose base.

End-to-end scoring (NIST FRTE style): a photo that fails to enrol or gives no face is kept; every genuine
comparison that involves it counts as a failed genuine comparison (distance `FAILED`, never accepted), and
every impostor comparison that involves it counts as a correct rejection.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from facewarden.evaluation.metrics import distance_matrix

__all__ = [
    "FAILED",
    "PairScores",
    "bootstrap_fnmr_at_fmr",
    "document_probe",
    "downscale_face",
    "fnmr_at_fmr_weighted",
    "jpeg",
    "occlude_hand",
    "occlude_mask",
    "occlude_sunglasses",
    "pair_scores",
    "rank1_end_to_end",
    "yaw_bin",
    "yaw_degrees",
]

FAILED = 1.0e6  # the distance given to a comparison that involves a failed photo: never a match
NOSE_DEPTH = 0.20  # as facewarden.liveness.pose: nose base depth in outer-eye-corner widths


# -- geometry ------------------------------------------------------------------------------------
def _frame(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(centre between the eyes, unit eye axis u, unit normal v pointing down the face, eye-centre distance)."""
    p = np.asarray(pts, dtype=np.float64).reshape(5, 2)
    right_c = (p[0] + p[1]) / 2.0  # eye on the image's right
    left_c = (p[2] + p[3]) / 2.0
    axis = right_c - left_c
    dist = float(np.hypot(*axis))
    if dist < 1e-6:
        raise ValueError("degenerate landmarks: the two eyes coincide")
    u = axis / dist
    v = np.array([-u[1], u[0]])
    if v @ (p[4] - (left_c + right_c) / 2.0) < 0:  # the nose is below the eyes
        v = -v
    return (left_c + right_c) / 2.0, u, v, dist


def yaw_degrees(pts: np.ndarray) -> float:
    """Head yaw from the 5 points, as `facewarden.liveness.pose.head_pose` computes it (weak perspective).

    The nose base's offset from the middle of the outer eye corners along the eye line, in outer-corner widths,
    is NOSE_DEPTH * tan(yaw). Positive: the nose points to the image's right."""
    p = np.asarray(pts, dtype=np.float64).reshape(5, 2)
    lo, ro = p[2], p[0]
    axis = ro - lo
    width = float(np.hypot(*axis))
    if width < 1e-6:
        return 0.0
    side = float((p[4] - (lo + ro) / 2.0) @ (axis / width)) / width
    return math.degrees(math.atan2(side, NOSE_DEPTH))


YAW_BINS: tuple[tuple[float, float], ...] = ((0.0, 10.0), (10.0, 20.0), (20.0, 30.0), (30.0, 90.0))


def yaw_bin(yaw: float) -> str:
    a = abs(yaw)
    for lo, hi in YAW_BINS:
        if lo <= a < hi:
            return f"yaw {lo:.0f}-{hi:.0f}" if hi < 90 else f"yaw >={lo:.0f}"
    return f"yaw >={YAW_BINS[-1][0]:.0f}"


def _poly(c: np.ndarray, u: np.ndarray, v: np.ndarray, d: float, coords: Sequence[tuple[float, float]]
          ) -> np.ndarray:
    return np.array([c + d * (a * u + b * v) for a, b in coords], dtype=np.float64).round().astype(np.int32)


def _ellipse(img: np.ndarray, centre: np.ndarray, axes: tuple[float, float], u: np.ndarray,
             colour: tuple[int, int, int]) -> None:
    angle = math.degrees(math.atan2(u[1], u[0]))
    cv2.ellipse(img, (round(centre[0]), round(centre[1])), (max(1, round(axes[0])), max(1, round(axes[1]))),
                angle, 0, 360, colour, thickness=-1, lineType=cv2.LINE_AA)


# -- occlusions (drawn at probe time on a copy) -------------------------------------------------------
def occlude_sunglasses(rgb: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Two dark lenses over the eyes and a bridge: a sunglasses band."""
    out = np.ascontiguousarray(rgb, dtype=np.uint8).copy()
    c, u, v, d = _frame(pts)
    for side in (-0.5, 0.5):
        _ellipse(out, c + d * (side * u + 0.02 * v), (0.42 * d, 0.30 * d), u, (18, 18, 22))
    cv2.polylines(out, [_poly(c, u, v, d, [(-0.12, -0.05), (0.12, -0.05)])], False, (18, 18, 22),
                  thickness=max(1, round(0.06 * d)), lineType=cv2.LINE_AA)
    return out


def occlude_mask(rgb: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """A light surgical mask from just below the nose bridge to under the chin."""
    out = np.ascontiguousarray(rgb, dtype=np.uint8).copy()
    c, u, v, d = _frame(pts)
    nose_drop = float((np.asarray(pts, dtype=np.float64)[4] - c) @ v) / d
    top = nose_drop - 0.25
    poly = _poly(c, u, v, d, [(-0.95, top + 0.1), (0.0, top), (0.95, top + 0.1), (0.85, nose_drop + 1.0),
                             (0.35, nose_drop + 1.35), (-0.35, nose_drop + 1.35), (-0.85, nose_drop + 1.0)])
    cv2.fillPoly(out, [poly], (205, 220, 232), lineType=cv2.LINE_AA)
    return out


def occlude_hand(rgb: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """A skin-coloured palm with four fingers over the cheek on the image's left (and a mouth corner)."""
    out = np.ascontiguousarray(rgb, dtype=np.uint8).copy()
    c, u, v, d = _frame(pts)
    skin = (196, 150, 122)
    palm = c + d * (-0.55 * u + 1.15 * v)
    _ellipse(out, palm, (0.5 * d, 0.62 * d), u, skin)
    for k in range(4):
        tip = c + d * ((-0.95 + 0.22 * k) * u + (0.35 - 0.05 * k) * v)
        base = palm + d * ((-0.3 + 0.2 * k) * u - 0.3 * v)
        cv2.line(out, (round(base[0]), round(base[1])), (round(tip[0]), round(tip[1])), skin,
                 thickness=max(2, round(0.17 * d)), lineType=cv2.LINE_AA)
    return out


# -- degradations -----------------------------------------------------------------------------------
def _resize(rgb: np.ndarray, scale: float, interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    h, w = rgb.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=interpolation))


def downscale_face(rgb: np.ndarray, face_width: float, target: float) -> np.ndarray:
    """The whole photo shrunk so that the face is `target` px wide (unchanged if it is not wider already)."""
    if face_width <= target:
        return np.ascontiguousarray(rgb, dtype=np.uint8).copy()
    return _resize(np.ascontiguousarray(rgb, dtype=np.uint8), target / face_width)


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buf, format="JPEG", quality=int(quality))
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        return np.asarray(im.convert("RGB")).copy()


def document_probe(rgb: np.ndarray, pts: np.ndarray, face_width: float, *, seed: int = 0,
                   printed_face_px: float = 56.0) -> np.ndarray:
    """A photo as found on an identity document, re-photographed by a phone.

    1. Printed small: the photo shrunk so that the face is `printed_face_px` wide.
    2. Print texture: a 3-px halftone screen and paper/sensor noise.
    3. Security overlay: light guilloche lines and a translucent holographic ellipse over the face.
    4. Re-photographed: enlarged 2.5x (camera resolution), a small random perspective tilt, defocus blur
       (Gaussian, sigma 1.2 px), a brightness/contrast change and JPEG quality 75.
    """
    rng = np.random.default_rng(seed)
    img = np.ascontiguousarray(rgb, dtype=np.uint8)
    scale = min(1.0, printed_face_px / max(face_width, 1.0))
    small = _resize(img, scale).astype(np.float32)
    p = np.asarray(pts, dtype=np.float64).reshape(5, 2) * scale
    h, w = small.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    small += 14.0 * (np.sin(2 * np.pi * xx / 3.0) * np.sin(2 * np.pi * yy / 3.0))[:, :, None]
    small += rng.normal(0.0, 5.0, small.shape).astype(np.float32)
    # guilloche: sine waves across the face, light, semi-transparent
    overlay = small.copy()
    c, u, v, d = _frame(p)
    for k in range(-3, 4):
        xs = np.linspace(-1.6, 1.6, 60)
        curve = [c + d * (x * u + (0.45 * k + 0.12 * math.sin(6.0 * x + k)) * v) for x in xs]
        cv2.polylines(overlay, [np.array(curve).round().astype(np.int32)], False, (235, 235, 215), 1, cv2.LINE_AA)
    holo = overlay.copy()
    _ellipse(holo, c + 0.6 * d * v, (0.9 * d, 0.5 * d), u, (150, 230, 210))
    small = 0.55 * small + 0.3 * overlay + 0.15 * holo
    big = _resize(np.clip(small, 0, 255).astype(np.uint8), 2.5, cv2.INTER_LINEAR)
    bh, bw = big.shape[:2]
    src = np.float32([[0, 0], [bw - 1, 0], [bw - 1, bh - 1], [0, bh - 1]])
    jitter = rng.uniform(-0.05, 0.05, (4, 2)) * np.array([bw, bh])
    dst = np.float32(src + jitter)
    warped = cv2.warpPerspective(big, cv2.getPerspectiveTransform(src, dst), (bw, bh),
                                 borderMode=cv2.BORDER_REPLICATE)
    blurred = cv2.GaussianBlur(warped, (0, 0), 1.2).astype(np.float32)
    shot = np.clip(0.85 * blurred + 18.0, 0, 255).astype(np.uint8)
    return jpeg(shot, 75)


# -- scores --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairScores:
    """All unordered pairs of a set of photos, with the identities involved (for the bootstrap)."""

    genuine: np.ndarray
    genuine_id: np.ndarray
    impostor: np.ndarray
    impostor_a: np.ndarray
    impostor_b: np.ndarray
    identities: int


def pair_scores(vectors: Sequence[np.ndarray | None], labels: Sequence[object], *, end_to_end: bool
                ) -> PairScores:
    """Genuine and impostor distances over every unordered pair of photos.

    `None` marks a photo that failed (no face, refused). With `end_to_end`, its pairs are kept at distance
    `FAILED` (a failed genuine comparison, a rejected impostor one); otherwise they are left out."""
    if len(vectors) != len(labels):
        raise ValueError("vectors and labels differ in length")
    _, ids = np.unique(np.asarray([str(x) for x in labels]), return_inverse=True)
    ids = ids.ravel()
    keep = np.array([v is not None or end_to_end for v in vectors], dtype=bool)
    idx = np.flatnonzero(keep)
    ok = np.array([vectors[i] is not None for i in idx], dtype=bool)
    dim = next((np.asarray(v).size for v in vectors if v is not None), 1)
    x = np.zeros((idx.size, dim), dtype=np.float64)
    for row, i in enumerate(idx):
        if vectors[i] is not None:
            x[row] = np.asarray(vectors[i], dtype=np.float64).ravel()
    dist = distance_matrix(x)
    iu, ju = np.triu_indices(idx.size, k=1)
    d = dist[iu, ju]
    d[~(ok[iu] & ok[ju])] = FAILED
    a, b = ids[idx[iu]], ids[idx[ju]]
    same = a == b
    return PairScores(d[same], a[same], d[~same], a[~same], b[~same], int(ids.max(initial=-1) + 1))


class _SortedImpostors:
    """Impostor distances sorted once, grouped by ties, for many weightings (the bootstrap)."""

    def __init__(self, impostor: np.ndarray) -> None:
        self.order = np.argsort(impostor, kind="stable")
        imp = impostor[self.order]
        self.values, start = np.unique(imp, return_index=True)
        self.ends = np.append(start[1:], imp.size) - 1

    def first_over(self, imp_w: np.ndarray, target: float) -> float | None:
        """The smallest impostor distance at which the accepted weight exceeds target * total (None: never)."""
        cum = np.cumsum(imp_w[self.order])
        over = np.flatnonzero(cum[self.ends] > target * cum[-1] + 1e-12)
        return None if over.size == 0 else float(self.values[over[0]])


def _weighted_fnmr(genuine: np.ndarray, gen_w: np.ndarray, srt: _SortedImpostors, imp_w: np.ndarray,
                   target: float) -> float:
    wg = float(np.sum(gen_w))
    if wg <= 0 or float(np.sum(imp_w)) <= 0:
        return float("nan")
    v = srt.first_over(imp_w, target)
    if v is None:
        return 0.0
    return float(np.sum(gen_w[genuine >= v]) / wg)


def fnmr_at_fmr_weighted(genuine: np.ndarray, gen_w: np.ndarray, impostor: np.ndarray, imp_w: np.ndarray,
                         target: float) -> float:
    """FNMR at the most permissive threshold whose weighted FMR is <= target (accept when distance <= t).

    With unit weights this equals `metrics.fnmr_at_fmr`: the threshold may rise up to just below the first
    impostor distance at which the accepted impostor weight would exceed target * total."""
    return _weighted_fnmr(np.asarray(genuine, dtype=np.float64), np.asarray(gen_w, dtype=np.float64),
                          _SortedImpostors(np.asarray(impostor, dtype=np.float64)),
                          np.asarray(imp_w, dtype=np.float64), target)


def bootstrap_fnmr_at_fmr(scores: PairScores, target: float, *, n_boot: int = 500, seed: int = 0,
                          level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of FNMR at FMR `target`, resampling identities with replacement.

    A replicate draws the identities with replacement; a genuine pair weighs the count of its identity, an
    impostor pair the product of its two identities' counts (pairs between two copies of one identity are
    not formed)."""
    n = scores.identities
    if n < 2 or scores.genuine.size == 0 or scores.impostor.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    srt = _SortedImpostors(scores.impostor)
    stats = []
    for _ in range(n_boot):
        counts = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        f = _weighted_fnmr(scores.genuine, counts[scores.genuine_id], srt,
                           counts[scores.impostor_a] * counts[scores.impostor_b], target)
        if not math.isnan(f):
            stats.append(f)
    if not stats:
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def rank1_end_to_end(vectors: Sequence[np.ndarray | None], labels: Sequence[object]) -> tuple[float, int]:
    """Leave-one-out rank-1 where a failed photo is a missed probe and no gallery entry.

    Probes: photos whose identity has at least two photos (failed or not)."""
    lab = np.asarray([str(x) for x in labels])
    _, counts_idx = np.unique(lab, return_inverse=True)
    counts = np.bincount(counts_idx.ravel())
    probes = np.flatnonzero(counts[counts_idx.ravel()] >= 2)
    ok = [i for i, v in enumerate(vectors) if v is not None]
    if probes.size == 0:
        return float("nan"), 0
    if len(ok) < 2:
        return 0.0, int(probes.size)
    x = np.stack([np.asarray(vectors[i], dtype=np.float64).ravel() for i in ok])
    pos = {i: k for k, i in enumerate(ok)}
    hits = 0
    for p in probes:
        if vectors[p] is None:
            continue
        d = np.linalg.norm(x - x[pos[p]], axis=1)
        d[pos[p]] = np.inf
        hits += int(lab[ok[int(np.argmin(d))]] == lab[p])
    return hits / probes.size, int(probes.size)


Transform = Callable[[np.ndarray, np.ndarray, float], np.ndarray]
