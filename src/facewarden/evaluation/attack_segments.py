"""The genuine material of the attack set: the project's videos, the segments table and how a clip is cut.

The segments table was read off the videos at 15 fps: windows of 3 s (starting on a 0.4 s grid) where the
68-point landmark model (an independent reference: other landmarks, eye aspect ratio for blinks) and the
default 5-point pipeline see the same action sequence; 108 of the 202 windows where the reference saw
actions agreed, and non-overlapping-as-possible ones (starts >= 1.6 s apart) were kept. Where the two models
disagree the recorded motion is borderline (a turn near 15 degrees), which a challenged user would not make.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from facewarden.imaging.video import Frame, VideoLimits, decode_video
from facewarden.liveness.challenge import Action

__all__ = ["CAPTURE_PAGE_BIT_RATE", "DECODER_MAX_SIDE", "FPS", "SEGMENTS", "SEGMENT_S", "VIDEOS", "Segment",
           "decode_native", "encode_frames", "sample_clip", "shrink", "through_capture_page"]

VIDEOS = ("d0", "d3", "d6", "d10", "d11", "d12", "d14", "d18", "d19", "d20")
FPS = 15.0
DECODER_MAX_SIDE = 720  # imaging.video.VideoLimits.resize_max_side: what the checker sees of a larger clip
SEGMENT_S = 3.0

L, R, U, B = Action.TURN_LEFT, Action.TURN_RIGHT, Action.LOOK_UP, Action.BLINK


@dataclass(frozen=True)
class Segment:
    video: str
    t0: float  # seconds from the video's first frame; the segment lasts SEGMENT_S
    actions: tuple[Action, ...]  # what the person does in it, in order

    @property
    def t1(self) -> float:
        return self.t0 + SEGMENT_S

    @property
    def label(self) -> str:
        return f"{self.video} {self.t0:.1f}-{self.t1:.1f} s"


SEGMENTS: tuple[Segment, ...] = (
    Segment("d0", 0.0, (B,)),
    Segment("d10", 4.8, (B,)), Segment("d10", 8.4, (B,)), Segment("d10", 10.0, (B,)),
    Segment("d11", 0.0, (U,)), Segment("d11", 1.6, (L,)), Segment("d11", 3.6, (L,)), Segment("d11", 5.2, (R,)),
    Segment("d12", 0.8, (B, R)),
    Segment("d14", 0.0, (B,)), Segment("d14", 1.6, (B,)), Segment("d14", 3.2, (B,)), Segment("d14", 4.8, (B,)),
    Segment("d14", 6.8, (B,)), Segment("d14", 8.4, (B,)), Segment("d14", 13.6, (B,)),
    Segment("d18", 3.6, (B,)),
    Segment("d19", 0.0, (R, U)), Segment("d19", 2.0, (U, B)), Segment("d19", 3.6, (L, U)),
    Segment("d19", 5.2, (R, U)),
    Segment("d3", 1.6, (R,)), Segment("d3", 4.0, (L, U, R)), Segment("d3", 6.4, (L,)), Segment("d3", 8.0, (R, U)),
    Segment("d6", 1.6, (R,)), Segment("d6", 4.0, (L, B)), Segment("d6", 6.4, (B, L)), Segment("d6", 8.4, (L, U)),
    Segment("d6", 10.0, (L,)), Segment("d6", 12.0, (R,)), Segment("d6", 14.0, (L, B)), Segment("d6", 15.6, (B, L)),
    Segment("d6", 17.2, (R,)), Segment("d6", 18.8, (R,)), Segment("d6", 20.4, (L,)), Segment("d6", 24.4, (L,)),
    Segment("d6", 26.4, (L,)), Segment("d6", 28.8, (R, U)),
)


def encode_frames(frames: list[Frame], fps: int, container: str = "mp4", codec: str = "libx264",
                  bit_rate: int | None = None) -> bytes:
    """A real clip made from real frames (PyAV's bundled encoders), one frame every 1/fps seconds; `bit_rate`
    (bits/s) as a client's recorder would cap it (Chromium's MediaRecorder: VP8 in WebM)."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = frames[0].rgb.shape[1], frames[0].rgb.shape[0]
        stream.pix_fmt = "yuv420p"
        if bit_rate:
            stream.bit_rate = bit_rate
        for i, f in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(f.rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def decode_native(path: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """Every frame of a (trusted, local) video at its own rate: timestamps from 0 and RGB arrays."""
    times, images = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        t0 = None
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            t0 = frame.time if t0 is None else t0
            times.append(frame.time - t0)
            images.append(frame.to_ndarray(format="rgb24"))
    return np.array(times), images


def shrink(rgb: np.ndarray, max_side: int = DECODER_MAX_SIDE) -> np.ndarray:
    """A frame downscaled (area averaging) so its longer side is at most `max_side`, as the service decodes."""
    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb
    scale = max_side / max(h, w)
    return cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def sample_clip(times: np.ndarray, images: list[np.ndarray], t0: float, t1: float, fps: float = FPS,
            phase: float = 0.0) -> list[Frame]:
    """Frames on a fps grid from t0 + phase to t1 (the first frame at or after each grid point, as the
    production decoder keeps them), timestamps re-based to the segment's first frame."""
    period = 1.0 / fps
    slack = 0.1 * period
    out: list[Frame] = []
    g = t0 + phase
    k = int(np.searchsorted(times, g - slack))
    while k < len(times) and times[k] <= t1 + slack:
        if times[k] >= g - slack:
            out.append(Frame(rgb=images[k], t=float(times[k])))
            while g <= times[k] + slack:
                g += period
        k += 1
    start = out[0].t if out else 0.0
    return [Frame(rgb=f.rgb, t=round(f.t - start, 6)) for f in out]


CAPTURE_PAGE_BIT_RATE = 2_500_000  # capture.js's CLIP_BITS_PER_SECOND


def through_capture_page(frames: list[Frame], fps: int = 15, max_side: int = 640,
                         bit_rate: int = CAPTURE_PAGE_BIT_RATE) -> list[Frame]:
    """The frames as the service sees them from the capture page: the browser films at 640 px and records VP8
    WebM at the page's 2.5 Mbit/s (a lower `bit_rate` stands for a browser that ignores it), the service
    decodes it with its own decoder."""
    small = [shrink(f.rgb, max_side) for f in frames]
    small = [np.ascontiguousarray(im[: im.shape[0] // 2 * 2, : im.shape[1] // 2 * 2]) for im in small]
    clip = encode_frames([Frame(im, f.t) for im, f in zip(small, frames, strict=True)], fps, container="webm",
                         codec="libvpx", bit_rate=bit_rate)
    return decode_video(clip, VideoLimits())

