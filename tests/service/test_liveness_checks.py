"""Liveness building blocks on real frames: decoding limits, passive PAD, pose, blinks, planar attacks,
challenge evaluation and media checks.

Every expectation below was read off the real clips in ../shared/faces/video (15 fps sampling); the times are
written next to each assertion so a failure can be looked up. The 68-point model appears only as an
independent reference (and as the opt-in eye-aspect-ratio path); the default path is the 5-point model.
"""

from __future__ import annotations

import dataclasses
import io
import math
import struct
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from facewarden.errors import ErrorKind
from facewarden.imaging import decode_image
from facewarden.imaging.video import Frame, VideoLimits, VideoRejected, decode_frames, decode_video
from facewarden.liveness.blink import EAR_THRESHOLDS, IMAGE_THRESHOLDS, detect_blinks
from facewarden.liveness.challenge import (
    Action,
    Challenge,
    ChallengeRules,
    evaluate_challenge,
    find_events,
    new_challenge,
)
from facewarden.liveness.depth import planarity
from facewarden.liveness.landmarks import FaceLandmarks, LandmarkDetector
from facewarden.liveness.measures import FrameMeasures, measure_frames
from facewarden.liveness.media import check_stillness, check_timing, fingerprint, is_reused, reuse_distance
from facewarden.liveness.pad import PadModelError, PadScorer
from tests.clips import encode_frames
from tests.conftest import REPORT

LONG = VideoLimits(max_duration_s=40.0, max_frames=600, max_decoded_frames=2000)


@pytest.fixture(scope="module")
def video_dir(shared_faces: Path) -> Path:
    d = shared_faces / "video"
    missing = [n for n in ("d0", "d3", "d6", "d10", "d11", "d14", "d18", "d19", "d20") if not (d / f"{n}.mp4").is_file()]
    if missing:
        pytest.fail(f"The shared liveness videos {missing} are missing from {d}; these tests never skip.")
    return d


@pytest.fixture(scope="module")
def pad_dir(shared_faces: Path) -> Path:
    d = shared_faces.parent / "models" / "pad"
    if not (d / "minifasnet_v2.onnx").is_file() or not (d / "minifasnet_v1se.onnx").is_file():
        pytest.fail(f"The PAD models are missing from {d}; these tests never skip.")
    return d


@pytest.fixture(scope="module")
def detector() -> LandmarkDetector:
    return LandmarkDetector("dlib5")


@pytest.fixture(scope="module")
def clip(video_dir: Path) -> Callable[[str, float, float], list[Frame]]:
    """Frames of one clip between t0 and t1 (seconds), times re-based to start at 0."""

    @cache
    def whole(name: str) -> tuple[Frame, ...]:
        return tuple(decode_video((video_dir / f"{name}.mp4").read_bytes(), LONG))

    def get(name: str, t0: float = 0.0, t1: float = 1e9) -> list[Frame]:
        return [dataclasses.replace(f, t=f.t - t0) for f in whole(name) if t0 - 1e-6 <= f.t <= t1 + 1e-6]

    return get


@pytest.fixture(scope="module")
def measured(clip: Callable[..., list[Frame]], detector: LandmarkDetector
             ) -> Callable[[str, float, float], list[FrameMeasures]]:
    @cache
    def get(name: str, t0: float = 0.0, t1: float = 1e9) -> list[FrameMeasures]:
        return measure_frames(clip(name, t0, t1), detector)

    return get


# ---------------------------------------------------------------- decoding ----------------------------------


def test_decode_video_reads_webm_vp9(clip: Callable[..., list[Frame]]) -> None:
    data = encode_frames(clip("d3", 0.0, 1.0), 15, "webm", "libvpx-vp9")
    assert data[:4] == b"\x1a\x45\xdf\xa3"
    frames = decode_video(data)
    assert 14 <= len(frames) <= 16 and frames[-1].t == pytest.approx(1.0, abs=0.1)
    assert frames[0].rgb.shape == (512, 512, 3)
    with pytest.raises(VideoRejected) as info:
        decode_video(data, VideoLimits(codecs=frozenset({"h264"})))
    assert info.value.code == "unsupported_video"



def test_decode_video_samples_real_clip_at_target_fps(video_dir: Path) -> None:
    data = (video_dir / "d0.mp4").read_bytes()  # 3.12 s, 25 fps, 512x512 H.264
    start = time.process_time()
    frames = decode_video(data)
    per_frame = (time.process_time() - start) / len(frames)
    REPORT.append(f"liveness decode: {per_frame * 1000:.1f} ms CPU per kept frame (d0, 15 fps from 25 fps)")
    assert 45 <= len(frames) <= 48
    assert frames[0].t == 0.0 and frames[-1].t == pytest.approx(3.08, abs=0.05)
    steps = np.diff([f.t for f in frames])
    assert (steps > 0).all() and np.median(steps) == pytest.approx(1 / 15, abs=0.02)
    assert frames[0].rgb.shape == (512, 512, 3) and frames[0].rgb.dtype == np.uint8
    assert frames[10].rgb.mean() > 20  # real picture content, not a blank buffer


def test_decode_video_applies_the_display_rotation_of_phone_clips() -> None:
    """Phones store portrait clips sideways plus a display matrix in the track header; frames must come upright."""
    img = np.zeros((32, 64, 3), np.uint8)
    img[:, :32] = 255  # left half white
    data = bytearray(encode_frames([Frame(img, k / 15) for k in range(15)], 15, "mp4", "libx264"))
    k = data.find(b"tkhd")
    assert data[k + 4] == 0  # version 0 header: the matrix sits 40 bytes after the version byte
    matrix = k + 4 + 40
    assert struct.unpack(">9i", data[matrix:matrix + 36]) == (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    data[matrix:matrix + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)  # 90 deg cw
    frames = decode_video(bytes(data))
    rgb = frames[0].rgb
    assert rgb.shape == (64, 32, 3)  # portrait
    assert rgb[:28].mean() > 200 and rgb[36:].mean() < 60  # the white left half is now on top


def test_decode_video_refuses_what_is_outside_the_limits(video_dir: Path) -> None:
    d0 = (video_dir / "d0.mp4").read_bytes()
    d6 = (video_dir / "d6.mp4").read_bytes()  # 33.6 s

    def code(data: bytes, limits: VideoLimits | None = None) -> str:
        with pytest.raises(VideoRejected) as info:
            decode_video(data, limits)
        return info.value.code

    assert code(b"") == "empty_video"
    assert code(d0, VideoLimits(max_bytes=len(d0) - 1)) == "video_too_large"
    assert code(d6) == "video_too_long"  # default limit 15 s
    assert code(d0, VideoLimits(max_frames=20)) == "too_many_frames"
    assert code(d0, VideoLimits(max_decoded_frames=30)) == "too_many_frames"
    assert code(d0, VideoLimits(max_pixels=320 * 240)) == "too_many_pixels"
    assert code(d0, VideoLimits(codecs=frozenset({"vp9"}))) == "unsupported_video"
    assert code(d0, VideoLimits(containers=frozenset({"webm"}))) == "unsupported_video"
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 64)).save(jpeg, "JPEG")
    assert code(jpeg.getvalue()) == "unsupported_video"
    assert code(d0[: len(d0) // 2]) == "corrupt_video"  # moov box at the end: truncated file
    assert code(d0[:64] + bytes(4096)) == "corrupt_video"
    with pytest.raises(VideoRejected) as info:
        decode_video(d6)
    assert info.value.kind is ErrorKind.TOO_LARGE  # HTTP 413


def test_decode_frames_accepts_jpeg_png_with_timestamps(clip: Callable[..., list[Frame]]) -> None:
    frames = clip("d0", 0.0, 0.6)

    def encode(rgb: np.ndarray, fmt: str) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, fmt)
        return buf.getvalue()

    items = [(encode(f.rgb, "JPEG" if i % 2 else "PNG"), 100.0 + f.t) for i, f in enumerate(frames)]
    out = decode_frames(items)
    assert [round(f.t, 3) for f in out] == [round(f.t, 3) for f in frames]
    assert out[0].rgb.shape == frames[0].rgb.shape
    assert np.abs(out[0].rgb.astype(int) - frames[0].rgb).mean() < 1  # PNG is lossless

    def code(bad: list[tuple[bytes, float]], limits: VideoLimits | None = None) -> str:
        with pytest.raises(VideoRejected) as info:
            decode_frames(bad, limits)
        return info.value.code

    assert code([]) == "empty_video"
    assert code([(encode(frames[0].rgb, "GIF"), 0.0)]) == "unsupported_image"
    assert code([items[0], (items[1][0], math.nan)]) == "invalid_timestamps"
    assert code([items[0], (items[1][0], 100.0 + 20.0)]) == "video_too_long"
    assert code(items, VideoLimits(max_frames=3)) == "too_many_frames"
    small = encode(np.ascontiguousarray(frames[1].rgb[:200, :200]), "PNG")
    assert code([items[0], (small, 100.1)]) == "frame_size_changed"


# ---------------------------------------------------------------- passive PAD -------------------------------


def test_pad_scores_print_and_replay_as_attacks(shared_faces: Path, pad_dir: Path, detector: LandmarkDetector) -> None:
    pad = PadScorer(pad_dir)
    scores = {}
    for name in ("T1", "F1", "F2"):
        rgb = decode_image((shared_faces / "spoof" / f"image_{name}.jpg").read_bytes())  # EXIF orientation applied
        assert rgb.shape[0] > rgb.shape[1]  # 640x480 stored sideways with orientation 6: portrait after transpose
        lm = detector.locate(rgb)
        assert lm is not None, name
        scores[name] = pad.score(rgb, lm.box)
    REPORT.append("liveness PAD spoof images (genuine prob.): " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    assert scores["T1"] > 0.9  # genuine
    assert scores["F1"] < 0.3  # printed photo
    assert scores["F2"] < 0.5  # photo replayed on a tablet


def test_pad_scores_genuine_videos_as_genuine(pad_dir: Path, clip: Callable[..., list[Frame]],
                                              detector: LandmarkDetector) -> None:
    pad = PadScorer(pad_dir)
    means = {}
    spent = 0.0
    scored = 0
    for name in ("d0", "d3", "d6", "d10", "d11", "d14", "d18", "d19", "d20"):
        frames = clip(name, 0.0, 3.0)
        boxes = [lm.box if (lm := detector.locate(f.rgb)) else None for f in frames]
        start = time.process_time()
        s = pad.score_frames([f.rgb for f in frames], boxes, max_frames=8)
        spent += time.process_time() - start
        scored += len(s)
        means[name] = float(np.mean(s))
    REPORT.append(f"liveness PAD: {spent / scored * 1000:.1f} ms CPU per frame (both models); genuine video means: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in means.items()))
    # Measured: d18 (a dim, low-contrast clip) is the one genuine video the models call an attack (0.29).
    assert sum(v > 0.5 for v in means.values()) >= len(means) - 1
    assert float(np.median(list(means.values()))) > 0.9


def test_pad_refuses_models_that_are_not_the_pinned_files(pad_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(PadModelError):
        PadScorer(tmp_path)  # nothing there
    for name in ("minifasnet_v2.onnx", "minifasnet_v1se.onnx"):
        data = bytearray((pad_dir / name).read_bytes())
        if name == "minifasnet_v1se.onnx":
            data[len(data) // 2] ^= 0x01  # one flipped bit
        (tmp_path / name).write_bytes(bytes(data))
    with pytest.raises(PadModelError) as info:
        PadScorer(tmp_path)
    assert "minifasnet_v1se.onnx" in info.value.message and info.value.kind is ErrorKind.UNAVAILABLE  # HTTP 503


# ---------------------------------------------------------------- pose --------------------------------------

_MODEL_3D = np.array([(0.0, 0.0, 0.0), (0.0, -330.0, -65.0), (-225.0, 170.0, -135.0), (225.0, 170.0, -135.0),
                      (-150.0, -150.0, -125.0), (150.0, -150.0, -125.0)])


def _pnp_yaw_68(lm: FaceLandmarks, width: int, height: int) -> float:
    """Independent reference: the classic 6-point solvePnP head pose from the 68-point landmarks."""
    image_pts = lm.points[[30, 8, 36, 45, 48, 54]].astype(np.float64)
    k = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], np.float64)
    _, rvec, _ = cv2.solvePnP(_MODEL_3D, image_pts, k, None, flags=cv2.SOLVEPNP_ITERATIVE)
    r, _ = cv2.Rodrigues(rvec)
    return -math.degrees(math.atan2(-r[2, 0], math.hypot(r[0, 0], r[1, 0])))  # same sign convention as ours


def test_yaw_follows_head_turns_in_real_video(clip: Callable[..., list[Frame]],
                                              measured: Callable[..., list[FrameMeasures]]) -> None:
    ms = measured("d3")  # 11.8 s: the head swings right and left several times

    def yaw_at(t0: float, t1: float) -> float:
        return float(np.median([m.yaw for m in ms if t0 <= m.t <= t1 and m.face]))

    assert all(m.face for m in ms)
    right1, front, left1 = yaw_at(0.6, 0.9), yaw_at(3.7, 4.4), yaw_at(5.6, 6.1)
    right2, left2 = yaw_at(10.1, 10.7), yaw_at(11.3, 11.7)
    yaws = [m.yaw for m in ms]
    REPORT.append(f"liveness yaw d3: range {min(yaws):.0f}..{max(yaws):.0f} deg; turned right {right1:.0f} and "
                  f"{right2:.0f}, frontal {front:.0f}, turned left {left1:.0f} and {left2:.0f}")
    assert right1 < front - 15 and right2 < front - 15  # subject's right: negative yaw
    assert left1 > front + 12 and left2 > front + 15
    assert left2 - right2 > 35  # a 10.4 s -> 11.6 s swing of more than 35 degrees
    # the same turns measured independently (68-point landmarks, solvePnP): same direction, strongly correlated
    frames = clip("d3")
    ref = LandmarkDetector("dlib68")
    pnp = []
    for f in frames[::2]:
        lm = ref.locate(f.rgb)
        assert lm is not None
        pnp.append(_pnp_yaw_68(lm, f.rgb.shape[1], f.rgb.shape[0]))
    corr = float(np.corrcoef(pnp, yaws[::2])[0, 1])
    REPORT.append(f"liveness yaw d3: correlation with 68-point solvePnP yaw {corr:.2f}")
    assert corr > 0.8


def test_turns_are_found_as_events_in_several_videos(measured: Callable[..., list[FrameMeasures]]) -> None:
    # d11 3.6-5.6 s: frontal, then a left turn from 4.45 s; d19 0.3-2.2 s: frontal, then a right turn from 1.3 s
    events, _ = find_events(measured("d11", 3.6, 5.6))
    kinds = [(e.action, round(e.t + 3.6, 1)) for e in events if e.action != Action.BLINK]
    assert kinds and kinds[0][0] == Action.TURN_LEFT and 4.3 <= kinds[0][1] <= 4.7, kinds
    assert all(k == Action.TURN_LEFT for k, _ in kinds)
    events, _ = find_events(measured("d19", 0.3, 2.2))
    turns = [e for e in events if e.action in (Action.TURN_LEFT, Action.TURN_RIGHT)]
    assert turns and turns[0].action == Action.TURN_RIGHT and turns[0].peak < -20 and 0.9 <= turns[0].t <= 1.3


# ---------------------------------------------------------------- blinks ------------------------------------

# Blinks confirmed by the 68-point eye aspect ratio (a dip below 0.6 of its surroundings), 15 fps sampling.
REAL_BLINKS = {"d14": (0.53, 1.73, 2.2, 3.13, 3.67), "d10": (7.4, 11.13), "d19": (3.33, 4.0), "d0": (2.6,)}


def test_real_blinks_make_clear_dips_in_eye_openness(measured: Callable[..., list[FrameMeasures]]) -> None:
    found_all = 0
    depths = []
    false = 0
    for name, truth in REAL_BLINKS.items():
        ms = measured(name, 0.0, max(truth) + 1.0)
        t = [m.t for m in ms]
        blinks = detect_blinks(t, [m.openness for m in ms], IMAGE_THRESHOLDS)
        hits = [b for b in blinks if any(abs(b.t - x) <= 0.15 for x in truth)]
        found_all += sum(any(abs(b.t - x) <= 0.15 for b in blinks) for x in truth)
        depths += [b.depth for b in hits]
        false += len(blinks) - len(hits)
    total = sum(len(v) for v in REAL_BLINKS.values())
    REPORT.append(f"liveness blinks (5-point image measure): {found_all}/{total} EAR-confirmed blinks found, "
                  f"dip depth {min(depths):.2f}-{max(depths):.2f} of the open level, {false} other dips")
    assert found_all >= total - 1
    assert max(depths) < 0.8 and float(np.median(depths)) < 0.7
    assert false <= 3
    # d20 (7 s) has no blink by the eye aspect ratio: no dip either
    ms = measured("d20")
    assert detect_blinks([m.t for m in ms], [m.openness for m in ms], IMAGE_THRESHOLDS) == []


def test_opt_in_68_point_eye_aspect_ratio_finds_the_same_blinks(clip: Callable[..., list[Frame]]) -> None:
    ms = measure_frames(clip("d14", 0.0, 4.0), LandmarkDetector("dlib68"))
    blinks = detect_blinks([m.t for m in ms], [m.openness for m in ms], EAR_THRESHOLDS)
    assert all(any(abs(b.t - x) <= 0.1 for b in blinks) for x in REAL_BLINKS["d14"]), [b.t for b in blinks]
    assert 0.15 < float(np.nanmedian([m.openness for m in ms])) < 0.45  # a plausible open-eye EAR


# ---------------------------------------------------------------- planar attacks ----------------------------


def _tilted_photo(rgb: np.ndarray, yaw_deg: float, pitch_deg: float, shift_px: float, quality: int = 85) -> np.ndarray:
    """The frame as a flat print turned in 3D in front of the camera (focal = 1.2 x width), re-encoded."""
    h, w = rgb.shape[:2]
    f = 1.2 * w
    k = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])
    a, b = math.radians(yaw_deg), math.radians(pitch_deg)
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    pts = np.column_stack([corners[:, 0] - w / 2, corners[:, 1] - h / 2, np.full(4, f)])  # the print at depth f
    centre = np.array([0.0, 0.0, f])
    moved = (pts - centre) @ (rx @ ry).T + centre + np.array([shift_px, 0.0, 0.0])
    proj = moved @ k.T
    proj = proj[:, :2] / proj[:, 2:]
    hom = cv2.getPerspectiveTransform(corners.astype(np.float32), proj.astype(np.float32))
    out = cv2.warpPerspective(rgb, hom, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def _photo_attack(frame: Frame, amplitude: float, n: int = 20) -> list[Frame]:
    return [Frame(_tilted_photo(frame.rgb, amplitude * math.sin(2 * math.pi * k / (n - 1)),
                                0.4 * amplitude * math.sin(4 * math.pi * k / (n - 1)),
                                20 * math.sin(2 * math.pi * k / (n - 1))), k / 10) for k in range(n)]


def test_head_turn_shows_parallax_and_a_moved_photo_does_not(clip: Callable[..., list[Frame]],
                                                            detector: LandmarkDetector) -> None:
    results = {}
    spent = 0.0
    for label, frames in (("d3 9.5-11.8 s", clip("d3", 9.5, 11.8)), ("d11 7.5-9.0 s", clip("d11", 7.5, 9.0)),
                          ("d6 9.5-12.0 s", clip("d6", 9.5, 12.0)),
                          ("photo of d3 @3.8 s, +-35 deg", _photo_attack(clip("d3", 3.8, 3.8)[0], 35)),
                          ("photo of d11 @4.0 s, +-25 deg", _photo_attack(clip("d11", 4.0, 4.0)[0], 25)),
                          ("photo of d6 @5.0 s, +-35 deg", _photo_attack(clip("d6", 5.0, 5.0)[0], 35))):
        ms = measure_frames(frames, detector)
        start = time.process_time()
        results[label] = planarity(frames, [m.landmarks for m in ms], [m.yaw for m in ms])
        spent += time.process_time() - start
        if label.startswith("photo"):
            yaws = [m.yaw for m in ms if m.face]
            assert max(yaws) - min(yaws) > 10  # perspective makes a tilted photo look turned too
    REPORT.append(f"liveness depth: {spent / len(results) * 1000:.0f} ms CPU per clip; p90 homography residual "
                  "(eye widths): " + ", ".join(f"{k} {r.parallax:.3f}" for k, r in results.items()))
    for label, r in results.items():
        assert r.reason == "measured", (label, r.reason)
        assert r.planar is (label.startswith("photo")), (label, r.parallax)
    genuine = [r.parallax for k, r in results.items() if not k.startswith("photo")]
    photos = [r.parallax for k, r in results.items() if k.startswith("photo")]
    assert min(genuine) > 1.3 * max(photos)


def test_depth_is_inconclusive_without_motion(clip: Callable[..., list[Frame]], detector: LandmarkDetector) -> None:
    frames = clip("d20", 0.0, 2.0)  # a steady, frontal face
    ms = measure_frames(frames, detector)
    r = planarity(frames, [m.landmarks for m in ms], [m.yaw for m in ms])
    assert r.planar is None and r.reason == "too_little_motion"


# ---------------------------------------------------------------- challenge ---------------------------------


def test_new_challenge_draws_distinct_random_actions() -> None:
    drawn = [new_challenge() for _ in range(200)]
    assert all(2 <= len(c.actions) <= 3 and len(set(c.actions)) == len(c.actions) for c in drawn)
    assert len({c.actions for c in drawn}) > 20 and len({c.nonce for c in drawn}) == 200
    assert {a for c in drawn for a in c.actions} == set(Action)


def test_challenge_passes_in_order_and_fails_otherwise(measured: Callable[..., list[FrameMeasures]]) -> None:
    # d6 5.0-8.0 s: frontal until 6.1 s, a left turn at 6.13 s (+17 deg from baseline), back to frontal, blinks at
    # 6.87 s and 7.33 s (both confirmed by the 68-point eye aspect ratio).
    ms = measured("d6", 5.0, 8.0)
    start = time.process_time()
    ok, details = evaluate_challenge(ms, Challenge((Action.TURN_LEFT, Action.BLINK)))
    spent = time.process_time() - start
    REPORT.append(f"liveness challenge d6 5-8 s: events {details['events']}, evaluation {spent * 1000:.1f} ms CPU")
    assert ok, details
    assert [m["action"] for m in details["matched"]] == ["turn_left", "blink"]
    assert 1.0 <= details["matched"][0]["t"] <= 1.3 and details["matched"][1]["t"] > details["matched"][0]["t"]
    # The turn came before any blink; a 17-degree unasked turn is tolerated as natural movement, but no left turn
    # follows the blink, so the asked order fails; nor is there a look-up.
    ok, details = evaluate_challenge(ms, Challenge((Action.BLINK, Action.TURN_LEFT)))
    assert not ok and details["reason"] == "action_not_seen"
    ok, details = evaluate_challenge(ms, Challenge((Action.TURN_LEFT, Action.LOOK_UP)))
    assert not ok and details["reason"] == "action_not_seen" and details["missing_action"] == "look_up"
    # A lit session reads the awaited action from 0.7 of its threshold: the person's second glance left after
    # the blinks (14.9 degrees by five landmarks) and a 9-degree nod while talking then answer. That is the
    # price of not refusing people whose turn the browser's compression shaved (bench_challenge_margin.py).
    lit = ChallengeRules(awaited_factor=0.7)
    ok, details = evaluate_challenge(ms, Challenge((Action.BLINK, Action.TURN_LEFT)), lit)
    assert ok and 14 <= details["matched"][1]["peak"] < 15, details
    assert evaluate_challenge(ms, Challenge((Action.TURN_LEFT, Action.LOOK_UP)), lit)[0]
    # an opposite turn still contradicts at the full threshold, whatever the awaited reading
    for rules in (ChallengeRules(), lit):
        ok, details = evaluate_challenge(ms, Challenge((Action.TURN_RIGHT, Action.BLINK)), rules)
        assert not ok and details["reason"] == "unexpected_action"
    # the same frames sent selfie-mirrored turn the other way
    mirrored = evaluate_challenge(ms, Challenge((Action.TURN_RIGHT, Action.BLINK)),
                                  ChallengeRules(mirrored=True))
    assert mirrored[0], mirrored[1]
    # too slow: the left turn must come within the action window after the baseline
    slow = evaluate_challenge(ms, Challenge((Action.TURN_LEFT, Action.BLINK)),
                              ChallengeRules(action_window_s=0.2))
    assert not slow[0] and slow[1]["reason"] == "action_not_seen"


def test_challenge_fails_without_a_face(measured: Callable[..., list[FrameMeasures]]) -> None:
    ms = measured("d6", 5.0, 8.0)
    gone = [dataclasses.replace(m, landmarks=None, yaw=math.nan, pitch=math.nan, openness=math.nan)
            if i > 10 and i % 2 else m for i, m in enumerate(ms)]
    ok, details = evaluate_challenge(gone, Challenge((Action.TURN_LEFT, Action.BLINK)))
    assert not ok and details["reason"] == "face_missing"


# ---------------------------------------------------------------- media checks ------------------------------


def test_timing_checks(clip: Callable[..., list[Frame]]) -> None:
    ts = [f.t for f in clip("d0")]
    report = check_timing(ts)
    assert report.ok and 14 < report.fps < 16
    assert "timestamps_not_increasing" in check_timing([0, 0.1, 0.1, 0.2, 0.3, 1.2]).issues
    assert "gap_in_frames" in check_timing([0, 0.1, 0.2, 1.5, 1.6]).issues
    assert "implausible_frame_rate" in check_timing(list(np.arange(0, 2, 0.005))).issues
    assert "too_short" in check_timing([0, 0.1, 0.2]).issues


def test_a_still_photo_is_flagged_and_a_moving_face_is_not(clip: Callable[..., list[Frame]]) -> None:
    rng = np.random.default_rng(5)
    base = clip("d19", 0.0, 0.0)[0]
    photo = []
    for k in range(30):  # the photo held dead still: sensor noise, JPEG re-encoding, nothing else
        noisy = np.clip(base.rgb + rng.normal(0, 2.0, base.rgb.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(noisy).save(buf, "JPEG", quality=85)
        photo.append(Frame(np.asarray(Image.open(buf).convert("RGB")), k / 15))
    injected = [Frame(base.rgb, k / 15) for k in range(30)]  # one image sent over and over
    live = clip("d3", 0.0, 2.0)
    start = time.process_time()
    r_live = check_stillness(live)
    spent = time.process_time() - start
    r_photo, r_injected = check_stillness(photo), check_stillness(injected)
    REPORT.append(f"liveness stillness: motion range live d3 {r_live.motion_range:.2f}, photo+noise "
                  f"{r_photo.motion_range:.2f}, repeated image {r_injected.motion_range:.2f} grey levels "
                  f"({spent / len(live) * 1000:.2f} ms CPU per frame)")
    assert not r_live.still
    assert r_photo.still and r_injected.still and r_injected.duplicate_fraction == 1.0


def test_fingerprint_spots_a_replayed_recording(clip: Callable[..., list[Frame]],
                                                 measured: Callable[..., list[FrameMeasures]]) -> None:
    def lms(ms: list[FrameMeasures]) -> list[FaceLandmarks | None]:
        return [m.landmarks for m in ms]

    earlier = fingerprint(clip("d6", 5.0, 8.0), lms(measured("d6", 5.0, 8.0)))
    # the same recording replayed: 1/30 s later sampling phase, 8 % crop, brighter, JPEG q70
    replay_frames = []
    for f in clip("d6", 5.033, 8.033):
        h, w = f.rgb.shape[:2]
        crop = cv2.resize(f.rgb[int(h * 0.04):int(h * 0.96), int(w * 0.04):int(w * 0.96)], (w, h))
        buf = io.BytesIO()
        Image.fromarray(np.clip(crop.astype(int) + 12, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=70)
        replay_frames.append(Frame(np.asarray(Image.open(buf).convert("RGB")), f.t))
    detector = LandmarkDetector()
    replay = fingerprint(replay_frames, lms(measure_frames(replay_frames, detector)))
    same_person_later = fingerprint(clip("d6", 9.5, 12.5), lms(measured("d6", 9.5, 12.5)))
    other_person = fingerprint(clip("d3", 0.0, 3.0), lms(measured("d3", 0.0, 3.0)))
    d_replay = reuse_distance(replay, earlier)
    d_later = reuse_distance(same_person_later, earlier)
    d_other = reuse_distance(other_person, earlier)
    REPORT.append(f"liveness fingerprint distance to d6 5-8 s: replay {d_replay:.3f}, same person 9.5-12.5 s "
                  f"{d_later:.3f}, another person {d_other:.3f}")
    assert is_reused(replay, [other_person, earlier])
    assert not is_reused(same_person_later, [earlier]) and not is_reused(other_person, [earlier])
    assert d_replay < 0.5 * d_later


# ---------------------------------------------------------------- cost --------------------------------------


def test_whole_pipeline_cpu_budget_for_a_3_second_clip(clip: Callable[..., list[Frame]], pad_dir: Path,
                                                       detector: LandmarkDetector) -> None:
    """Everything a decision needs for a 3 s clip, at 15 fps (default) and at 10 fps: under 2 s CPU.

    The clip: the first 3 s of d3 (the head turns), 45 frames re-encoded as a 15 fps H.264 MP4."""
    pad = PadScorer(pad_dir)
    data = encode_frames(clip("d3", 0.0, 2.99)[:45], 15, "mp4", "libx264")  # 45 frames at 15 fps = 3 s
    lines = []
    for fps in (15.0, 10.0):
        start = time.process_time()
        frames = decode_video(data, VideoLimits(target_fps=fps))
        t_decode = time.process_time()
        ms = measure_frames(frames, detector)
        t_measure = time.process_time()
        pad.score_frames([f.rgb for f in frames], [m.landmarks.box if m.landmarks else None for m in ms])
        t_pad = time.process_time()
        depth = planarity(frames, [m.landmarks for m in ms], [m.yaw for m in ms])
        t_depth = time.process_time()
        evaluate_challenge(ms, Challenge((Action.TURN_RIGHT, Action.BLINK)))
        check_timing([f.t for f in frames])
        check_stillness(frames)
        fingerprint(frames, [m.landmarks for m in ms])
        t_end = time.process_time()
        total = t_end - start
        n = len(frames)
        assert depth.reason == "measured"
        lines.append(f"{fps:g} fps, {n} frames: total {total:.2f} s CPU; decode {(t_decode - start) / n * 1000:.1f} "
                     f"ms/frame, landmarks+pose+eyes {(t_measure - t_decode) / n * 1000:.1f} ms/frame, PAD "
                     f"{(t_pad - t_measure) * 1000:.0f} ms (8 frames), depth {(t_depth - t_pad) * 1000:.0f} ms, "
                     f"challenge+media {(t_end - t_depth) * 1000:.0f} ms")
        # a regression guard, not the goal: the 2-s goal is bench_field.py's and bench_liveness.py's to measure;
        # this same code measured 1.3 s and, on a slow hour of this shared VM, 2.1 s
        assert total < 3 * 2.0, lines[-1]
    REPORT.append("liveness cost (3 s clip of d3): " + " | ".join(lines))
