"""Media sanity: plausible frame timing, frozen frames, and a perceptual fingerprint to spot reused recordings.

The fingerprint is a 256-bit hash per frame of a 16x16 grey thumbnail of the face (eyes and nose). It is
coarse by design: it says "these frames look alike" and cannot be turned back into a usable face image.
A session whose hash sequence follows an earlier session's, frame after frame (re-sent, or replayed from a
recording), is flagged. A new recording that performs a different random challenge moves differently and
does not follow the old sequence. Its limit: two sessions of a person who holds perfectly still in the same
place look alike. `is_reused`'s plain 0.03 threshold missed 9 of 39 re-captured replays (0.033-0.094) in the
attack set; the decision uses `reuse_match`, which also compares the motion of the two sessions.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from facewarden.imaging.video import Frame
from facewarden.liveness.landmarks import FaceLandmarks


@dataclass(frozen=True)
class TimingReport:
    ok: bool
    fps: float
    issues: tuple[str, ...]


def check_timing(timestamps: Sequence[float], *, min_fps: float = 5.0, max_fps: float = 61.0,
                 max_gap_s: float = 0.5, min_duration_s: float = 1.0, max_duration_s: float = 15.0) -> TimingReport:
    """Timestamps must increase strictly, at a camera-like rate, without long holes, over a plausible span."""
    t = np.asarray(timestamps, dtype=np.float64)
    issues: list[str] = []
    if len(t) < 2 or not np.isfinite(t).all():
        return TimingReport(False, 0.0, ("too_few_frames" if len(t) < 2 else "invalid_timestamps",))
    dt = np.diff(t)
    duration = float(t[-1] - t[0])
    if (dt <= 0).any():
        issues.append("timestamps_not_increasing")
    fps = (len(t) - 1) / duration if duration > 0 else float("inf")
    if duration < min_duration_s:
        issues.append("too_short")
    if duration > max_duration_s:
        issues.append("too_long")
    if not min_fps <= fps <= max_fps:
        issues.append("implausible_frame_rate")
    if (dt > max_gap_s).any():
        issues.append("gap_in_frames")
    return TimingReport(not issues, float(fps), tuple(issues))


def _thumb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32)


def frame_differences(frames: Sequence[Frame]) -> np.ndarray:
    """Mean absolute grey-level difference between consecutive frames, on 64x64 thumbnails (noise-averaged)."""
    thumbs = [_thumb(f.rgb, (64, 64)) for f in frames]
    return np.array([float(np.abs(a - b).mean()) for a, b in itertools.pairwise(thumbs)])


@dataclass(frozen=True)
class StillnessReport:
    duplicate_fraction: float  # share of consecutive pairs that are (nearly) the same picture
    motion_range: float  # 90th percentile of each frame's difference from the first (grey levels, 64x64)
    still: bool


def check_stillness(frames: Sequence[Frame], *, duplicate_below: float = 0.1, max_duplicate_fraction: float = 0.5,
                    min_motion_range: float = 1.0) -> StillnessReport:
    """Repeated frames, or a session that never moves further from its first frame than noise does.

    Compressed video of a person sitting still can be as unchanging from one frame to the next as a photo with
    sensor noise (0.2-0.5 grey levels on the project's videos), so consecutive differences alone cannot tell
    them apart. What a still photo cannot do is drift away from its first frame over the session, which any
    challenge action does (a head turn moves the whole face)."""
    thumbs = [_thumb(f.rgb, (64, 64)) for f in frames]
    if len(thumbs) < 2:
        return StillnessReport(1.0, 0.0, True)
    steps = np.array([float(np.abs(a - b).mean()) for a, b in itertools.pairwise(thumbs)])
    drift = np.array([float(np.abs(t - thumbs[0]).mean()) for t in thumbs[1:]])
    duplicates = float((steps < duplicate_below).mean())
    motion = float(np.percentile(drift, 90))
    return StillnessReport(duplicates, motion, duplicates > max_duplicate_fraction or motion < min_motion_range)


_HASH_SIDE = 16
HASH_BYTES = _HASH_SIDE * _HASH_SIDE // 8  # one frame's packed hash

Fingerprint = str  # hex of `fingerprint`'s n x 32-byte frame hashes (64 hex digits a frame): JSON/text safe


def frame_hash(rgb: np.ndarray, lm: FaceLandmarks | None = None) -> np.ndarray:
    """256-bit hash (32 packed bytes): a 16x16 grey thumbnail thresholded at its median, of a square anchored
    on the eyes and nose (2.2 eye widths) or, without landmarks, of the whole frame. Anchoring on landmarks
    rather than the detector's box keeps the crop on the same part of the face when a replay is rescaled or
    cropped, and keeps a static background from making every session in one room look alike."""
    if lm is not None:
        centre = (lm.left_eye[0] + lm.right_eye[0] + lm.nose) / 3.0
        half = 1.1 * lm.eye_distance
        h, w = rgb.shape[:2]
        x0, y0 = max(0, round(centre[0] - half)), max(0, round(centre[1] - half))
        x1, y1 = min(w, round(centre[0] + half)), min(h, round(centre[1] + half))
        if x1 - x0 >= 8 and y1 - y0 >= 8:
            rgb = rgb[y0:y1, x0:x1]
    t = _thumb(rgb, (_HASH_SIDE, _HASH_SIDE))
    return np.packbits((t > np.median(t)).ravel())


def fingerprint(frames: Sequence[Frame], landmarks: Sequence[FaceLandmarks | None] | None = None) -> np.ndarray:
    """The session's fingerprint, one hash per frame (n x 32 uint8). Store it to compare later sessions."""
    if not frames:
        return np.zeros((0, HASH_BYTES), np.uint8)
    lms = landmarks if landmarks is not None else [None] * len(frames)
    return np.stack([frame_hash(f.rgb, lm) for f, lm in zip(frames, lms, strict=True)])


def encode_fingerprint(hashes: np.ndarray) -> Fingerprint:
    """`fingerprint`'s n x 32 uint8 array as a hex string (storable as JSON or text)."""
    return np.ascontiguousarray(hashes, dtype=np.uint8).tobytes().hex()


def decode_fingerprint(fp: Fingerprint | bytes | np.ndarray) -> np.ndarray:
    """The n x 32 uint8 array back from its hex (or raw bytes) form; arrays pass through."""
    if isinstance(fp, np.ndarray):
        return fp.astype(np.uint8, copy=False).reshape(-1, HASH_BYTES)
    raw = bytes.fromhex(fp) if isinstance(fp, str) else bytes(fp)
    if len(raw) % HASH_BYTES:
        raise ValueError("a fingerprint is a whole number of 32-byte frame hashes")
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, HASH_BYTES)


def reuse_distance(new: np.ndarray, old: np.ndarray, *, min_overlap: int = 10) -> float:
    """Smallest mean Hamming distance (0-1) between the two hash sequences over all time offsets.

    A replayed recording matches frame after frame in the same order (up to re-capture noise); both sessions
    are sampled at the decoder's target fps, so an offset is a whole number of frames."""
    if not len(new) or not len(old):
        return 1.0
    bits_new = np.unpackbits(np.asarray(new, np.uint8), axis=1).astype(bool)
    bits_old = np.unpackbits(np.asarray(old, np.uint8), axis=1).astype(bool)
    overlap = min(min_overlap, len(bits_new), len(bits_old))
    best = 1.0
    for offset in range(-(len(bits_old) - overlap), len(bits_new) - overlap + 1):
        lo, hi = max(0, offset), min(len(bits_new), len(bits_old) + offset)
        if hi - lo < overlap:
            continue
        best = min(best, float((bits_new[lo:hi] != bits_old[lo - offset:hi - offset]).mean()))
    return best


def is_reused(new: np.ndarray, earlier: Sequence[np.ndarray], *, threshold: float = 0.03) -> bool:
    """Measured on the project's videos: a replay (re-sampled at another phase, cropped 8 %, brightened, JPEG
    q70) lies at 0.01 from its original; another moment of the same recording of the same person at 0.055;
    another person at 0.44. Heavier re-capture (a screen filmed by a camera) can exceed 0.03: PAD covers that."""
    return any(reuse_distance(new, old) <= threshold for old in earlier)


def hash_bits(hashes: np.ndarray) -> np.ndarray:
    """Packed frame hashes unpacked to one 0/1 float per bit (n x 256)."""
    return np.unpackbits(np.asarray(hashes, np.uint8), axis=1).astype(np.float32)


def _hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All-pairs fraction of differing bits between two stacks of unpacked hashes."""
    return (a @ (1.0 - b).T + (1.0 - a) @ b.T) / a.shape[1]


REPLAY_SPEEDS = tuple(float(x) for x in np.round(np.exp(np.linspace(np.log(0.5), np.log(2.0), 25)), 4))
# old frames per new frame that a replay may run at: 0.5x (slowed, frames interpolated or repeated) to 2x
# (sped up or thinned); 1.0 is in the grid, so a replay at the original speed aligns exactly as before


def _aligned(loose: np.ndarray, speed: float, need: int) -> tuple[float, int] | None:
    """The best offset for new frame i <-> old frame round(speed * i + offset): (mean distance, offset)."""
    n, m = loose.shape
    i = np.arange(n)
    offsets = np.arange(-math.ceil(speed * n), m + 1)
    j = np.rint(speed * i[None, :] + offsets[:, None]).astype(np.int64)  # offsets x n
    ok = (j >= 0) & (j < m)
    counts = ok.sum(axis=1)
    vals = np.where(ok, loose[i[None, :], np.clip(j, 0, m - 1)], 0.0)
    means = np.where(counts >= need, vals.sum(axis=1) / np.maximum(counts, 1), np.inf)
    k = int(np.argmin(means))
    return (float(means[k]), int(offsets[k])) if np.isfinite(means[k]) else None


class ReuseMatch(NamedTuple):
    distance: float  # mean Hamming distance (0-1) along the best alignment
    correlation: float  # of the two sessions' motion structure along it
    speed: float  # old frames per new frame on that alignment (1.0: the original timing)


def reuse_match(new: np.ndarray, old: np.ndarray, *, slack: int = 1,
                speeds: Sequence[float] = REPLAY_SPEEDS) -> ReuseMatch:
    """(distance, correlation, speed) where `new` follows `old` best, at any speed in `speeds`, any offset.

    distance: mean over the overlapping frames of the Hamming distance (0-1) to the old frame that new frame i
    maps to (round(speed * i + offset)), allowing `slack` frames either way (a replay sampled at another phase,
    thinned or interpolated falls between two old frames). The speeds let a replay played slower or faster,
    with frames dropped or interpolated, line up with its original; it still has to follow one straight line
    through the original's frames, which a genuine new session of the same person does not.
    correlation: of the two sessions' own frame-to-frame distance matrices over the aligned frames. The same
    recording repeats which of its frames look alike (the motion); a person holding still in another session
    looks alike frame by frame without repeating that structure. The overlap must cover half the shorter
    session."""
    if not len(new) or not len(old):
        return ReuseMatch(1.0, 0.0, 1.0)
    a, b = hash_bits(new), hash_bits(old)
    exact = _hamming(a, b)
    n, m = exact.shape
    loose = exact
    if slack:  # each new frame may match its old counterpart or a neighbour within `slack` frames
        padded = np.pad(exact, ((0, 0), (slack, slack)), constant_values=np.inf)
        loose = np.min([padded[:, k:k + m] for k in range(2 * slack + 1)], axis=0)
    need = max(min(10, n, m), min(n, m) // 2)
    best: tuple[float, float, float, int] | None = None
    for speed in speeds:
        found = _aligned(loose, speed, need)
        if found is None:
            continue
        d, offset = found
        # ties (slack makes neighbouring alignments equal): prefer the original speed, then the exact match
        key = (round(d, 6), abs(math.log(speed)), speed, offset)
        best = key if best is None or key < best else best
    if best is None:
        return ReuseMatch(1.0, 0.0, 1.0)
    best_d, _, speed, offset = best
    i = np.arange(n)
    j = np.rint(speed * i + offset).astype(np.int64)
    ok = (j >= 0) & (j < m)
    ii, jj = i[ok], j[ok]
    iu = np.triu_indices(len(ii), 1)
    sa = _hamming(a[ii], a[ii])[iu]
    sb = _hamming(b[jj], b[jj])[iu]
    corr = float(np.corrcoef(sa, sb)[0, 1]) if len(sa) > 1 and sa.std() > 0 and sb.std() > 0 else 0.0
    return ReuseMatch(best_d, corr, speed)
