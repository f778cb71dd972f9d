"""The active light challenge: random screen colours the face must reflect, in time, more than the background.

Each session that asks for it carries a random sequence of full-screen colours and durations. The capture page
(`/capture/`) shows them while it records, after the head actions (`light_start_s`): colour flashes disturb the
landmarks and the eye measure the actions are read from, and a person reads the screen more still than not.
Light from a phone or laptop screen held at arm's length falls on
the face, a few tens of centimetres away, far more than on a background a metre or more behind (the
illuminance falls with the square of the distance). So the face's colour must follow the sequence, frame by
frame with the camera's delay, and follow it more strongly than the background does.

What it stops: a clip recorded before the session existed (a replay, a pre-rendered deepfake, a video of a
photo), which cannot show this session's random sequence, and a screen or print that fills the camera's view
(it reflects the flashes background and all). A face-sized print held at arm's length is lit like a face while
the room behind it is not: the light check does not stop it; the depth, texture and PAD checks have to. What it
does not stop: a client that
injects a synthetic clip with the colours painted onto the face (no camera involved); only device attestation
closes that. A pre-recorded test clip cannot show the reflections either, so genuine acceptance can only be
measured on clips with the reflections simulated (`evaluation.attack_light.simulate_reflections`).

The measure: each frame's mean colour inside the face box and in the frame outside an enlarged face box, as
chromaticity (each channel over the sum, so overall exposure changes cancel), minus its median over the clip;
the screen's own chromaticity over time is the expected signal. Pearson correlation of the two over the flash
period, at the best camera delay of 0-`max_lag_s`, for the face and at that delay for the background.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from facewarden.imaging.video import Frame
from facewarden.liveness.measures import FrameMeasures

__all__ = ["BASELINE_MS", "PALETTE", "PROMPT_MS", "LightChallenge", "LightResult", "light_response",
           "light_start_s", "new_light_challenge"]

# The capture page's timeline (the page reads these from the session): one second facing the camera, then one
# prompt per action, then the colours.
BASELINE_MS = 1000
PROMPT_MS = 1300


def light_start_s(actions: int) -> float:
    """When the colours start: after the baseline and every action's prompt, plus a breath."""
    return (BASELINE_MS + PROMPT_MS * actions + 300) / 1000

# Saturated colours a screen shows well and a face reflects distinguishably; white is left out (no chroma).
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0),
    "magenta": (255, 0, 255), "cyan": (0, 255, 255)}


@dataclass(frozen=True)
class LightChallenge:
    start_s: float  # the first flash, seconds after the recording starts
    flashes: tuple[tuple[str, float], ...]  # (colour name, seconds), shown back to back

    @property
    def end_s(self) -> float:
        return self.start_s + sum(d for _, d in self.flashes)

    def colour_at(self, t: float) -> tuple[int, int, int] | None:
        """The screen colour at `t` seconds after the recording started (None: before or after the flashes)."""
        at = self.start_s
        for name, d in self.flashes:
            if at <= t < at + d:
                return PALETTE[name]
            at += d
        return None

    def to_json(self) -> dict[str, Any]:
        return {"start_ms": round(self.start_s * 1000),
                "flashes": [{"colour": name, "rgb": "#{:02x}{:02x}{:02x}".format(*PALETTE[name]),
                             "ms": round(d * 1000)} for name, d in self.flashes]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LightChallenge:
        return cls(start_s=data["start_ms"] / 1000,
                   flashes=tuple((f["colour"], f["ms"] / 1000) for f in data["flashes"]))


def new_light_challenge(flashes: int = 8, start_s: float = 0.5, *, rng: random.Random | None = None,
                        durations: tuple[float, ...] = (0.2, 0.25, 0.3, 0.35)) -> LightChallenge:
    """`flashes` colours of `durations` each (0.2-0.35 s: 2.2 s in all on average), no colour twice in a row, from
    the OS CSPRNG (unpredictable); a seeded `rng` only for repeatable evaluations."""
    rng = rng or secrets.SystemRandom()
    names: list[str] = []
    while len(names) < flashes:
        names.append(rng.choice([n for n in PALETTE if not names or n != names[-1]]))
    return LightChallenge(start_s, tuple((n, rng.choice(durations)) for n in names))


@dataclass(frozen=True)
class LightResult:
    face: float | None  # correlation of the face's colour with the sequence (None: not measurable)
    face_gain: float  # how much the face's chromaticity moves per unit of the screen's (regression slope)
    background_gain: float  # the same for the background, at the face's best delay
    lag_s: float  # the camera delay that fits the face best
    reason: str | None = None  # why not measurable: "clip_too_short", "no_face", "no_background"

    def followed(self, min_correlation: float, min_face_over_background: float) -> bool:
        """The face follows the sequence closely, and moves with it more than the background does."""
        return (self.face is not None and self.face >= min_correlation and self.face_gain > 0
                and self.face_gain >= min_face_over_background * max(self.background_gain, 0.0))


def _chroma(rgb_means: np.ndarray) -> np.ndarray:
    total = np.maximum(rgb_means.sum(axis=1, keepdims=True), 1.0)
    c = rgb_means / total
    return c - np.median(c, axis=0)


def _box_sum(rgb: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> tuple[np.ndarray, int]:
    h, w = rgb.shape[:2]
    y0, y1, x0, x1 = max(0, y0), min(h, y1), max(0, x0), min(w, x1)
    if y1 <= y0 or x1 <= x0:
        return np.zeros(3), 0
    # OpenCV sums a region of interest in place (SIMD), 30x faster than numpy's reduction over a uint8 frame
    return np.array(cv2.sumElems(rgb[y0:y1, x0:x1])[:3]), (y1 - y0) * (x1 - x0)


def _regions(rgb: np.ndarray, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Mean RGB inside the face box (its central 60 %) and outside the box enlarged 1.6x (and the body below)."""
    left, top, right, bottom = box
    bw, bh = right - left, bottom - top
    face, n_face = _box_sum(rgb, int(top + 0.2 * bh), int(bottom - 0.2 * bh), int(left + 0.2 * bw),
                            int(right - 0.2 * bw))
    total, n_total = _box_sum(rgb, 0, rgb.shape[0], 0, rgb.shape[1])
    person, n_person = _box_sum(rgb, int(top - 0.3 * bh), int(bottom + 0.6 * bh), int(left - 0.3 * bw),
                                int(right + 0.3 * bw))
    n_back = n_total - n_person
    back = (total - person) / n_back if n_back > 0 else np.full(3, np.nan)
    return face / max(1, n_face), back


def _fit(a: np.ndarray, b: np.ndarray) -> tuple[float | None, float]:
    """(Pearson correlation, regression slope of `a` on `b`) of two (n, 3) colour series, each channel centred
    on its own mean."""
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    bb = float((b * b).sum())
    den = float(np.sqrt((a * a).sum() * bb))
    if not np.isfinite(den) or den < 1e-12:
        return None, 0.0
    return float((a * b).sum() / den), float((a * b).sum() / bb)


def light_response(frames: Sequence[Frame], measures: Sequence[FrameMeasures], light: LightChallenge, *,
                   min_lag_s: float = -0.2, max_lag_s: float = 0.4) -> LightResult:
    """How well the face (and the background) follow the session's colour sequence. The camera's delay is
    searched from `min_lag_s` (negative: the client's clock started before its first recorded frame) to
    `max_lag_s`."""
    t = np.array([f.t for f in frames], dtype=np.float64)
    if not len(t) or t[-1] < light.end_s + min(0.0, min_lag_s):
        return LightResult(None, 0.0, 0.0, 0.0, "clip_too_short")
    boxes = [m.landmarks.box if m.face and m.landmarks is not None else None for m in measures]
    known = [i for i, b in enumerate(boxes) if b is not None]
    if len(known) < 0.8 * len(frames):
        return LightResult(None, 0.0, 0.0, 0.0, "no_face")
    last = None
    face_rgb, back_rgb = [], []
    for i, f in enumerate(frames):  # a frame without landmarks uses the nearest earlier face box
        last = boxes[i] or last or boxes[known[0]]
        fm, bm = _regions(np.asarray(f.rgb), last)
        face_rgb.append(fm)
        back_rgb.append(bm)
    backs = np.array(back_rgb)
    seen = np.isfinite(backs).all(axis=1)
    if seen.mean() < 0.8:  # the face fills the view: no background to compare (a print brought close)
        return LightResult(None, 0.0, 0.0, 0.0, "no_background")
    backs[~seen] = np.median(backs[seen], axis=0)
    face, back = _chroma(np.array(face_rgb)), _chroma(backs)
    best: tuple[float, float, float, float] | None = None
    for lag in np.arange(min_lag_s, max_lag_s + 1e-9, 0.033):
        # the expected chromaticity at the moment each frame was lit: the screen colour `lag` earlier
        expected = [light.colour_at(float(x - lag)) for x in t]
        sel = np.array([e is not None for e in expected])
        if sel.sum() < 6:
            continue
        exp = _chroma(np.array([e for e in expected if e is not None], dtype=np.float64))
        fc, fg = _fit(face[sel], exp)
        if fc is not None and (best is None or fc > best[0]):
            best = (fc, fg, _fit(back[sel], exp)[1], float(lag))
    if best is None:
        return LightResult(None, 0.0, 0.0, 0.0, "clip_too_short")
    return LightResult(*best)
