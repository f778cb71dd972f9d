"""The fused liveness decision: every check on one session's frames, one verdict with stable reason codes.

A session passes only when every check passes. Each check answers a different attack, and no single one is
trusted alone:

* challenge (`challenge_not_performed`): the random actions, in order and in time. Stops a recording made
  before the challenge was known, and a photo that cannot blink.
* surface (`planar_motion`, `no_depth_evidence`): a photo or screen is one plane, a head is not. Pairs of frames
  whose head pose differs by >= 8 degrees are aligned with the best homography (LK tracks for the start, then
  ECC on the face at ~48 px per eye width) and the misalignment left inside the face is read (1 - ZNCC).
  A plane aligns almost perfectly; a turning head cannot be aligned by one homography (nose against cheeks).
  Measured on the attack set: flat photos and prints <= 0.009, screens (glare and moire do not move with the
  screen) <= 0.041, genuine clips >= 0.031; planar below 0.02. This replaces `depth.planarity`'s decision:
  its LK-track residual put adaptively tilted photos at up to 0.05 and two genuine clips at 0.014-0.019, both
  sides of its 0.02 threshold. That residual is still computed on the same pairs and kept in `scores`.
  Required when the challenge asked for a head action (every challenge of 2+ actions from `new_challenge`
  does), because that action guarantees the motion the check needs; a blink-only session may lack it.
* passive PAD (`presentation_attack`): the MiniFASNet models on a few frames. One dim genuine clip (d18)
  scores 0.32-0.36, so a fixed 0.5 cut-off refuses real people: PAD alone refuses only what is clearly an
  attack, and a middling score refuses together with another weak signal (see `LivenessPolicy`).
* continuity (`face_changed`, `not_enrolled_face`): both sides of the clip's largest jump in appearance plus
  frontal frames spread over it are embedded (4 in all); all must be one person, and that person the enrolled
  one.
* media (`bad_timing`, `too_few_frames`, `still_frames`, `replayed_recording`): camera-like timestamps, real
  change over the session, and no frame-by-frame match with an earlier accepted session's fingerprint.
* `no_face`: too many frames without a face to judge anything.

`scores` keeps every check's numbers (JSON-serialisable) for the server-side audit record; they must not be
sent to clients, since they tell an attacker how close an attempt came.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import dlib
import numpy as np

from facewarden.imaging.video import Frame
from facewarden.liveness.challenge import Action, Challenge, ChallengeRules, evaluate_challenge
from facewarden.liveness.depth import homography_residual, track_chain
from facewarden.liveness.landmarks import FaceLandmarks, LandmarkDetector
from facewarden.liveness.measures import FrameMeasures, measure_frames
from facewarden.liveness.media import check_stillness, check_timing, fingerprint
from facewarden.liveness.pad import PadScorer
from facewarden.vision.engine import FaceEngine

__all__ = ["REASONS", "Fingerprint", "LivenessChecker", "LivenessDecision", "LivenessPolicy", "SurfaceResult",
           "decode_fingerprint", "encode_fingerprint", "reuse_match", "surface_misalignment"]

# Stable reason codes, in the order they are reported.
REASONS = ("too_few_frames", "bad_timing", "no_face", "challenge_not_performed", "planar_motion",
           "no_depth_evidence", "presentation_attack", "face_changed", "not_enrolled_face", "still_frames",
           "replayed_recording")

Fingerprint = str  # hex of media.fingerprint's n x 32-byte frame hashes (64 hex digits a frame): JSON/text safe

_HEAD_ACTIONS = frozenset({Action.TURN_LEFT, Action.TURN_RIGHT, Action.LOOK_UP})
_HASH_BYTES = 32


def encode_fingerprint(hashes: np.ndarray) -> Fingerprint:
    """`media.fingerprint`'s n x 32 uint8 array as a hex string (storable as JSON or text)."""
    return np.ascontiguousarray(hashes, dtype=np.uint8).tobytes().hex()


def decode_fingerprint(fp: Fingerprint | bytes | np.ndarray) -> np.ndarray:
    """The n x 32 uint8 array back from its hex (or raw bytes) form; arrays pass through."""
    if isinstance(fp, np.ndarray):
        return fp.astype(np.uint8, copy=False).reshape(-1, _HASH_BYTES)
    raw = bytes.fromhex(fp) if isinstance(fp, str) else bytes(fp)
    if len(raw) % _HASH_BYTES:
        raise ValueError("a fingerprint is a whole number of 32-byte frame hashes")
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, _HASH_BYTES)


@dataclass(frozen=True)
class LivenessPolicy:
    """Thresholds of the fused decision, read off the project's real videos (../shared/faces/video, 15 fps) and
    the attack set built from them (`facewarden.evaluation.attacks`); bench/README.md has the numbers."""

    rules: ChallengeRules = field(default_factory=ChallengeRules)  # the challenge's own thresholds
    # 1 s at 15 fps: below that the challenge has no baseline and the surface check no motion to read
    min_frames: int = 15
    # media.check_timing: phones deliver 10-60 fps; 0.5 s without a frame is a dropped or spliced stretch
    min_fps: float = 5.0
    max_fps: float = 61.0
    max_gap_s: float = 0.5
    min_duration_s: float = 1.0
    max_duration_s: float = 15.0
    # Surface: misalignment (1 - ZNCC) after the best plane warp, median over the pairs. Flat photos and prints
    # (simulated and real) <= 0.009; screens 0.01-0.041 (glare and moire do not move with the screen); genuine
    # clips >= 0.031 (d3 1.6-4.6 s, a 13-15 degree turn), the next 0.059. 0.02 keeps a 2x margin on both sides
    # of the flat props and leaves screens to PAD, helped by `weak_surface`.
    planar_below: float = 0.02
    min_pose_change_deg: float = 8.0  # the yaw/pitch change that makes a head's relief show
    surface_pairs: int = 3
    # When the challenge asked for a head action, the head moved: no surface reading then is itself suspect.
    require_depth_for_head_actions: bool = True
    # Passive PAD (mean genuine probability over `pad_frames` frames). Genuine videos 0.72-1.00 except the dim
    # d18 (0.32-0.36); the real printed photo 0.03, the real tablet replay 0.23, simulated screens mostly < 0.1.
    # Below `pad_reject` the models refuse alone; below `pad_weak` only with another weak signal.
    pad_frames: int = 6
    pad_reject: float = 0.15
    pad_weak: float = 0.5
    # Weak signals that, with a middling PAD score, tip the decision (each passes on its own):
    weak_surface: float = 0.05  # 3D evidence not far above the planar threshold (every screen is below it)
    weak_reuse: float = 0.05  # a fingerprint near an earlier session
    weak_motion_range: float = 1.5  # little change over the session (a still photo: < 1)
    # Continuity: frames of one session vary in pose (turns up to 40 degrees), which spreads one person's
    # embeddings more than the frontal photos the 0.5 match threshold was set on: genuine clips reach 0.58,
    # two people 0.71+. 0.6 is dlib's own same-person threshold. The enrolled identity uses match_threshold.
    continuity_threshold: float = 0.6
    embed_frames: int = 4  # 60-90 ms each: the dearest check per frame
    # media.check_stillness: a still photo with sensor noise drifts < 1 grey level from its first frame
    duplicate_below: float = 0.1
    max_duplicate_fraction: float = 0.5
    min_motion_range: float = 1.0
    # Reuse of an earlier accepted session (see `reuse_match`): the same frames re-sent or re-captured match
    # the original's hashes (<= 0.035 with one frame of timing slack) or, when re-capture blurs the hashes, match
    # loosely (<= 0.07) and follow the same motion (self-similarity correlation >= 0.8). Other moments of the
    # same person's video: >= 0.036, and those within 0.07 correlate <= 0.76.
    reuse_below: float = 0.035
    reuse_loose_below: float = 0.07
    reuse_min_correlation: float = 0.8
    audit_frames: int = 4


@dataclass
class LivenessDecision:
    passed: bool
    reasons: list[str]  # codes of the failed checks, in REASONS order; empty when passed
    scores: dict[str, Any]  # every check's numbers, JSON-serialisable; server-side audit only
    fingerprint: Fingerprint  # store it with an accepted session; pass it back as earlier_fingerprints
    audit_frames: list[int]  # indices of up to 4 frames with a face, spread over the clip
    seconds: float  # wall time of `assess`
    cpu_seconds: float = 0.0  # process CPU time of `assess`


# -- the surface (planarity) measure ---------------------------------------------------------------------------
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
    grays = {k: cv2.cvtColor(frames[k].rgb, cv2.COLOR_RGB2GRAY)
             for k in range(min([ref, *targets]), max([ref, *targets]) + 1)}
    # the reference frame's corners followed forwards and backwards (small steps keep them on the face)
    tracks: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for direction in (1, -1):
        end = max(targets) if direction == 1 else min(targets)
        idx = list(range(ref, end + direction, direction))
        if len(idx) < 2:
            continue
        p0, positions, alive = track_chain([grays[k] for k in idx], lm_ref)
        for k, pos, ok in zip(idx, positions, alive, strict=True):
            tracks[k] = (p0[ok], pos[ok])
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


# -- reuse of an earlier session -----------------------------------------------------------------------------
def _bits(hashes: np.ndarray) -> np.ndarray:
    return np.unpackbits(np.asarray(hashes, np.uint8), axis=1).astype(np.float32)


def _hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All-pairs fraction of differing bits between two stacks of unpacked hashes."""
    return (a @ (1.0 - b).T + (1.0 - a) @ b.T) / a.shape[1]


def reuse_match(new: np.ndarray, old: np.ndarray, *, slack: int = 1) -> tuple[float, float]:
    """(distance, correlation) at the time offset where `new` follows `old` best.

    distance: mean over the overlapping frames of the Hamming distance (0-1) to the old frame at that offset,
    allowing `slack` frames either way (a replay sampled at another phase falls between two old frames).
    correlation: of the two sessions' own frame-to-frame distance matrices over the overlap. The same recording
    repeats which of its frames look alike (the motion); a person holding still in another session looks
    alike frame by frame without repeating that structure. The overlap must cover half the shorter session."""
    if not len(new) or not len(old):
        return 1.0, 0.0
    a, b = _bits(new), _bits(old)
    exact = _hamming(a, b)
    n, m = exact.shape
    loose = exact
    if slack:  # each new frame may match its old counterpart or a neighbour within `slack` frames
        padded = np.pad(exact, ((0, 0), (slack, slack)), constant_values=np.inf)
        loose = np.min([padded[:, k:k + m] for k in range(2 * slack + 1)], axis=0)
    overlap = max(min(10, n, m), min(n, m) // 2)
    best: tuple[float, float, int] | None = None
    for offset in range(-(m - overlap), n - overlap + 1):  # new frame i pairs with old frame i - offset
        d = np.diagonal(loose, offset=-offset)
        if len(d) >= overlap:
            # with slack, neighbouring offsets tie; the one that also matches best without slack is the alignment
            key = (round(float(d.mean()), 6), float(np.diagonal(exact, offset=-offset).mean()), offset)
            best = key if best is None or key < best else best
    if best is None:
        return 1.0, 0.0
    best_d, _, best_offset = best
    lo, hi = max(0, best_offset), min(n, m + best_offset)
    iu = np.triu_indices(hi - lo, 1)
    sa = _hamming(a[lo:hi], a[lo:hi])[iu]
    sb = _hamming(b[lo - best_offset:hi - best_offset], b[lo - best_offset:hi - best_offset])[iu]
    corr = float(np.corrcoef(sa, sb)[0, 1]) if len(sa) > 1 and sa.std() > 0 and sb.std() > 0 else 0.0
    return best_d, corr


# -- helpers --------------------------------------------------------------------------------------------------
def _spread(candidates: Sequence[int], k: int, badness: Sequence[float] | None = None) -> list[int]:
    """k of the candidates, one per equal stretch of the list; within a stretch the one with the least
    `badness` (e.g. the most frontal), so every part of the clip is represented by its best frame."""
    if k <= 0 or not candidates:
        return []
    if len(candidates) <= k:
        return list(candidates)
    bounds = np.linspace(0, len(candidates), k + 1).round().astype(int)
    out = []
    for lo, hi in itertools.pairwise(bounds):
        part = list(candidates[lo:hi])
        out.append(part[len(part) // 2] if badness is None else min(part, key=lambda i: badness[i]))
    return out


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 4)


class LivenessChecker:
    """Runs every liveness check on a session's frames and fuses them. Holds no per-session state; the engine,
    detector and PAD scorer each guard their models with a lock, so one checker can serve several threads."""

    def __init__(self, engine: FaceEngine, pad: PadScorer, detector: LandmarkDetector,
                 policy: LivenessPolicy | None = None, *, match_threshold: float = 0.5) -> None:
        self.engine = engine
        self.pad = pad
        self.detector = detector
        self.policy = policy or LivenessPolicy()
        self.match_threshold = match_threshold

    def assess(self, frames: Sequence[Frame], challenge: Challenge, *, enrolled: Sequence[np.ndarray] = (),
               earlier_fingerprints: Sequence[Fingerprint | bytes | np.ndarray] = (),
               mirrored: bool = False) -> LivenessDecision:
        """Every check on `frames` against `challenge`. `enrolled`: the claimed identity's embeddings (none:
        continuity within the clip only); `earlier_fingerprints`: those of earlier accepted sessions;
        `mirrored`: the client sent selfie-mirrored frames (left and right turns swap)."""
        wall0, cpu0 = time.perf_counter(), time.process_time()
        p = self.policy
        failed: set[str] = set()
        scores: dict[str, Any] = {"frames": len(frames), "challenge_actions": [a.value for a in challenge.actions]}

        timing = check_timing([f.t for f in frames], min_fps=p.min_fps, max_fps=p.max_fps, max_gap_s=p.max_gap_s,
                              min_duration_s=p.min_duration_s, max_duration_s=p.max_duration_s)
        scores["timing"] = {"ok": timing.ok, "fps": _num(timing.fps), "issues": list(timing.issues)}
        if len(frames) < p.min_frames or "too_few_frames" in timing.issues:
            failed.add("too_few_frames")
        if any(i != "too_few_frames" for i in timing.issues):
            failed.add("bad_timing")
        if not frames:
            return self._finish(failed | {"no_face"}, scores, np.zeros((0, _HASH_BYTES), np.uint8), [], wall0, cpu0)

        measures = measure_frames(frames, self.detector)
        with_face = [i for i, m in enumerate(measures) if m.face]
        missing = 1.0 - len(with_face) / len(frames)
        scores["faces"] = {"missing_fraction": _num(missing),
                           "max_faces_in_a_frame": max((m.landmarks.faces for m in measures if m.landmarks),
                                                       default=0)}
        if missing > p.rules.max_missing_fraction or len(with_face) < 2:
            failed.add("no_face")

        self._challenge(measures, challenge, mirrored, failed, scores)
        surface_weak = self._surface(frames, measures, challenge, failed, scores)
        yaw_off = self._frontality(measures)
        pad_mean = self._pad(frames, measures, with_face, yaw_off, scores)
        hashes = fingerprint(frames, [m.landmarks for m in measures])  # one hash per frame, used twice
        embedded = self._continuity(frames, measures, with_face, yaw_off, hashes[with_face], enrolled, failed,
                                    scores)
        motion = self._media(frames, hashes, earlier_fingerprints, failed, scores)

        # PAD fusion: alone only when clearly low; a middling score needs a second weak signal
        weak = []
        if surface_weak:
            weak.append("weak_3d_evidence")
        if motion < p.weak_motion_range:
            weak.append("little_motion")
        reuse = scores["media"]["reuse_distance"]
        if reuse is not None and reuse < p.weak_reuse:
            weak.append("near_earlier_session")
        if failed & {"face_changed", "not_enrolled_face"}:
            weak.append("identity")
        scores["pad"]["weak_signals"] = weak
        if pad_mean is not None and (pad_mean < p.pad_reject or (pad_mean < p.pad_weak and weak)):
            failed.add("presentation_attack")
        audit = embedded if embedded else _spread(with_face, p.audit_frames)
        return self._finish(failed, scores, hashes, sorted(audit)[: p.audit_frames], wall0, cpu0)

    def _finish(self, failed: set[str], scores: dict[str, Any], hashes: np.ndarray, audit: list[int],
                wall0: float, cpu0: float) -> LivenessDecision:
        reasons = [r for r in REASONS if r in failed]
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        scores["cost"] = {"wall_s": round(wall, 4), "cpu_s": round(cpu, 4)}
        return LivenessDecision(passed=not reasons, reasons=reasons, scores=scores,
                                fingerprint=encode_fingerprint(hashes), audit_frames=audit, seconds=wall,
                                cpu_seconds=cpu)

    # -- the checks -----------------------------------------------------------------------------------------
    def _challenge(self, measures: list[FrameMeasures], challenge: Challenge, mirrored: bool, failed: set[str],
                   scores: dict[str, Any]) -> None:
        rules = dataclasses.replace(self.policy.rules, mirrored=mirrored)
        ok, details = evaluate_challenge(measures, challenge, rules)
        reason = details.get("reason")
        if not ok:
            failed.add("no_face" if reason in ("face_missing", "no_frames", "no_baseline") else
                       "challenge_not_performed")
        unexpected = details.get("unexpected")
        scores["challenge"] = {
            "passed": ok, "reason": reason, "expected": details.get("expected"),
            "matched": [{"action": m["action"], "t": _num(m["t"]), "peak": _num(m["peak"])}
                        for m in details.get("matched", [])],
            "events": [[a, _num(t)] for a, t in details.get("events", [])],
            "missing_action": details.get("missing_action"),
            "unexpected": [unexpected[0], _num(unexpected[1])] if unexpected else None}

    def _surface(self, frames: Sequence[Frame], measures: list[FrameMeasures], challenge: Challenge,
                 failed: set[str], scores: dict[str, Any]) -> bool:
        """Planar-surface check; returns True when its evidence for a 3D head is weak (for the PAD fusion)."""
        p = self.policy
        result = surface_misalignment(frames, measures, n_pairs=p.surface_pairs,
                                      min_pose_change=p.min_pose_change_deg, planar_below=p.planar_below)
        needs = p.require_depth_for_head_actions and any(a in _HEAD_ACTIONS for a in challenge.actions)
        scores["depth"] = {"planar": result.planar, "misalignment": _num(result.misalignment),
                           "reason": result.reason, "required": needs, "pairs": list(result.pairs)}
        if result.planar:
            failed.add("planar_motion")
        elif result.planar is None and needs:
            failed.add("no_depth_evidence")
        return result.planar is None or result.misalignment < p.weak_surface

    @staticmethod
    def _frontality(measures: list[FrameMeasures]) -> list[float]:
        """How far each frame's yaw is from the session's median (inf without a face): frontal frames first."""
        yaws = np.array([m.yaw for m in measures], dtype=np.float64)
        ok = np.isfinite(yaws)
        if not ok.any():
            return [math.inf] * len(measures)
        off = np.abs(yaws - np.median(yaws[ok]))
        return [float(v) if math.isfinite(v) else math.inf for v in off]

    def _pad(self, frames: Sequence[Frame], measures: list[FrameMeasures], with_face: list[int],
             yaw_off: list[float], scores: dict[str, Any]) -> float | None:
        picks = _spread(with_face, self.policy.pad_frames, yaw_off)
        values = []
        for i in picks:
            lm = measures[i].landmarks
            assert lm is not None
            values.append(self.pad.score(frames[i].rgb, lm.box))
        mean = float(np.mean(values)) if values else None
        scores["pad"] = {"mean": _num(mean), "min": _num(min(values)) if values else None, "frames": picks,
                         "values": [_num(v) for v in values]}
        return mean

    def _continuity(self, frames: Sequence[Frame], measures: list[FrameMeasures], with_face: list[int],
                    yaw_off: list[float], face_hashes: np.ndarray, enrolled: Sequence[np.ndarray],
                    failed: set[str], scores: dict[str, Any]) -> list[int]:
        p = self.policy
        picks: list[int] = []
        jump = None
        if len(with_face) >= 2:
            # The biggest change of the face between consecutive face frames is where a swap would be: embed
            # both sides of it (a short swap between evenly spread frames is not missed), and frontal frames
            # spread over the rest of the clip.
            bits = _bits(face_hashes)
            steps = np.abs(bits[1:] - bits[:-1]).mean(axis=1)
            k = int(np.argmax(steps))
            jump = {"between": [with_face[k], with_face[k + 1]], "hash_distance": _num(float(steps[k]))}
            picks = [with_face[k], with_face[k + 1]]
            for i in _spread(with_face, p.embed_frames, yaw_off):
                if len(picks) >= p.embed_frames:
                    break
                if all(abs(i - j) > 1 for j in picks):
                    picks.append(i)
        elif with_face:
            picks = list(with_face)
        picks = sorted(set(picks))
        vectors = []
        for i in picks:
            lm = measures[i].landmarks
            assert lm is not None
            face = self.engine.embed_box(frames[i].rgb, dlib.rectangle(*lm.box), check_quality=False)
            vectors.append(face.embedding.astype(np.float64))
        within = max((float(np.linalg.norm(a - b)) for k, a in enumerate(vectors) for b in vectors[k + 1:]),
                     default=0.0)
        info: dict[str, Any] = {"frames": picks, "max_distance_within": _num(within) if vectors else None,
                                "largest_jump": jump, "threshold": p.continuity_threshold}
        if vectors and within > p.continuity_threshold:
            failed.add("face_changed")
        if enrolled and vectors:
            refs = np.stack([np.asarray(e, dtype=np.float64).ravel() for e in enrolled])
            to_enrolled = [float(np.linalg.norm(refs - v, axis=1).min()) for v in vectors]
            median = float(np.median(to_enrolled))
            info |= {"to_enrolled": [_num(d) for d in to_enrolled], "median_to_enrolled": _num(median),
                     "match_threshold": self.match_threshold}
            if median > self.match_threshold:
                failed.add("not_enrolled_face")
        scores["continuity"] = info
        return picks

    def _media(self, frames: Sequence[Frame], hashes: np.ndarray,
               earlier: Sequence[Fingerprint | bytes | np.ndarray], failed: set[str],
               scores: dict[str, Any]) -> float:
        p = self.policy
        still = check_stillness(frames, duplicate_below=p.duplicate_below,
                                max_duplicate_fraction=p.max_duplicate_fraction, min_motion_range=p.min_motion_range)
        if still.still:
            failed.add("still_frames")
        nearest: tuple[float, float] | None = None
        reused = False
        for old in earlier:
            d, corr = reuse_match(hashes, decode_fingerprint(old))
            if nearest is None or d < nearest[0]:
                nearest = (d, corr)
            reused |= d <= p.reuse_below or (d <= p.reuse_loose_below and corr >= p.reuse_min_correlation)
        if reused:
            failed.add("replayed_recording")
        scores["media"] = {"duplicate_fraction": _num(still.duplicate_fraction),
                           "motion_range": _num(still.motion_range), "still": still.still,
                           "earlier_sessions": len(earlier),
                           "reuse_distance": _num(nearest[0]) if nearest else None,
                           "reuse_correlation": _num(nearest[1]) if nearest else None, "reused": reused}
        return still.motion_range
