"""Replays at other speeds, zoomed or thinned: how many the replay check catches, against the plain re-capture
it was built for (the baseline, same run), and how often it flags a genuine new session of the same person.

Every genuine segment of `video/` (`attack_segments.SEGMENTS`) is "accepted" once (its fingerprint on record),
then replayed answering the same actions as: the existing re-capture (`AttackSet.recapture`: other sampling
phase, 5 % crop, brighter, JPEG q70; the baseline) and each of `attacks.REPLAY_VARIANTS` (0.8x and 1.25x speed
with interpolated frames, a 15 % zoom with a warm tint, every third frame dropped). Each replay's fingerprint is
matched against the original with `decision.replay_matches` (at the original speed and at the best speed) and
decided with `decision.is_replay`, the checker's own rule. Genuine negatives: every ordered pair of
non-overlapping segments of the same video (the same person's next session, the other one on record).

With the light challenge (held out only, decided by the checker itself): every genuine pair the fingerprint
flags is decided again as its later session would be filmed under that session's colours (reflections simulated,
as in bench_light), the earlier one on record; and every zoomed replay (the variant the fingerprint misses most)
is decided under a session's colours it cannot show. A pre-recorded clip cannot show real reflections: the
genuine side is a simulation.

This measures the replay check alone (the other checks may still refuse a replay: the challenge, PAD). The
thresholds were tuned on video/: those are training-set figures. Held out (tuned nothing): the 17 genuine clips
of `video2/` (17 other people), cut into consecutive 3-second windows, frames downscaled to 720 px like the
service's decoder; the same replays of each window (the baseline there is a plain re-encode at another sampling
phase), and as negatives every ordered pair of windows of the same clip.

Usage: .venv/bin/python bench/bench_replays.py   (JSON on stdout, progress on stderr)
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import CpuMeter, add_faces_arg, emit, log, machine, require_faces
from bench_liveness import overlaps
from facewarden.evaluation.attack_light import simulate_reflections, window_light
from facewarden.evaluation.attack_replays import dropped, stretched, zoomed_and_tinted
from facewarden.evaluation.attack_segments import FPS, SEGMENT_S, SEGMENTS, decode_native, sample_clip, shrink
from facewarden.evaluation.attacks import REPLAY_VARIANTS, AttackSet, camera_all
from facewarden.liveness.challenge import Action, Challenge
from facewarden.liveness.decision import LivenessChecker, LivenessPolicy, is_replay, replay_matches
from facewarden.liveness.landmarks import LandmarkDetector
from facewarden.liveness.measures import measure_frames
from facewarden.liveness.pad import PadScorer
from facewarden.vision import FaceEngine

BASELINE = "re-capture (baseline)"
ANY_CHALLENGE = Challenge((Action.BLINK,))  # only the replay and light verdicts are read below


def held_out(faces: Path, attacks: AttackSet, checker: LivenessChecker) -> dict[str, Any]:
    """The same replays of video2's genuine clips (none of them tuned anything)."""
    policy = checker.policy
    rng = np.random.default_rng(16)
    light_rng = random.Random(16)

    zoomed_lit: list[list[str]] = []
    windows: list[tuple[str, float, np.ndarray, dict[str, np.ndarray]]] = []
    for path in sorted((faces / "video2").glob("*.mp4")):
        times, images = decode_native(path)
        images = [shrink(im) for im in images]
        duration = float(times[-1])
        for t0 in np.arange(0.0, duration - SEGMENT_S + 1e-6, SEGMENT_S):
            t1 = float(t0) + SEGMENT_S
            hashes = attacks.session_fingerprint(sample_clip(times, images, float(t0), t1, FPS))
            shifted = sample_clip(times, images, float(t0), t1, FPS, phase=0.5 / FPS)
            replays = {BASELINE: camera_all(shifted, rng), "zoom 15% + tint": zoomed_and_tinted(shifted, rng),
                       "every 3rd frame dropped": dropped(camera_all(shifted, rng))}
            for speed in (0.8, 1.25):
                replays[f"speed {speed}"] = camera_all(stretched(times, images, float(t0), t1, FPS, speed), rng)
            windows.append((path.stem, float(t0), hashes,
                            {k: attacks.session_fingerprint(v) for k, v in replays.items()}))
            # the zoomed replay sent to a session with the light challenge: it cannot show that session's colours
            zoomed_lit.append(checker.assess(replays["zoom 15% + tint"], ANY_CHALLENGE, earlier_fingerprints=[hashes],
                                             light=window_light(light_rng)).reasons)
        log(f"held out: {path.name} ({len(windows)} windows so far)")
    out: dict[str, Any] = {"clips": len({w[0] for w in windows}), "windows": len(windows), "per_variant": {}}
    for variant in (BASELINE, *REPLAY_VARIANTS):
        caught = [any(is_replay(m, policy) for m in replay_matches(w[3][variant], w[2])) for w in windows]
        out["per_variant"][variant] = {"replays": len(caught), "caught": sum(caught),
                                       "catch_rate": round(sum(caught) / max(1, len(caught)), 4)}
    pairs = [(a, b) for a, b in itertools.permutations(windows, 2) if a[0] == b[0]]
    flagged = [(a, b) for a, b in pairs if any(is_replay(m, policy) for m in replay_matches(b[2], a[2]))]
    out["genuine_same_person"] = {"pairs": len(pairs), "flagged_as_replay": len(flagged)}
    # the flagged genuine pairs again, the later session filmed under its own colours (simulated reflections)
    lit_reasons = []
    for clip in sorted({b[0] for _, b in flagged}):
        times, images = decode_native(faces / "video2" / f"{clip}.mp4")
        images = [shrink(im) for im in images]
        for a, b in [(a, b) for a, b in flagged if b[0] == clip]:
            frames = sample_clip(times, images, b[1], b[1] + SEGMENT_S, FPS)
            light = window_light(light_rng)
            landmarks = [m.landmarks for m in measure_frames(frames, attacks.detector)]
            d = checker.assess(simulate_reflections(frames, landmarks, light), ANY_CHALLENGE,
                               earlier_fingerprints=[a[2]], light=light)
            lit_reasons.append(d.reasons)
    out["with_light_challenge"] = {
        "genuine_flagged_pairs_lit": {
            "pairs": len(lit_reasons), "refused_as_replay": sum("replayed_recording" in r for r in lit_reasons),
            "light_followed": sum("light_not_followed" not in r for r in lit_reasons)},
        "zoomed_replays_unlit": {
            "replays": len(zoomed_lit), "refused_for_light": sum("light_not_followed" in r for r in zoomed_lit),
            "refused_as_replay": sum("replayed_recording" in r for r in zoomed_lit)},
        "note": "decided by the checker with a session's light challenge; other reasons (the challenge, whose "
                "actions these windows were not asked) are not counted: only the replay and light verdicts"}
    return out



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_faces_arg(ap)
    args = ap.parse_args()
    faces = require_faces(args.faces, "video", "video2")
    policy = LivenessPolicy()
    engine = FaceEngine()
    attacks = AttackSet(faces, engine, LandmarkDetector("dlib5"))
    checker = LivenessChecker(engine, PadScorer(faces.parent / "models" / "pad"), attacks.detector, policy)
    meter, t0 = CpuMeter(), time.perf_counter()
    originals, replays = {}, {}
    for n, seg in enumerate(SEGMENTS, start=1):
        originals[seg.label] = attacks.original_fingerprint(seg)
        replays[(seg.label, BASELINE)] = attacks.session_fingerprint(attacks.recapture(seg))
        for variant in REPLAY_VARIANTS:
            replays[(seg.label, variant)] = attacks.session_fingerprint(attacks.replay_variant(seg, variant).frames)
        log(f"{n}/{len(SEGMENTS)} {seg.label} ({time.perf_counter() - t0:.0f} s)")

    per_variant: dict[str, Any] = {}
    for variant in (BASELINE, *REPLAY_VARIANTS):
        pairs_of = [replay_matches(replays[(s.label, variant)], originals[s.label]) for s in SEGMENTS]
        caught = [any(is_replay(m, policy) for m in pair) for pair in pairs_of]
        matches = [min(pair, key=lambda m: m.distance) for pair in pairs_of]
        per_variant[variant] = {
            "replays": len(matches), "caught": sum(caught), "missed": len(matches) - sum(caught),
            "catch_rate": round(sum(caught) / len(matches), 4),
            "distance_median": round(sorted(m.distance for m in matches)[len(matches) // 2], 4),
            "distance_max_caught": round(max((m.distance for m, c in zip(matches, caught, strict=True) if c),
                                             default=0.0), 4),
            "missed_segments": [s.label for s, c in zip(SEGMENTS, caught, strict=True) if not c]}
    pairs = [(a, b) for a, b in itertools.permutations(SEGMENTS, 2)
             if a.video == b.video and not overlaps(a.label, b.label)]
    flagged = [f"{b.label} after {a.label}" for a, b in pairs
               if any(is_replay(m, policy) for m in replay_matches(originals[b.label], originals[a.label]))]
    emit({"bench": "replays", "machine": machine(), "cpu": meter.stop(), "wall_s": round(time.perf_counter() - t0, 1),
          "segments": len(SEGMENTS), "data": "video/ segments (the liveness tuning data: training-set figures)",
          "rule": {"reuse_below": policy.reuse_below, "reuse_loose_below": policy.reuse_loose_below,
                   "reuse_min_correlation": policy.reuse_min_correlation,
                   "reuse_other_speed_below": policy.reuse_other_speed_below},
          "per_variant": per_variant,
          "ratio_to_baseline": {v: round(per_variant[v]["catch_rate"] / max(per_variant[BASELINE]["catch_rate"], 1e-9),
                                         3) for v in REPLAY_VARIANTS},
          "genuine_same_person": {"pairs": len(pairs), "flagged_as_replay": len(flagged), "flagged": flagged},
          "held_out_video2": held_out(faces, attacks, checker)})


if __name__ == "__main__":
    main()
