"""The light challenge's operating envelope: how strong the screen's reflection on a face must be for the check
to pass a genuine user, through the path a real client's clip takes, and what a camera's automatic white
balance does to it.

A pre-recorded clip cannot show a session's reflections, so every genuine figure here is on reflections
simulated onto genuine clips (`evaluation.attack_light.simulate_reflections`: the face gains `gain` times its
own colour times the screen's, the background `background_ratio` of that, seen `lag` late). What is measured is
the check's margin, not a real screen's acceptance: a phone at full brightness 30 cm from a face in an office
adds a few per cent to ten per cent of the ambient light; in sunlight, far less.

Material, split as `evaluation.field` fixes it: tune = `video/` and the video-retalking / AniPortrait clips of
`video2/` (the light thresholds were read off these at gain 0.12); held out = the MEAD, X-Portrait, TPSMM and
DaGAN clips. Each clip gives up to `--per-clip` non-overlapping 3-second windows, each with its own random
colours (8 flashes of 0.2-0.3 s from 0.4 s).

Conditions (the light check alone, `light_response` with the default policy's thresholds):
* genuine, should pass: gain 0.03 / 0.05 / 0.08 / 0.12 on the decoder's frames; the same after the capture
  page's path (640 px, VP8 WebM at 1 Mbit/s, decoded by the service's `decode_video`); a camera delay of 0.3 s;
  a wall close behind (background gets 30 % of the face's light); an automatic white balance that pulls the
  frame's mean colour back to grey with a 0.5 s time constant;
* attacks, should be refused: the clip unlit; lit by another session's colours; lit like a flat print (the
  background as much as the face); unlit through the WebM path.
Baseline in the same run: gain 0.12 on the decoder's frames, the condition the thresholds were read off; every
genuine condition is also given as a ratio to it.

Usage: .venv/bin/python bench/bench_light.py [--per-clip 3]   (JSON on stdout, progress on stderr)
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from _common import add_faces_arg, emit, log, machine, require_faces
from facewarden.evaluation.attack_light import simulate_reflections, window_light
from facewarden.evaluation.attack_segments import (
    SEGMENT_S,
    VIDEOS,
    decode_native,
    sample_clip,
    shrink,
    through_capture_page,
)
from facewarden.evaluation.field import HELD_OUT, TUNE
from facewarden.imaging.video import Frame
from facewarden.liveness.decision import LivenessPolicy
from facewarden.liveness.landmarks import FaceLandmarks, LandmarkDetector
from facewarden.liveness.light import LightChallenge, light_response
from facewarden.liveness.measures import FrameMeasures, measure_frames

FPS = 15
BASELINE = "gain 0.12"
GENUINE = (BASELINE, "gain 0.08", "gain 0.05", "gain 0.03", "webm gain 0.12", "webm gain 0.05", "delay 0.3 s",
           "wall close behind", "auto white balance", "auto white balance gain 0.05")
ATTACKS = ("unlit", "other colours", "flat print", "webm unlit")


def auto_white_balance(frames: list[Frame], tau_s: float = 0.5) -> list[Frame]:
    """A camera's grey-world white balance: each frame is scaled so that a running mean (time constant `tau_s`)
    of the frame's channel means is grey. It partly cancels a flash that lasts longer than `tau_s`."""
    out, state = [], None
    for i, f in enumerate(frames):
        means = np.asarray(cv2.mean(f.rgb)[:3], np.float64)
        dt = f.t - frames[i - 1].t if i else 0.0
        alpha = 1.0 - np.exp(-dt / tau_s) if state is not None else 1.0
        state = means if state is None else state + alpha * (means - state)
        scale = state.mean() / np.maximum(state, 1.0)
        out.append(Frame(np.clip(f.rgb.astype(np.float32) * scale[None, None, :].astype(np.float32), 0, 255)
                         .astype(np.uint8), f.t))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_faces_arg(ap)
    ap.add_argument("--per-clip", type=int, default=3, help="3-second windows per clip (non-overlapping)")
    args = ap.parse_args()
    faces = require_faces(args.faces, "video", "video2")
    started = time.perf_counter()
    detector, policy, rng = LandmarkDetector("dlib5"), LivenessPolicy(), random.Random(16)
    counts: dict[str, dict[str, list[int]]] = {}

    def followed(frames: list[Frame], measures: list[FrameMeasures] | None, light: LightChallenge) -> bool:
        r = light_response(frames, measures or measure_frames(frames, detector), light)
        return r.followed(policy.light_min_correlation, policy.light_min_face_over_background)

    def conditions(frames: list[Frame], measures: list[FrameMeasures], light: LightChallenge,
                   other: LightChallenge) -> dict[str, Callable[[], bool]]:
        lm: list[FaceLandmarks | None] = [m.landmarks for m in measures]

        def lit(**kw: float) -> list[Frame]:
            return simulate_reflections(frames, lm, light, **kw)

        return {
            **{f"gain {g}": (lambda g=g: followed(lit(gain=g), measures, light)) for g in (0.12, 0.08, 0.05, 0.03)},
            **{f"webm gain {g}": (lambda g=g: followed(through_capture_page(lit(gain=g)), None, light))
               for g in (0.12, 0.05)},
            "delay 0.3 s": lambda: followed(lit(lag_s=0.3), measures, light),
            "wall close behind": lambda: followed(lit(background_ratio=0.3), measures, light),
            "auto white balance": lambda: followed(auto_white_balance(lit()), measures, light),
            "auto white balance gain 0.05": lambda: followed(auto_white_balance(lit(gain=0.05)), measures, light),
            "unlit": lambda: followed(frames, measures, light),
            "other colours": lambda: followed(simulate_reflections(frames, lm, other), measures, light),
            "flat print": lambda: followed(lit(background_ratio=1.0), measures, light),
            "webm unlit": lambda: followed(through_capture_page(frames), None, light),
        }

    parts = {"tune": [f"video/{v}" for v in VIDEOS] + list(TUNE), "held_out": list(HELD_OUT)}
    for part, clips in parts.items():
        tally = counts.setdefault(part, {c: [0, 0] for c in GENUINE + ATTACKS})
        for clip in clips:
            times, images = decode_native(faces / f"{clip}.mp4")
            images = [shrink(im, 720) for im in images]
            starts = np.arange(0.0, float(times[-1]) - SEGMENT_S + 1e-6, SEGMENT_S)[: args.per_clip]
            for t0 in starts:
                frames = sample_clip(times, images, float(t0), float(t0) + SEGMENT_S, FPS)
                measures = measure_frames(frames, detector)
                if sum(m.face for m in measures) < 0.8 * len(measures):
                    log(f"{clip} {t0:.1f} s: no face in most frames, skipped")
                    continue
                light, other = window_light(rng), window_light(rng)
                row = {name: run() for name, run in conditions(frames, measures, light, other).items()}
                for name, ok in row.items():
                    tally[name][0] += int(ok)
                    tally[name][1] += 1
                log(f"{part:8s} {clip:45s} {t0:5.1f} s  genuine passed "
                    f"{sum(row[c] for c in GENUINE)}/{len(GENUINE)}, attacks passed {sum(row[c] for c in ATTACKS)}")

    def summary(part: str) -> dict[str, Any]:
        tally = counts[part]
        base = tally[BASELINE][0] / max(tally[BASELINE][1], 1)
        return {
            "windows": tally[BASELINE][1],
            "genuine_accepted": {c: {"accepted": k, "of": n, "rate": round(k / n, 4) if n else None,
                                     "ratio_to_baseline": round(k / n / base, 3) if n and base else None}
                                 for c, (k, n) in ((c, tally[c]) for c in GENUINE)},
            "attacks_accepted": {c: {"accepted": k, "of": n} for c, (k, n) in ((c, tally[c]) for c in ATTACKS)},
        }

    emit({"bench": "light", "machine": machine(), "baseline": BASELINE,
          "thresholds": {"light_min_correlation": policy.light_min_correlation,
                         "light_min_face_over_background": policy.light_min_face_over_background,
                         "read_off": "tune windows at gain 0.12 (bench_field.py)"},
          "tune": summary("tune"), "held_out": summary("held_out"),
          "cpu_s": round(time.process_time(), 1), "wall_s": round(time.perf_counter() - started, 1)})


if __name__ == "__main__":
    main()
