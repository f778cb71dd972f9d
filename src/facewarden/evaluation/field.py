"""Liveness material from clips the liveness thresholds were not read off: `../shared/faces/video2/`.

The clips are split once, by source, before any of them was looked at for tuning:

* ``TUNE``: the video-retalking and AniPortrait source clips (7 people). Thresholds may be read off these,
  together with `video/` (attack_segments).
* ``HELD_OUT``: the MEAD clips, the X-Portrait, TPSMM and DaGAN driving videos (10 people). Nothing is tuned on
  them; figures on them are the ones to quote.
* ``GENERATED``: the AI-generated clips (video2/generated/). Attacks only; nothing is tuned on any of them.

A clip is cut into 3-second windows; the actions a person performs in a window are read with the 68-point
landmark model (other landmarks than the checker's 5-point default, eye aspect ratio for blinks), and a window
answers the challenge made of those actions, as a user answers what the service asks. Windows without a head
action are skipped: every challenge the service issues (2-3 distinct actions of four) has one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from facewarden.evaluation.attack_segments import SEGMENT_S, Segment
from facewarden.imaging.video import Frame
from facewarden.liveness.challenge import Action, ActionEvent, ChallengeRules, find_events
from facewarden.liveness.landmarks import LandmarkDetector
from facewarden.liveness.measures import measure_frames

__all__ = ["GENERATED", "HELD_OUT", "TUNE", "FieldWindow", "answer_margin", "observed_actions", "windows"]

TUNE = tuple(f"video2/{n}" for n in (
    "videoretalking_face1", "videoretalking_face2", "videoretalking_face4", "videoretalking_face5",
    "aniportrait_pose_ref_video", "aniportrait_Aragaki_source_crop", "aniportrait_num18_source_crop"))
HELD_OUT = tuple(f"video2/{n}" for n in (
    "spectre_mead_M003_disgusted_015", "spectre_mead_M024_surprised_010", "spectre_mead_M026_disgusted_018",
    "spectre_mead_M030_angry_016", "spectre_mead_W015_neutral_030", "spectre_mead_W036_happy_007",
    "spectre_mead_W040_happy_029", "xportrait_driving_video", "tpsmm_driving", "dagan_driving"))
GENERATED = tuple(f"video2/generated/{n}" for n in (
    "aniportrait_Aragaki_output_crop", "geneface_zozo_radnerf_torso_smo", "vexpress_vasa1_11_gt",
    "vexpress_vasa1_3_gt", "vexpress_vasa1_l2_gt"))

_HEAD = frozenset({Action.TURN_LEFT, Action.TURN_RIGHT, Action.LOOK_UP})


@dataclass(frozen=True)
class FieldWindow:
    segment: Segment  # the clip key, the window's start and the actions performed in it
    events: int  # how many action events the reference saw (repeats included)


def _reference_events(frames: list[Frame], reference: LandmarkDetector, rules: ChallengeRules) -> list[ActionEvent]:
    events, _ = find_events(measure_frames(frames, reference), rules)
    start = frames[0].t + rules.baseline_s if frames else 0.0
    return [e for e in events if e.t > start]  # the baseline's own moments are never an answer


def observed_actions(frames: list[Frame], reference: LandmarkDetector, rules: ChallengeRules | None = None,
                     max_actions: int = 3) -> tuple[tuple[Action, ...], int]:
    """The distinct actions the reference landmarks see in `frames`, in the order they first happen (at most
    `max_actions`, as a challenge asks), and how many action events there were (repeats included)."""
    events = _reference_events(frames, reference, rules or ChallengeRules())
    seen: list[Action] = []
    for e in events:
        if e.action not in seen:
            seen.append(e.action)
    return tuple(seen[:max_actions]), len(events)


def windows(clip: str, duration: float, frames_of: Callable[[float, float], list[Frame]],
            reference: LandmarkDetector, step: float = 1.5) -> list[FieldWindow]:
    """The clip's 3-second windows (every `step` seconds) in which the person performs a head action."""
    out = []
    t0 = 0.0
    while t0 + SEGMENT_S <= duration + 1e-6:
        actions, events = observed_actions(frames_of(t0, t0 + SEGMENT_S), reference)
        if _HEAD & set(actions):
            out.append(FieldWindow(Segment(clip, round(t0, 2), actions), events))
        t0 += step
    return out


def answer_margin(frames: list[Frame], actions: tuple[Action, ...], reference: LandmarkDetector,
                  rules: ChallengeRules | None = None) -> float | None:
    """How clearly the window performs its head actions, by the reference landmarks: the smallest, over the
    asked head actions, of the action's largest excursion over its threshold (1.0: just at the threshold; the
    prompts ask to turn "well"). None without a head action. The ground truth uses the checker's thresholds, so
    a window near 1.0 is one whose label itself is a coin toss: benches report such windows apart."""
    rules = rules or ChallengeRules()
    events = _reference_events(frames, reference, rules)
    ratios = []
    for action in actions:
        if action not in _HEAD:
            continue
        peaks = [abs(e.peak) for e in events if e.action == action]
        ratios.append(max(peaks) / rules.head_threshold(action) if peaks else 0.0)
    return min(ratios) if ratios else None
