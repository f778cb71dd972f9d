"""Simulated screen reflections, for measuring the light challenge on pre-recorded clips.

A pre-recorded clip cannot show the reflections of a session's colours, so a genuine session's acceptance can
only be measured with them added: light reflected by a surface adds its albedo times the screen's illuminance,
so each pixel gains `gain` times its own value times the screen colour, fully on the face (the screen is a few
tens of centimetres away) and falling off outside it, `background_ratio` of it on the background (a metre or
more behind: the inverse square law gives well under a tenth). The face region is the detected face box,
enlarged, feathered.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import cv2
import numpy as np

from facewarden.imaging.video import Frame
from facewarden.liveness.landmarks import FaceLandmarks
from facewarden.liveness.light import LightChallenge, new_light_challenge

__all__ = ["simulate_reflections", "window_light"]


def window_light(rng: random.Random) -> LightChallenge:
    """A session's colours that fit a 3-second evaluation window: 8 flashes of 0.2-0.3 s from 0.4 s (the service
    times them after the actions; a pre-recorded window has no room for that), repeatable from `rng`."""
    return new_light_challenge(start_s=0.4, rng=rng, durations=(0.2, 0.25, 0.3))


def simulate_reflections(frames: Sequence[Frame], landmarks: Sequence[FaceLandmarks | None], light: LightChallenge,
                         *, gain: float = 0.12, background_ratio: float = 0.05, lag_s: float = 0.1) -> list[Frame]:
    """The frames as a camera would have filmed them under the session's flashes (seen `lag_s` late)."""
    out = []
    box = next((lm.box for lm in landmarks if lm is not None), None)
    for f, lm in zip(frames, landmarks, strict=True):
        colour = light.colour_at(f.t - lag_s)
        box = lm.box if lm is not None else box
        if colour is None or box is None:
            out.append(f)
            continue
        h, w = f.rgb.shape[:2]
        left, top, right, bottom = box
        bw, bh = right - left, bottom - top
        mask = np.full((h, w), background_ratio, np.float32)
        cv2.ellipse(mask, (int((left + right) / 2), int((top + bottom) / 2)), (int(0.65 * bw), int(0.8 * bh)), 0,
                    0, 360, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), max(2.0, 0.15 * bw))
        tint = np.asarray(colour, np.float32) / 255.0
        lit = f.rgb.astype(np.float32) * (1.0 + gain * mask[..., None] * tint[None, None, :])
        out.append(Frame(np.clip(lit, 0, 255).astype(np.uint8), f.t))
    return out
