"""Active liveness: a random sequence of actions, checked in order and in time against per-frame measures.

Yaw, pitch and eye openness are read relative to the session's own baseline (the median of its first
`baseline_s` seconds), so a person's resting pose and eye shape do not matter. (Re-basing a baseline that moves,
on the pose nearest the camera axis or on the pose held longest, was tried for issue 16 and refused 7-11 of the
39 tuning segments that pass with the median: the capture client asks the person to face the camera first.)
Head actions must be held for `min_frames` frames (a one-frame landmark glitch is
not a turn); a look-up is not read off a deeply turned head (five landmarks confuse pitch with a large yaw).

Natural movement between the asked actions does not fail a person: a head action nobody asked for fails the
challenge only when it contradicts the one awaited (left against right), or is clearly deliberate (beyond
`deliberate_factor` times its threshold). This tolerates more of a recording of someone moving about than the
old rule did (a turn of up to 22 degrees while a look-up is awaited passes); such recordings are the replay
check's and the light challenge's to stop. Blinks are involuntary, so a blink out of turn is ignored.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from facewarden.liveness.blink import BlinkThresholds, detect_blinks, thresholds_for
from facewarden.liveness.measures import FrameMeasures


class Action(StrEnum):
    TURN_LEFT = "turn_left"  # the subject's own left
    TURN_RIGHT = "turn_right"
    BLINK = "blink"
    LOOK_UP = "look_up"


_HEAD_ACTIONS = (Action.TURN_LEFT, Action.TURN_RIGHT, Action.LOOK_UP)
_OPPOSITE = {Action.TURN_LEFT: Action.TURN_RIGHT, Action.TURN_RIGHT: Action.TURN_LEFT}


@dataclass(frozen=True)
class Challenge:
    actions: tuple[Action, ...]
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(16))


def new_challenge(n_actions: int | None = None) -> Challenge:
    """2-3 distinct actions in a random order, drawn from the OS CSPRNG so a client cannot predict them."""
    rng = secrets.SystemRandom()
    n = n_actions if n_actions is not None else rng.choice((2, 3))
    if not 1 <= n <= len(Action):
        raise ValueError(f"a challenge has 1-{len(Action)} actions")
    return Challenge(actions=tuple(rng.sample(list(Action), n)))


@dataclass(frozen=True)
class ChallengeRules:
    turn_deg: float = 15.0  # yaw change from baseline that counts as a turn
    look_up_deg: float = 12.0  # pitch change from baseline that counts as looking up
    blink_max_yaw_deg: float = 12.0  # blinks are only read on near-frontal frames
    min_frames: int = 2  # a head action must last this many consecutive frames
    baseline_s: float = 0.7  # the first seconds, read as the neutral pose (the client says: look at the camera)
    look_up_max_yaw_deg: float = 30.0  # a look-up is not read off a head turned further than this
    deliberate_factor: float = 1.5  # an unasked head action this far past its threshold is deliberate: it fails
    # The awaited head action counts from this fraction of its threshold (1.0: at it). The liveness policy
    # lowers it where a session's light challenge proves the clip was filmed for it (`lit_awaited_factor`).
    awaited_factor: float = 1.0
    action_window_s: float = 4.0  # each action must start within this time of the previous one
    max_missing_fraction: float = 0.2  # frames without a face, beyond this, fail the session
    mirrored: bool = False  # True when the client sends selfie-mirrored frames
    blink: BlinkThresholds | None = None  # None: chosen by the landmark model

    def head_threshold(self, action: Action) -> float:
        """The degrees from baseline at which a head action counts."""
        return self.look_up_deg if action == Action.LOOK_UP else self.turn_deg


@dataclass(frozen=True)
class ActionEvent:
    action: Action
    t: float  # onset
    peak: float  # degrees from baseline (head) or openness/baseline (blink)


def _median3(x: np.ndarray) -> np.ndarray:
    # a 3-frame median removes single-frame landmark jitter without delaying onsets by more than one frame
    out = x.copy()
    for i in range(1, len(x) - 1):
        window = x[i - 1:i + 2]
        if np.isfinite(window).all():
            out[i] = np.median(window)
    return out


def _runs(t: np.ndarray, mask: np.ndarray, values: np.ndarray, action: Action, min_frames: int) -> list[ActionEvent]:
    events: list[ActionEvent] = []
    i = 0
    while i < len(mask):
        if not mask[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(mask) and mask[j + 1]:
            j += 1
        if j - i + 1 >= min_frames:
            seg = values[i:j + 1]
            events.append(ActionEvent(action, float(t[i]), float(seg[np.nanargmax(np.abs(seg))])))
        i = j + 1
    return events


def find_events(measures: Sequence[FrameMeasures], rules: ChallengeRules | None = None, *, scale: float = 1.0
                ) -> tuple[list[ActionEvent], dict[str, Any]]:
    """Every action seen in the clip, in time order, plus the baseline it was read against. `scale` multiplies
    the head actions' thresholds (the awaited action's reading)."""
    rules = rules or ChallengeRules()
    t = np.array([m.t for m in measures], dtype=np.float64)
    yaw = np.array([m.yaw for m in measures], dtype=np.float64)
    pitch = np.array([m.pitch for m in measures], dtype=np.float64)
    openness = np.array([m.openness for m in measures], dtype=np.float64)
    info: dict[str, Any] = {"frames": len(measures)}
    if not len(t):
        return [], info | {"reason": "no_frames"}
    base = np.isfinite(yaw) & (t <= t[0] + rules.baseline_s)
    if base.sum() < 3:
        return [], info | {"reason": "no_baseline"}
    b_yaw, b_pitch = float(np.median(yaw[base])), float(np.median(pitch[base]))
    open_base = openness[base & np.isfinite(openness)]
    b_open = float(np.median(open_base)) if len(open_base) else float("nan")
    info |= {"baseline": {"yaw": b_yaw, "pitch": b_pitch, "openness": b_open}}
    sign = -1.0 if rules.mirrored else 1.0
    dyaw = sign * (_median3(yaw) - b_yaw)
    dpitch = _median3(pitch) - b_pitch
    with np.errstate(invalid="ignore"):
        turn, up = rules.turn_deg * scale, rules.look_up_deg * scale
        events = _runs(t, dyaw >= turn, dyaw, Action.TURN_LEFT, rules.min_frames)
        events += _runs(t, dyaw <= -turn, dyaw, Action.TURN_RIGHT, rules.min_frames)
        level = np.abs(dyaw) < rules.look_up_max_yaw_deg  # pitch read off a deep turn is the turn (5 points)
        events += _runs(t, (dpitch >= up) & level, dpitch, Action.LOOK_UP, rules.min_frames)
        frontal = np.abs(dyaw) < rules.blink_max_yaw_deg
    model = next((m.landmarks.model for m in measures if m.landmarks is not None), "dlib5")
    thresholds = rules.blink or thresholds_for(model)
    gated = np.where(frontal, openness, np.nan)
    events += [ActionEvent(Action.BLINK, b.t, b.level) for b in detect_blinks(t, gated, thresholds, b_open)]
    events.sort(key=lambda e: e.t)
    return events, info


def evaluate_challenge(measures: Sequence[FrameMeasures], challenge: Challenge,
                       rules: ChallengeRules | None = None) -> tuple[bool, dict[str, Any]]:
    """(passed, details): the challenge's actions must appear in order, each within `action_window_s`."""
    rules = rules or ChallengeRules()
    events, info = find_events(measures, rules)
    details: dict[str, Any] = info | {"expected": [a.value for a in challenge.actions], "matched": [],
                                      "events": [(e.action.value, round(e.t, 3)) for e in events]}
    if "reason" in info:
        return False, details
    missing = sum(1 for m in measures if not m.face) / len(measures)
    details["missing_face_fraction"] = missing
    if missing > rules.max_missing_fraction:
        return False, details | {"reason": "face_missing"}
    # The awaited action is read at `awaited_factor` of its threshold (the landmarks' noise must not refuse a
    # person who turned as asked); an unasked action contradicts at the full threshold.
    answers = events if rules.awaited_factor == 1.0 else find_events(measures, rules, scale=rules.awaited_factor)[0]
    t_prev = measures[0].t + rules.baseline_s
    previous: Action | None = None
    for action in challenge.actions:
        found = next((e for e in answers if t_prev < e.t <= t_prev + rules.action_window_s and e.action == action),
                     None)
        until = found.t if found else t_prev + rules.action_window_s
        for e in events:
            # a head action nobody asked for fails when it contradicts the awaited action or is clearly
            # deliberate; natural movement on the way (an overshoot coming back, the previous action again) does not
            if t_prev < e.t < until and e.action in _HEAD_ACTIONS and e.action not in (previous, action) \
                    and _contradicts(e, action, rules):
                return False, details | {"reason": "unexpected_action", "unexpected": (e.action.value, e.t),
                                         "while_waiting_for": action.value}
        if found is None:
            return False, details | {"reason": "action_not_seen", "missing_action": action.value}
        details["matched"].append({"action": action.value, "t": found.t, "peak": found.peak})
        t_prev = found.t
        previous = action
    return True, details | {"reason": "passed"}


def _contradicts(event: ActionEvent, awaited: Action, rules: ChallengeRules) -> bool:
    if event.action == _OPPOSITE.get(awaited):
        return True
    return abs(event.peak) >= rules.deliberate_factor * rules.head_threshold(event.action)
