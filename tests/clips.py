"""Clips and photos made at test time from the shared data (never committed): portrait crops, rotation matrices,
unidentifiable codecs, strips of pixels in every accepted image format."""

from __future__ import annotations

import io
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from facewarden.evaluation.attack_segments import encode_frames

__all__ = ["encode_frames"]  # moved to the evaluation package; tests import it from here

ROT90 = (0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)  # an MP4 display matrix: a quarter turn


def transcode(src: Path, *, size: tuple[int, int] | None = None, crop_to_aspect: bool = True, seconds: float = 3.0,
              fps: int = 25, container: str = "mp4", codec: str = "libx264", variable_rate: bool = False) -> bytes:
    """The first `seconds` of a clip, centre-cropped to the aspect of `size` and scaled to it (width, height).
    `variable_rate` stamps the frames irregularly (millisecond time base, 20-140 ms apart), as phones record."""
    out = io.BytesIO()
    with av.open(str(src)) as inp, av.open(out, "w", format=container) as oc:
        stream = oc.add_stream(codec, rate=fps)
        if variable_rate:
            stream.codec_context.time_base = Fraction(1, 1000)
        first = True
        pts = 0
        for k, frame in enumerate(inp.decode(inp.streams.video[0])):
            if frame.time is not None and frame.time > seconds:
                break
            img = frame.to_ndarray(format="rgb24")
            h, w = img.shape[:2]
            tw, th = size or (w - w % 2, h - h % 2)
            if crop_to_aspect:
                if w * th > h * tw:
                    cw = round(h * tw / th)
                    img = img[:, (w - cw) // 2:(w - cw) // 2 + cw]
                else:
                    ch = round(w * th / tw)
                    img = img[(h - ch) // 2:(h - ch) // 2 + ch]
            img = np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((tw, th)))
            if first:
                stream.width, stream.height, stream.pix_fmt = tw, th, "yuv420p"
                first = False
            out_frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            if variable_rate:
                out_frame.pts, out_frame.time_base = pts, Fraction(1, 1000)
                pts += (20, 140, 33, 66, 41)[k % 5]
            for packet in stream.encode(out_frame):
                oc.mux(packet)
        for packet in stream.encode():
            oc.mux(packet)
    return out.getvalue()


def with_display_matrix(mp4: bytes, matrix: tuple[int, ...]) -> bytes:
    """The clip with its first track header's 3x3 display matrix replaced (how phones mark portrait clips)."""
    i = mp4.index(b"tkhd") + 4
    offset = i + (40 if mp4[i] == 0 else 52)  # after version/flags, times, ids, duration, layer, volume
    return mp4[:offset] + struct.pack(">9i", *matrix) + mp4[offset + 36:]


def unknown_codec(mp4: bytes) -> bytes:
    """The clip with its sample entry's codec tag replaced by one FFmpeg does not know."""
    assert b"avc1" in mp4
    return mp4.replace(b"avc1", b"zzzz")


def strip(fmt: str, size: tuple[int, int]) -> bytes:
    """A plain picture of `size` (width, height) in one of Pillow's formats."""
    buf = io.BytesIO()
    Image.new("L" if fmt == "PPM" else "RGB", size, 128).save(buf, format=fmt)
    return buf.getvalue()
