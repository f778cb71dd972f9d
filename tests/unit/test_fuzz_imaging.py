"""Fuzzing the image and video decoders with Hypothesis: mutated real photos and clips, random bytes, odd sizes
and modes, truncation, huge declared dimensions, damaged codec tags and display matrices. Every case either
decodes to C-contiguous HxWx3 uint8 frames or is refused with a FaceWardenError of a client kind (a 4xx), within
a time bound. Example counts are bounded for CI (about 30 s on 2 shared cores); bench/fuzz.py (`make fuzz`) runs the long campaign."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facewarden.imaging import ImageLimits, decode_image
from facewarden.imaging.video import VideoLimits, decode_frames, decode_video
from tests.fuzz_cases import (
    frames_case,
    generated_image,
    image_case,
    image_seeds,
    run_case,
    video_case,
    video_seeds,
)

IMAGE_BOUND_S = 10.0  # one photo of at most 40 Mpx: a few seconds on a loaded 2-core machine at worst
VIDEO_BOUND_S = 20.0
CI = settings(deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def photos(shared_faces: Path) -> list[bytes]:
    return image_seeds(shared_faces)


@pytest.fixture(scope="module")
def clips(shared_faces: Path) -> list[bytes]:
    return video_seeds(shared_faces)


def _check_rgb(rgb: np.ndarray) -> None:
    assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8 and rgb.flags.c_contiguous


def test_the_seeds_decode(photos: list[bytes], clips: list[bytes]) -> None:
    for data in photos:
        _check_rgb(decode_image(data))
    for data in clips:
        frames = decode_video(data)
        assert frames and all(f.rgb.flags.c_contiguous for f in frames)


@settings(CI, max_examples=300)
@given(seed=st.integers(0, 2**32 - 1))
def test_image_decoder_answers_every_input_with_pixels_or_a_4xx(photos: list[bytes], seed: int) -> None:
    data = image_case(photos, random.Random(seed))
    decoded: list[np.ndarray] = []
    outcome = run_case(lambda: decoded.append(decode_image(data, ImageLimits(max_pixels=12_000_000))),
                       IMAGE_BOUND_S)
    if outcome.ok:
        _check_rgb(decoded[0])


@settings(CI, max_examples=60)
@given(seed=st.integers(0, 2**32 - 1))
def test_odd_sizes_and_modes_decode_or_are_refused(seed: int) -> None:
    data = generated_image(random.Random(seed))
    run_case(lambda: decode_image(data), IMAGE_BOUND_S)


@settings(CI, max_examples=150)
@given(data=st.binary(max_size=2048))
def test_random_bytes_are_refused_or_decoded(data: bytes) -> None:
    run_case(lambda: decode_image(data), IMAGE_BOUND_S)
    run_case(lambda: decode_video(data), VIDEO_BOUND_S)


@settings(CI, max_examples=120)
@given(seed=st.integers(0, 2**32 - 1))
def test_video_decoder_answers_every_input_with_frames_or_a_4xx(clips: list[bytes], seed: int) -> None:
    data = video_case(clips, random.Random(seed))
    decoded: list[list] = []
    outcome = run_case(lambda: decoded.append(decode_video(data)), VIDEO_BOUND_S)
    if outcome.ok:
        assert decoded[0]
        for frame in decoded[0]:
            _check_rgb(frame.rgb)
            assert np.isfinite(frame.t) and 0 <= frame.t <= VideoLimits().max_duration_s + 1


@settings(CI, max_examples=40)
@given(seed=st.integers(0, 2**32 - 1))
def test_still_frame_lists_are_decoded_or_refused(photos: list[bytes], seed: int) -> None:
    items = frames_case(photos, random.Random(seed))
    run_case(lambda: decode_frames(items), VIDEO_BOUND_S)

