"""The active light challenge on real frames: a face that reflects the session's random screen colours passes;
the same clip without them, under another session's colours, or lit like a flat print (background as much as
face) is refused for the light alone.

A pre-recorded clip cannot show a session's reflections, so the lit clips here are genuine segments with the
reflections simulated (`evaluation.attack_light.simulate_reflections`): these tests show the check's logic on
real faces, not its acceptance of real reflections."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from facewarden.evaluation.attack_light import simulate_reflections
from facewarden.evaluation.attack_segments import SEGMENTS, through_capture_page
from facewarden.evaluation.attacks import AttackSet, Presentation
from facewarden.imaging.video import Frame
from facewarden.liveness.decision import LivenessChecker
from facewarden.liveness.landmarks import LandmarkDetector
from facewarden.liveness.light import PALETTE, LightChallenge, light_response, light_start_s, new_light_challenge
from facewarden.liveness.measures import measure_frames
from facewarden.liveness.pad import PadScorer
from facewarden.vision import FaceEngine

DURATIONS = (0.3, 0.25, 0.35, 0.2, 0.3, 0.25, 0.35, 0.2)
LIGHT = LightChallenge(light_start_s(2), tuple(zip(("red", "cyan", "blue", "yellow", "green", "magenta", "red", "blue"),
                                      DURATIONS, strict=True)))
# another session's colours, same timing: each flash swapped for its complement
OTHER = LightChallenge(light_start_s(2), tuple(zip(("cyan", "red", "yellow", "blue", "magenta", "green", "cyan", "yellow"),
                                      DURATIONS, strict=True)))


@pytest.fixture(scope="module")
def attack_set(shared_faces: Path, face_engine: FaceEngine) -> AttackSet:
    if not (shared_faces / "video" / "d19.mp4").is_file():
        pytest.fail(f"The shared clip video/d19.mp4 is missing from {shared_faces}; these tests never skip.")
    return AttackSet(shared_faces, face_engine, LandmarkDetector("dlib5"))


@pytest.fixture(scope="module")
def checker(shared_faces: Path, face_engine: FaceEngine, attack_set: AttackSet) -> LivenessChecker:
    pad_dir = shared_faces.parent / "models" / "pad"
    if not (pad_dir / "minifasnet_v2.onnx").is_file():
        pytest.fail(f"The PAD models are missing from {pad_dir}; these tests never skip.")
    return LivenessChecker(face_engine, PadScorer(pad_dir), attack_set.detector)


@pytest.fixture(scope="module")
def genuine(attack_set: AttackSet) -> Presentation:
    """d19's right turn and look-up (its first 3 s), then the person facing the screen while it flashes."""
    seg = next(s for s in SEGMENTS if s.video == "d19" and s.t0 == 0.0)
    p = attack_set.genuine(seg)
    return dataclasses.replace(p, frames=attack_set.clip("d19", 0.0, LIGHT.end_s + 0.4))


def test_a_session_light_challenge_is_random_and_survives_storage() -> None:
    a, b = new_light_challenge(), new_light_challenge()
    assert a != b and len(a.flashes) == 8
    assert all(x[0] != y[0] for x, y in zip(a.flashes, a.flashes[1:], strict=False))  # no colour twice running
    assert {name for name, _ in a.flashes} <= set(PALETTE) and all(0.2 <= d <= 0.35 for _, d in a.flashes)
    assert LightChallenge.from_json(a.to_json()) == a
    assert a.colour_at(0.0) is None and a.colour_at(a.start_s) == PALETTE[a.flashes[0][0]]
    assert a.colour_at(a.end_s + 0.01) is None and a.end_s - a.start_s <= 8 * 0.35
    # after the baseline and every action's prompt, and inside the 10 s a clip may last
    assert light_start_s(2) == 3.9 and light_start_s(3) + 8 * 0.35 < 10.0


def test_a_face_filling_the_view_leaves_no_background_and_fails_the_light(attack_set: AttackSet,
                                                                       genuine: Presentation) -> None:
    """A picture brought close to the camera (nothing but face in view) cannot show the face lit more than the
    background: without a background the check refuses instead of comparing against nothing."""
    frames = []
    for f, m in zip(genuine.frames, measure_frames(genuine.frames, attack_set.detector), strict=True):
        left, top, right, bottom = m.landmarks.box if m.landmarks else (0, 0, f.rgb.shape[1], f.rgb.shape[0])
        mx, my = (right - left) // 8, (bottom - top) // 8  # a little of the picture around the face
        crop = f.rgb[max(0, top - my):bottom + my, max(0, left - mx):right + mx]
        frames.append(Frame(np.ascontiguousarray(cv2.resize(crop, (320, 320))), f.t))
    measures = measure_frames(frames, attack_set.detector)
    result = light_response(simulate_reflections(frames, [m.landmarks for m in measures], LIGHT, background_ratio=1.0),
                            measures, LIGHT)
    assert result.reason == "no_background", result


def test_a_face_lit_by_the_session_colours_passes(checker: LivenessChecker, attack_set: AttackSet,
                                                  genuine: Presentation) -> None:
    landmarks = [m.landmarks for m in measure_frames(genuine.frames, attack_set.detector)]
    lit = simulate_reflections(genuine.frames, landmarks, LIGHT)
    d = checker.assess(lit, genuine.challenge, enrolled=genuine.enrolled, light=LIGHT)
    assert d.passed, (d.reasons, d.scores["light"])
    # a lit session reads the awaited action from 0.7 of its threshold; without the light, at the threshold
    assert d.scores["challenge"]["awaited_factor"] == 0.7
    assert checker.assess(genuine.frames, genuine.challenge).scores["challenge"]["awaited_factor"] == 1.0
    assert d.scores["light"]["face"] >= 0.7 and 0.0 <= d.scores["light"]["lag_s"] <= 0.2
    assert d.scores["light"]["face_gain"] >= 2 * d.scores["light"]["background_gain"]


@pytest.mark.parametrize("case", ["unlit recording", "another session's colours", "flat print under the light"])
def test_what_does_not_reflect_this_session_colours_is_refused_for_the_light(
        case: str, checker: LivenessChecker, attack_set: AttackSet, genuine: Presentation) -> None:
    landmarks = [m.landmarks for m in measure_frames(genuine.frames, attack_set.detector)]
    frames = {"unlit recording": genuine.frames,
              "another session's colours": simulate_reflections(genuine.frames, landmarks, OTHER),
              # a print or screen held up to the page: the light falls on the whole picture, background and all
              "flat print under the light": simulate_reflections(genuine.frames, landmarks, LIGHT,
                                                                  background_ratio=1.0)}[case]
    d = checker.assess(frames, genuine.challenge, enrolled=genuine.enrolled, light=LIGHT)
    assert d.reasons == ["light_not_followed"], (case, d.reasons, d.scores["light"])
    # without a light challenge (a purpose that does not ask for it) the same clip is judged as before
    if case == "unlit recording":
        assert checker.assess(frames, genuine.challenge, enrolled=genuine.enrolled).passed


def test_the_capture_page_path_keeps_the_timing_and_the_reflections(attack_set: AttackSet, genuine: Presentation
                                                                     ) -> None:
    """The benches' stand-in for a real client (640 px VP8 WebM through the service's decoder) keeps every frame
    and its time, and the simulated reflections survive it while their absence does too."""
    frames = genuine.frames
    landmarks = [m.landmarks for m in measure_frames(frames, attack_set.detector)]
    sent = through_capture_page(simulate_reflections(frames, landmarks, LIGHT))
    assert len(sent) == len(frames) and max(sent[0].rgb.shape[:2]) <= 640
    assert all(abs(a.t - b.t) < 0.01 for a, b in zip(sent, frames, strict=True))
    lit = light_response(sent, measure_frames(sent, attack_set.detector), LIGHT)
    unlit_frames = through_capture_page(frames)
    unlit = light_response(unlit_frames, measure_frames(unlit_frames, attack_set.detector), LIGHT)
    assert lit.followed(0.7, 2.0) and not unlit.followed(0.7, 2.0), (lit, unlit)


def test_a_lit_session_like_an_earlier_one_is_not_refused_as_a_replay(checker: LivenessChecker,
                                                                      attack_set: AttackSet,
                                                                      genuine: Presentation) -> None:
    """A person who holds still looks alike from one session to the next, so the fingerprint match flags some
    genuine next sessions (7 of 22 held-out pairs). When the face followed this session's random colours the
    frames were filmed after the session began: the match is kept for the audit record but refuses nothing.
    Without the light, or when the colours are not followed, the replay is refused as before."""
    landmarks = [m.landmarks for m in measure_frames(genuine.frames, attack_set.detector)]
    earlier = checker.assess(genuine.frames, genuine.challenge, enrolled=genuine.enrolled).fingerprint
    lit = checker.assess(simulate_reflections(genuine.frames, landmarks, LIGHT), genuine.challenge,
                         enrolled=genuine.enrolled, earlier_fingerprints=[earlier], light=LIGHT)
    assert lit.passed, (lit.reasons, lit.scores["media"])
    assert lit.scores["media"]["reused"] and lit.scores["media"]["replay_overruled_by_light"]
    unlit = checker.assess(genuine.frames, genuine.challenge, enrolled=genuine.enrolled,
                           earlier_fingerprints=[earlier], light=LIGHT)
    assert unlit.reasons == ["light_not_followed", "replayed_recording"], unlit.reasons
    no_light = checker.assess(genuine.frames, genuine.challenge, enrolled=genuine.enrolled,
                              earlier_fingerprints=[earlier])
    assert no_light.reasons == ["replayed_recording"], no_light.reasons
