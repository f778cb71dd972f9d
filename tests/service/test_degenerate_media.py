"""The real dlib engine and the liveness decision on degenerate decoded input: strips of pixels, grey, RGBA and
strided arrays, a portrait clip (FFmpeg pads the rows of a 404 px wide frame, which dlib refused: a 500), a clip
marked as rotated, and a clip whose codec FFmpeg cannot identify. Each is a result or a 4xx-kind refusal."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facewarden.errors import ErrorKind, FaceWardenError
from facewarden.imaging import decode_image
from facewarden.imaging.video import VideoLimits, decode_frames, decode_video
from facewarden.liveness.challenge import Action, Challenge
from facewarden.liveness.decision import REASONS, LivenessChecker
from facewarden.liveness.landmarks import LandmarkDetector
from facewarden.liveness.pad import PadScorer
from facewarden.vision import FaceEngine
from tests.clips import ROT90, strip, transcode, unknown_codec, with_display_matrix
from tests.fuzz_cases import generated_image, run_case

CLIENT_KINDS = {k for k in ErrorKind if k not in (ErrorKind.INTERNAL, ErrorKind.UPSTREAM, ErrorKind.UNAVAILABLE)}


@pytest.fixture(scope="module")
def face(shared_faces: Path) -> np.ndarray:
    return decode_image((shared_faces / "people" / "train" / "obama" / "obama.jpg").read_bytes())


@pytest.fixture(scope="module")
def checker(shared_faces: Path, face_engine: FaceEngine) -> LivenessChecker:
    return LivenessChecker(face_engine, PadScorer(shared_faces.parent / "models" / "pad"), LandmarkDetector())


def _outcome(call: object) -> str:
    try:
        call()  # type: ignore[operator]
    except FaceWardenError as exc:
        assert exc.kind in CLIENT_KINDS, (exc.code, exc.kind)
        return exc.code
    return "ok"


def test_the_engine_refuses_strips_and_accepts_every_array_layout(face_engine: FaceEngine, face: np.ndarray) -> None:
    strips = [np.zeros((h, w, 3), np.uint8) for h, w in ((1, 4000), (4000, 1), (31, 3000), (0, 5), (5, 0))]
    for arr in strips:
        for call in (lambda a=arr: face_engine.single_face(a), lambda a=arr: face_engine.faces(a),
                     lambda a=arr: face_engine.single_face(a, whole_image_fallback=True)):
            assert _outcome(call) == "image_too_small", arr.shape
    # A very elongated picture above the minimum reaches detection scaled to at least one pixel each way.
    assert _outcome(lambda: face_engine.single_face(np.zeros((40, 30_000, 3), np.uint8))) == "no_face"
    # The same face in every layout a decoder or a caller may hand over: one embedding.
    reference = face_engine.single_face(face).embedding
    padded = np.zeros((face.shape[0], face.shape[1] + 1, 3), np.uint8)
    padded[:, :-1] = face
    layouts = {"fortran": np.asfortranarray(face), "strided": padded[:, :-1],
               "rgba": np.dstack([face, np.full(face.shape[:2], 255, np.uint8)]),
               "every second column": np.repeat(face, 2, axis=1)[:, ::2]}
    for name, arr in layouts.items():
        assert not arr.flags.c_contiguous or arr.shape[2] == 4, name
        got = face_engine.single_face(arr).embedding
        assert face_engine.distance(got, reference) < 1e-4, name
    grey = face_engine.single_face(face.mean(axis=2).astype(np.uint8)).embedding
    assert face_engine.distance(grey, reference) < 0.3  # grey input is accepted (three equal channels)


@pytest.fixture(scope="module")
def portrait(shared_faces: Path) -> bytes:
    return transcode(shared_faces / "video" / "d0.mp4", size=(404, 720), seconds=3.0)


def test_a_portrait_clip_is_decided_not_crashed(portrait: bytes, checker: LivenessChecker) -> None:
    frames = decode_video(portrait)
    assert frames[0].rgb.shape == (720, 404, 3) and all(f.rgb.flags.c_contiguous for f in frames)
    decision = checker.assess(frames, Challenge((Action.BLINK,)))  # d0 0-3 s: a blink at 2.6 s
    assert decision.passed, decision.reasons


def test_rotation_metadata_turns_frames_and_a_malformed_matrix_is_ignored(shared_faces: Path,
                                                                          checker: LivenessChecker) -> None:
    landscape = transcode(shared_faces / "video" / "d0.mp4", size=(480, 320), seconds=3.0)
    turned = decode_video(with_display_matrix(landscape, ROT90))
    assert turned[0].rgb.shape == (480, 320, 3) and all(f.rgb.flags.c_contiguous for f in turned)
    assert set(checker.assess(turned, Challenge((Action.BLINK,))).reasons) <= set(REASONS)  # decided, no crash
    for matrix in ((0,) * 9, (0x7FFFFFFF,) * 9, (0xB504, 0xB504, 0, -0xB504, 0xB504, 0, 0, 0, 0x40000000)):
        frames = decode_video(with_display_matrix(landscape, matrix))
        assert frames[0].rgb.shape in ((320, 480, 3), (480, 320, 3)), matrix


def test_unknown_codecs_and_strip_frames_are_4xx(portrait: bytes) -> None:
    with pytest.raises(FaceWardenError) as err:
        decode_video(unknown_codec(portrait))
    assert err.value.code == "unsupported_video" and err.value.kind == ErrorKind.UNSUPPORTED
    assert "codec" in err.value.message
    with pytest.raises(FaceWardenError) as err:  # 3000 x 40 scales to 720 x 10: no face fits
        decode_frames([(strip("PNG", (3000, 40)), 0.0), (strip("PNG", (3000, 40)), 0.1)])
    assert err.value.code == "video_too_small" and err.value.kind == ErrorKind.UNPROCESSABLE
    small = VideoLimits(resize_max_side=None)
    with pytest.raises(FaceWardenError) as err:
        decode_frames([(strip("JPEG", (1, 4000)), 0.0)], small)
    assert err.value.code == "video_too_small"


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_odd_pictures_through_decoder_and_engine_are_a_result_or_a_4xx(face_engine: FaceEngine, seed: int) -> None:
    data = generated_image(random.Random(seed))  # strips, odd modes and sizes, EXIF orientations
    run_case(lambda: face_engine.faces(decode_image(data)), 20.0)
