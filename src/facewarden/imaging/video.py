"""Decode untrusted video (or a list of still frames) into RGB frames with timestamps, within limits.

PyAV (FFmpeg's libraries) rather than OpenCV's VideoCapture: PyAV reads from memory (no temporary file),
lets us pin the demuxer (no format probing across every FFmpeg demuxer), exposes the codec before any
frame is decoded (allow-list), gives each frame its presentation timestamp (needed for timing checks) and
lets us stop decoding the moment a limit is crossed. Only the frames kept by the fps sampler are converted
to RGB, which is most of the decoding cost saved for 30/60 fps input.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import av
import numpy as np
from PIL import Image

from facewarden.errors import InvalidInput, TooLarge, Unprocessable, Unsupported
from facewarden.imaging.decode import ImageLimits, decode_image

# Container families recognised by their magic bytes, each mapped to the one FFmpeg demuxer allowed for it.
_DEMUXERS = {"mp4": "mov", "webm": "matroska"}
# ISO-BMFF top-level boxes a MP4/MOV file may start with ('wide'/'free'/'mdat'/'moov' in old QuickTime files).
_BMFF_FIRST_BOXES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"}
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"


@dataclass(frozen=True)
class Frame:
    rgb: np.ndarray  # HxWx3 uint8, C-contiguous
    t: float  # seconds since the first frame

    def __post_init__(self) -> None:
        # FFmpeg pads each row of odd widths (404 px -> 1216 bytes a row) and rotation returns a view; dlib and
        # OpenCV refuse such strided arrays, so every frame is made contiguous once, here.
        if not self.rgb.flags.c_contiguous:
            object.__setattr__(self, "rgb", np.ascontiguousarray(self.rgb))


@dataclass(frozen=True)
class VideoLimits:
    max_bytes: int = 20 * 1024 * 1024
    max_duration_s: float = 15.0
    max_decoded_frames: int = 1200  # frames decoded before sampling: bounds the work a high-fps stream causes
    max_frames: int = 240  # frames kept after sampling (and the most still frames accepted)
    max_pixels: int = 1920 * 1088
    min_side: int = 32  # after the resize below: thinner frames hold no face and degenerate when scaled
    target_fps: float = 15.0
    resize_max_side: int | None = 720  # kept frames are downscaled to this (liveness needs no more)
    containers: frozenset[str] = field(default_factory=lambda: frozenset({"mp4", "webm"}))
    codecs: frozenset[str] = field(default_factory=lambda: frozenset({"h264", "hevc", "vp8", "vp9", "av1"}))


class VideoRejected(InvalidInput):
    """A clip or frame list that is refused: malformed or corrupt here; over a limit or of a refused format in
    the subclasses."""


# Both bases: callers catch VideoRejected; the kind (first base) is what an adapter reports.
class VideoTooLarge(TooLarge, VideoRejected):
    pass


class VideoUnsupported(Unsupported, VideoRejected):
    pass


class VideoTooSmall(Unprocessable, VideoRejected):
    pass


def _check_frame_size(width: int, height: int, limits: VideoLimits, what: str) -> tuple[int, int]:
    """The size a kept frame is scaled to, refusing frames too thin to hold a usable face once scaled."""
    if width <= 0 or height <= 0:
        raise VideoRejected(f"{what} has no pixels ({width}x{height}); the file is corrupt.", code="corrupt_video")
    w, h = _target_size(width, height, limits.resize_max_side)
    if min(w, h) < limits.min_side:
        raise VideoTooSmall(
            f"{what} is {width}x{height} pixels; at {w}x{h} after scaling it is too small in one direction to "
            f"hold a face (at least {limits.min_side} px each way). Record in a normal portrait or landscape "
            "format, with the face filling a good part of the picture.", code="video_too_small")
    return w, h


def _sniff_container(data: bytes) -> str | None:
    if len(data) >= 8 and data[4:8] in _BMFF_FIRST_BOXES:
        return "mp4"
    if data[:4] == _EBML_MAGIC:
        return "webm"
    return None


def _target_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    # even sizes keep swscale's chroma handling exact
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def _unsupported(what: str, limits: VideoLimits) -> VideoRejected:
    return VideoUnsupported(
        f"{what} Send an MP4/MOV or WebM clip ({', '.join(sorted(limits.codecs))}).",
        code="unsupported_video")


def decode_video(data: bytes, limits: VideoLimits | None = None) -> list[Frame]:
    """Frames sampled at about `target_fps`, RGB, timestamps from 0, or raise VideoRejected."""
    limits = limits or VideoLimits()
    if not data:
        raise VideoRejected("The upload is empty: send the bytes of an MP4 or WebM clip.", code="empty_video")
    if len(data) > limits.max_bytes:
        raise VideoTooLarge(
            f"The video is {len(data)} bytes; the limit is {limits.max_bytes}. Send a shorter or smaller clip.",
            code="video_too_large")
    family = _sniff_container(data)
    if family is None or family not in limits.containers:
        raise _unsupported("This is not a video container that is accepted.", limits)
    try:
        return _decode(data, family, limits)
    except VideoRejected:
        raise
    except (av.FFmpegError, ValueError, OSError, MemoryError, OverflowError, EOFError) as exc:
        raise VideoRejected(
            f"The video could not be decoded ({type(exc).__name__}); it is truncated or corrupt. "
            "Send the complete file.", code="corrupt_video") from None


def _decode(data: bytes, family: str, limits: VideoLimits) -> list[Frame]:
    period = 1.0 / limits.target_fps
    slack = 0.1 * period
    frames: list[Frame] = []
    with av.open(io.BytesIO(data), mode="r", format=_DEMUXERS[family]) as container:
        if not container.streams.video:
            raise _unsupported("The file holds no video stream.", limits)
        stream = container.streams.video[0]
        # FFmpeg leaves the codec context out when it cannot tell the codec (an unknown or damaged tag)
        codec = stream.codec_context.name if stream.codec_context is not None else None
        if codec not in limits.codecs:
            what = f"The video codec '{codec}' is" if codec else "The video's codec could not be identified; it is"
            raise _unsupported(f"{what} not accepted.", limits)
        width, height = stream.codec_context.width, stream.codec_context.height
        if width and height:  # a header may leave the size to the first frame
            _check_frame_size(width, height, limits, "The video")
        if width * height > limits.max_pixels:
            raise VideoTooLarge(
                f"The video is {width}x{height} pixels; the limit is {limits.max_pixels} pixels per frame. "
                "Record at a lower resolution.", code="too_many_pixels")
        if container.duration is not None and container.duration / 1e6 > limits.max_duration_s + 0.5:
            raise _too_long(container.duration / 1e6, limits)
        stream.thread_type = "AUTO"
        decoded = 0
        t0: float | None = None
        next_t = 0.0
        for frame in container.decode(stream):
            decoded += 1
            if decoded > limits.max_decoded_frames:
                raise VideoTooLarge(
                    f"The video has more than {limits.max_decoded_frames} frames. Send a shorter clip or a "
                    "lower frame rate.", code="too_many_frames")
            if frame.width * frame.height > limits.max_pixels:
                raise VideoTooLarge(
                    f"A frame is {frame.width}x{frame.height} pixels; the limit is {limits.max_pixels}.",
                    code="too_many_pixels")
            if frame.time is None or not math.isfinite(frame.time):
                raise VideoRejected("A video frame has no timestamp; the file is corrupt. Send the complete file.",
                                    code="corrupt_video")
            if t0 is None:
                t0 = frame.time
            t = frame.time - t0
            if t > limits.max_duration_s:
                raise _too_long(t, limits)
            # a frame is kept when it reaches the next point of the target-fps grid; the slack absorbs
            # containers that round timestamps (WebM stores milliseconds: 15 fps lands at 0.067, 0.133, ...)
            if t < next_t - slack:
                continue
            while next_t <= t + slack:
                next_t += period
            if len(frames) >= limits.max_frames:
                raise VideoTooLarge(
                    f"The video yields more than {limits.max_frames} frames at {limits.target_fps:g} fps. "
                    "Send a shorter clip.", code="too_many_frames")
            w, h = _check_frame_size(frame.width, frame.height, limits, "A video frame")
            rgb = frame.to_ndarray(format="rgb24", width=w, height=h)
            # Phones store portrait clips sideways with a display matrix; FFmpeg reports its counter-clockwise
            # angle. Only quarter turns are applied; a malformed matrix (NaN, huge, oblique) is ignored.
            angle = frame.rotation or 0
            plausible = isinstance(angle, int | float) and math.isfinite(angle) and abs(angle) <= 360
            rotation = round(angle / 90) % 4 if plausible else 0
            if rotation:
                rgb = np.rot90(rgb, k=rotation)
            frames.append(Frame(rgb=rgb, t=float(t)))
    if not frames:
        raise VideoRejected("The video holds no decodable frame; it is truncated or corrupt.", code="corrupt_video")
    return frames


def _too_long(seconds: float, limits: VideoLimits) -> VideoRejected:
    return VideoTooLarge(
        f"The video lasts {seconds:.1f} s or more; the limit is {limits.max_duration_s:g} s. Send a shorter clip.",
        code="video_too_long")


def _is_jpeg_or_png(data: bytes) -> bool:
    return data[:3] == b"\xff\xd8\xff" or data[:8] == b"\x89PNG\r\n\x1a\n"


def decode_frames(items: Sequence[tuple[bytes, float]], limits: VideoLimits | None = None) -> list[Frame]:
    """Still JPEG/PNG frames with client timestamps (seconds) -> Frames, under the same limits as a video.

    Timestamps are kept as sent (shifted so the first is 0); their plausibility is judged by
    `facewarden.liveness.media`, not here, so a replayed or synthetic sequence stays visible to that check.
    """
    limits = limits or VideoLimits()
    if not items:
        raise VideoRejected("No frames were sent: send at least one JPEG or PNG frame.", code="empty_video")
    if len(items) > limits.max_frames:
        raise VideoTooLarge(f"{len(items)} frames were sent; the limit is {limits.max_frames}.",
                            code="too_many_frames")
    total = sum(len(data) for data, _ in items)
    if total > limits.max_bytes:
        raise VideoTooLarge(f"The frames add up to {total} bytes; the limit is {limits.max_bytes}.",
                            code="video_too_large")
    image_limits = ImageLimits(max_bytes=limits.max_bytes, max_pixels=limits.max_pixels)
    frames: list[Frame] = []
    t0 = None
    size = None
    for i, (data, stamp) in enumerate(items):
        if not isinstance(stamp, int | float) or not math.isfinite(stamp):
            raise VideoRejected(f"Frame {i} has no valid timestamp (seconds).", code="invalid_timestamps")
        if t0 is None:
            t0 = float(stamp)
        t = float(stamp) - t0
        if abs(t) > limits.max_duration_s:
            raise _too_long(abs(t), limits)
        if not _is_jpeg_or_png(data):
            raise VideoUnsupported(f"Frame {i} is not a JPEG or PNG image.", code="unsupported_image")
        rgb = decode_image(data, image_limits)
        if size is None:
            size = rgb.shape
        elif rgb.shape != size:
            raise VideoRejected(f"Frame {i} is {rgb.shape[1]}x{rgb.shape[0]}; every frame must have the size of "
                                "the first.", code="frame_size_changed")
        w, h = _check_frame_size(rgb.shape[1], rgb.shape[0], limits, f"Frame {i}")
        if (w, h) != (rgb.shape[1], rgb.shape[0]):
            rgb = np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.BILINEAR))
        frames.append(Frame(rgb=rgb, t=t))
    return frames
