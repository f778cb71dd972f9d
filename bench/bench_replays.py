"""Replays at other speeds, zoomed or thinned: how many the replay check catches, against the plain re-capture
it was built for (the baseline, same run), and how often it flags a genuine new session of the same person.

Every genuine segment of `video/` (`attack_segments.SEGMENTS`) is "accepted" once (its fingerprint on record),
then replayed answering the same actions as: the existing re-capture (`AttackSet.recapture`: other sampling
phase, 5 % crop, brighter, JPEG q70; the baseline) and each of `attacks.REPLAY_VARIANTS` (0.8x and 1.25x speed
with interpolated frames, a 15 % zoom with a warm tint, every third frame dropped). Each replay's fingerprint is
matched against the original with `media.reuse_match` and decided with `decision.is_replay`, the checker's own
rule. Genuine negatives: every ordered pair of non-overlapping segments of the same video (the same person's
next session, the other one on record).

This measures the replay check alone (the other checks may still refuse a replay: the challenge, PAD). The
thresholds were tuned on these same videos: these are training-set figures.

Usage: .venv/bin/python bench/bench_replays.py   (JSON on stdout, progress on stderr)
"""

from __future__ import annotations

import argparse
import itertools
import time
from typing import Any

from _common import CpuMeter, add_faces_arg, emit, log, machine, require_faces
from bench_liveness import overlaps
from facewarden.evaluation.attack_segments import SEGMENTS
from facewarden.evaluation.attacks import REPLAY_VARIANTS, AttackSet
from facewarden.liveness.decision import LivenessPolicy, is_replay
from facewarden.liveness.landmarks import LandmarkDetector
from facewarden.liveness.media import reuse_match
from facewarden.vision import FaceEngine

BASELINE = "re-capture (baseline)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_faces_arg(ap)
    args = ap.parse_args()
    faces = require_faces(args.faces, "video")
    policy = LivenessPolicy()
    attacks = AttackSet(faces, FaceEngine(), LandmarkDetector("dlib5"))
    meter, t0 = CpuMeter(), time.perf_counter()
    originals, replays = {}, {}
    for n, seg in enumerate(SEGMENTS, start=1):
        originals[seg.label] = attacks.session_fingerprint(attacks.clip(seg.video, seg.t0, seg.t1))
        replays[(seg.label, BASELINE)] = attacks.session_fingerprint(attacks.recapture(seg))
        for variant in REPLAY_VARIANTS:
            replays[(seg.label, variant)] = attacks.session_fingerprint(attacks.replay_variant(seg, variant).frames)
        log(f"{n}/{len(SEGMENTS)} {seg.label} ({time.perf_counter() - t0:.0f} s)")

    per_variant: dict[str, Any] = {}
    for variant in (BASELINE, *REPLAY_VARIANTS):
        matches = [reuse_match(replays[(s.label, variant)], originals[s.label]) for s in SEGMENTS]
        caught = [is_replay(d, c, policy) for d, c in matches]
        per_variant[variant] = {
            "replays": len(matches), "caught": sum(caught), "missed": len(matches) - sum(caught),
            "catch_rate": round(sum(caught) / len(matches), 4),
            "distance_median": round(sorted(d for d, _ in matches)[len(matches) // 2], 4),
            "missed_segments": [s.label for s, c in zip(SEGMENTS, caught, strict=True) if not c]}
    pairs = [(a, b) for a, b in itertools.permutations(SEGMENTS, 2)
             if a.video == b.video and not overlaps(a.label, b.label)]
    flagged = [f"{b.label} after {a.label}" for a, b in pairs
               if is_replay(*reuse_match(originals[b.label], originals[a.label]), policy)]
    emit({"bench": "replays", "machine": machine(), "cpu": meter.stop(), "wall_s": round(time.perf_counter() - t0, 1),
          "segments": len(SEGMENTS), "data": "video/ segments (the liveness tuning data: training-set figures)",
          "rule": {"reuse_below": policy.reuse_below, "reuse_loose_below": policy.reuse_loose_below,
                   "reuse_min_correlation": policy.reuse_min_correlation},
          "per_variant": per_variant,
          "ratio_to_baseline": {v: round(per_variant[v]["catch_rate"] / max(per_variant[BASELINE]["catch_rate"], 1e-9),
                                         3) for v in REPLAY_VARIANTS},
          "genuine_same_person": {"pairs": len(pairs), "flagged_as_replay": len(flagged), "flagged": flagged}})


if __name__ == "__main__":
    main()
