"""Inputs for fuzzing the decoders, shared by the CI fuzz tests (through Hypothesis) and bench/fuzz.py (through a
seeded `random.Random`): mutated real photos and clips, random bytes, odd sizes and modes, huge declared
dimensions, damaged display matrices and codec tags. Seeds come from the shared face data and are never written
into the repository."""

from __future__ import annotations

import io
import random
import signal
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from facewarden.errors import ErrorKind, FaceWardenError
from tests.clips import ROT90, transcode, with_display_matrix

FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "PPM")
HUGE = (0, 1, 2, 255, 65535, 2**16 + 1, 2**24, 2**31 - 1, 2**32 - 1)
# What a decoder may answer a client: a FaceWardenError whose kind is the client's fault (a 4xx).
CLIENT_KINDS = frozenset(ErrorKind) - {ErrorKind.INTERNAL, ErrorKind.UPSTREAM, ErrorKind.UNAVAILABLE}


class Hang(Exception):
    """A case ran past its time bound."""


@contextmanager
def time_bound(seconds: float) -> Iterator[None]:
    """Raise Hang in the main thread when the block runs longer than `seconds` (SIGALRM; POSIX)."""
    def _alarm(_sig: int, _frame: object) -> None:
        raise Hang(f"over {seconds} s")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    ok: bool  # decoded
    code: str | None  # the refusal's code
    seconds: float


def run_case(decode: Callable[[], object], bound_s: float) -> Outcome:
    """Decode one case: a result or a 4xx-kind FaceWardenError; anything else (or a hang) propagates."""
    t0 = time.perf_counter()
    with time_bound(bound_s):
        try:
            decode()
        except FaceWardenError as exc:
            if exc.kind not in CLIENT_KINDS:
                raise AssertionError(f"{exc.code} has kind {exc.kind}, not a client error") from exc
            return Outcome(False, exc.code, time.perf_counter() - t0)
    return Outcome(True, None, time.perf_counter() - t0)


# -- seeds ------------------------------------------------------------------------------------------------------
def encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    if fmt == "PPM" and img.mode not in ("L", "RGB"):
        img = img.convert("RGB")
    if fmt == "JPEG" and img.mode not in ("L", "RGB", "CMYK"):
        img = img.convert("RGB")
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def image_seeds(faces: Path) -> list[bytes]:
    """A real face photo in each accepted format (small, so each case decodes fast), plus two shared files."""
    photo = Image.open(faces / "people" / "train" / "obama" / "obama.jpg").convert("RGB")
    photo.thumbnail((160, 160))
    seeds = [encode(photo, fmt) for fmt in FORMATS]
    seeds.append(encode(photo.convert("L"), "PPM"))
    seeds.append((faces / "orl" / "s1" / "1.pgm").read_bytes())
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate on decode
    seeds.append(encode(photo, "JPEG", exif=exif.tobytes()))
    return seeds


def video_seeds(faces: Path) -> list[bytes]:
    """One second of a real clip, small, as MP4/H.264 and WebM/VP8 and VP9: square, portrait, odd-sized, turned by
    a display matrix, and with a variable frame rate."""
    src = faces / "video" / "d0.mp4"
    return [transcode(src, size=(128, 128), seconds=1.0, fps=15),
            transcode(src, size=(96, 160), seconds=1.0, fps=15),  # portrait, odd row padding
            with_display_matrix(transcode(src, size=(160, 96), seconds=1.0, fps=15), ROT90),  # phone portrait
            transcode(src, size=(128, 96), seconds=1.2, fps=15, variable_rate=True),
            transcode(src, size=(97, 61), seconds=1.0, fps=15, container="webm", codec="libvpx"),  # odd sizes
            transcode(src, size=(128, 96), seconds=1.0, fps=15, container="webm", codec="libvpx"),
            transcode(src, size=(128, 96), seconds=0.6, fps=15, container="webm", codec="libvpx-vp9")]


# -- mutations --------------------------------------------------------------------------------------------------
def _flip(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 24)):
        if b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    return bytes(b)


def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(len(data) + 1)]


def _insert(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.randbytes(rng.randint(1, 512)) + data[at:]


def _delete(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + data[at + rng.randint(1, 2048):]


def _repeat(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data) + 1)
    chunk = data[at:at + rng.randint(1, 256)]
    return data[:at] + chunk * rng.randint(2, 16) + data[at:]


def _overwrite_ints(data: bytes, rng: random.Random) -> bytes:
    """Write huge or tiny integers (sizes, lengths, counts) at random offsets, big- or little-endian."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if len(b) < 8:
            break
        fmt = rng.choice([">I", "<I", ">H", "<H", ">i"])
        value = rng.choice(HUGE) % (2 ** (8 * struct.calcsize(fmt) - (1 if fmt == ">i" else 0)))
        at = rng.randrange(len(b) - struct.calcsize(fmt) + 1)
        b[at:at + struct.calcsize(fmt)] = struct.pack(fmt, value)
    return bytes(b)


def _declared_size(data: bytes, rng: random.Random) -> bytes:
    """Change the width and height a header declares, where the format keeps them."""
    w, h = rng.choice(HUGE), rng.choice(HUGE)
    b = bytearray(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(b) >= 24:
        b[16:24] = struct.pack(">II", w % 2**31, h % 2**31)
    elif data[:3] == b"GIF" and len(b) >= 10:
        b[6:10] = struct.pack("<HH", w % 2**16, h % 2**16)
    elif data[:2] == b"\xff\xd8":
        at = max(data.find(b"\xff\xc0"), data.find(b"\xff\xc2"))
        if at > 0 and len(b) >= at + 9:
            b[at + 5:at + 9] = struct.pack(">HH", h % 2**16, w % 2**16)
    elif data[:1] == b"P" and data[1:2] in b"2356":
        end = data.find(b"255\n")
        if end > 0:
            return data[:2] + f"\n{w} {h}\n".encode() + data[end:]
    elif b"tkhd" in data:  # MP4: the track's display size (16.16 fixed point) and its matrix
        i = data.index(b"tkhd") + 4
        off = i + (76 if data[i] == 0 else 88)
        if len(b) >= off + 8:
            b[off:off + 8] = struct.pack(">II", w % 2**32, h % 2**32)
    return bytes(b)


def _display_matrix(data: bytes, rng: random.Random) -> bytes:
    if b"tkhd" not in data:
        return _overwrite_ints(data, rng)
    i = data.index(b"tkhd") + 4
    off = i + (40 if data[i] == 0 else 52)
    matrix = [rng.choice([0, 0x10000, -0x10000, 0xB504, 2**31 - 1, -(2**31), rng.randint(-(2**31), 2**31 - 1)])
              for _ in range(9)]
    return data[:off] + struct.pack(">9i", *matrix) + data[off + 36:]


def _codec_tag(data: bytes, rng: random.Random) -> bytes:
    for tag in (b"avc1", b"avcC", b"V_VP8", b"V_VP9", b"vp09"):
        if tag in data:
            return data.replace(tag, bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789\x00\xff")
                                           for _ in range(len(tag))))
    return _flip(data, rng)


MUTATIONS: tuple[Callable[[bytes, random.Random], bytes], ...] = (
    _flip, _truncate, _insert, _delete, _repeat, _overwrite_ints, _declared_size, _display_matrix, _codec_tag)


def mutate(seeds: list[bytes], rng: random.Random) -> bytes:
    """One seed through one to three mutations, or spliced with another seed."""
    data = rng.choice(seeds)
    if rng.random() < 0.1:
        other = rng.choice(seeds)
        data = data[:rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1):]
    for _ in range(rng.randint(1, 3)):
        data = rng.choice(MUTATIONS)(data, rng)
    return data


def generated_image(rng: random.Random) -> bytes:
    """A fresh picture of an odd size and mode (strips included) in one accepted format, EXIF orientation random."""
    fmt = rng.choice(FORMATS)
    if rng.random() < 0.3:
        size = rng.choice([(1, rng.randint(1, 6000)), (rng.randint(1, 6000), 1), (2, 3000), (3000, 2),
                           (rng.randint(1, 60), rng.randint(1000, 4000)), (rng.randint(1000, 4000), rng.randint(1, 60))])
    else:
        size = (rng.randint(1, 300), rng.randint(1, 300))
    if fmt == "WEBP":
        size = (min(size[0], 16383), min(size[1], 16383))
    mode = rng.choice(["L", "RGB", "RGBA", "P", "1", "LA", "I;16"] if fmt == "PNG" else ["L", "RGB", "RGBA", "P"])
    w, h = size
    grey = (np.frombuffer(rng.randbytes(w * h), np.uint8).reshape(h, w) if w * h <= 400_000
            else np.full((h, w), rng.randrange(256), np.uint8))
    img = Image.fromarray(grey)
    try:
        img = img.convert(mode)
    except ValueError:
        img = img.convert("RGB")
    kwargs: dict[str, object] = {}
    if fmt in ("JPEG", "WEBP", "PNG") and rng.random() < 0.3:
        exif = Image.Exif()
        exif[0x0112] = rng.choice([0, 1, 3, 5, 6, 7, 8, 9, 65535])
        kwargs["exif"] = exif.tobytes()
    try:
        return encode(img, fmt, **kwargs)
    except (OSError, ValueError):  # a mode this format cannot store
        return encode(img.convert("RGB"), fmt)


def random_bytes(rng: random.Random, magic: tuple[bytes, ...] = ()) -> bytes:
    prefix = rng.choice(magic) if magic and rng.random() < 0.7 else b""
    return prefix + rng.randbytes(rng.randint(0, 4096))


IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"GIF89a", b"P5\n", b"P6\n")
VIDEO_MAGIC = (b"\x00\x00\x00\x18ftypisom", b"\x00\x00\x00\x08moov", b"\x1a\x45\xdf\xa3")


def image_case(seeds: list[bytes], rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.55:
        return mutate(seeds, rng)
    if roll < 0.85:
        return generated_image(rng)
    return random_bytes(rng, IMAGE_MAGIC)


def video_case(seeds: list[bytes], rng: random.Random) -> bytes:
    return mutate(seeds, rng) if rng.random() < 0.85 else random_bytes(rng, VIDEO_MAGIC)


def frames_case(image_seeds_: list[bytes], rng: random.Random) -> list[tuple[bytes, float]]:
    """Still frames for a liveness submission: mutated or odd pictures, timestamps including NaN and infinities."""
    stamps = [0.0, 0.066, 1e308, -1.0, float("nan"), float("inf"), 15.1]
    return [(image_case(image_seeds_, rng), rng.choice(stamps) if rng.random() < 0.2 else k / 15)
            for k in range(rng.randint(1, 6))]
