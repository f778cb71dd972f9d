"""Untrusted image decoding: allow-list, limits, EXIF orientation, odd modes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facewarden.errors import ErrorKind
from facewarden.imaging import ImageLimits, decode_image
from facewarden.imaging.decode import ImageRejected


def _encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def test_exif_orientation_is_applied(shared_faces: Path) -> None:
    data = (shared_faces / "spoof" / "image_T1.jpg").read_bytes()
    stored = Image.open(io.BytesIO(data))
    assert stored.getexif().get(0x0112) == 6
    rgb = decode_image(data)
    assert rgb.shape[:2] == (stored.size[0], stored.size[1])  # rotated: height and width swap


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "PPM"])
def test_allowed_formats_decode_to_rgb(fmt: str) -> None:
    img = Image.new("L" if fmt == "PPM" else "RGB", (64, 48), 100)
    rgb = decode_image(_encode(img, fmt))
    assert rgb.shape == (48, 64, 3) and rgb.dtype.name == "uint8"


def test_shared_pgm_gif_and_rgba_png_decode(shared_faces: Path) -> None:
    assert decode_image((shared_faces / "orl" / "s1" / "1.pgm").read_bytes()).shape == (112, 92, 3)
    assert decode_image((shared_faces / "yale" / "subject01.happy").read_bytes()).shape == (243, 320, 3)
    for name in ("32bit.png", "alex-lacamoire.png", "lin-manuel-miranda.png"):
        assert decode_image((shared_faces / "people" / "misc" / name).read_bytes()).shape[2] == 3


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "ICO"])
def test_formats_off_the_allow_list_are_refused(fmt: str) -> None:
    with pytest.raises(ImageRejected) as err:
        decode_image(_encode(Image.new("RGB", (32, 32)), fmt))
    assert err.value.code == "unsupported_image" and err.value.kind is ErrorKind.UNSUPPORTED  # HTTP 415


def test_limits_refuse_before_decoding() -> None:
    with pytest.raises(ImageRejected) as err:
        decode_image(b"x" * 2000, ImageLimits(max_bytes=1000))
    assert err.value.kind is ErrorKind.TOO_LARGE  # HTTP 413
    bomb = _encode(Image.new("1", (20000, 20000)), "PNG")  # 400 Mpx in a small file
    assert len(bomb) < 200_000
    with pytest.raises(ImageRejected) as err:
        decode_image(bomb)
    assert err.value.code == "too_many_pixels"


def test_truncated_and_empty_files_are_refused(shared_faces: Path) -> None:
    data = (shared_faces / "people" / "train" / "obama" / "obama.jpg").read_bytes()
    with pytest.raises(ImageRejected) as err:
        decode_image(data[:5000])
    assert err.value.code == "corrupt_image"
    with pytest.raises(ImageRejected) as err:
        decode_image(b"")
    assert err.value.code == "empty_image"


def test_frames_are_made_contiguous_once_for_dlib_and_opencv() -> None:
    from facewarden.imaging.video import Frame

    padded = np.zeros((720, 406, 3), np.uint8)[:, :404]  # what FFmpeg hands back for a 404 px wide frame
    rotated = np.rot90(np.zeros((404, 720, 3), np.uint8))
    for view in (padded, rotated):
        assert not view.flags.c_contiguous
        assert Frame(view, 0.0).rgb.flags.c_contiguous


def test_still_frames_too_thin_to_hold_a_face_are_refused_with_a_422_kind() -> None:
    from facewarden.imaging.video import VideoRejected, decode_frames

    thin = _encode(Image.new("RGB", (4000, 30)), "PNG")
    with pytest.raises(VideoRejected) as err:
        decode_frames([(thin, 0.0), (thin, 0.1)])
    assert err.value.code == "video_too_small" and err.value.kind is ErrorKind.UNPROCESSABLE
