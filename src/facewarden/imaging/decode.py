"""Decode untrusted image bytes into an RGB array, refusing anything outside the allow-list or limits.

Pillow reads only the header in `Image.open`, so format and pixel count are checked before any
pixel data is decompressed: a decompression bomb is refused before it is decoded.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facewarden.errors import InvalidInput, TooLarge, Unsupported

# Pillow names PGM "PPM" (the netpbm family); only greyscale/colour netpbm is accepted.
ALLOWED_FORMATS = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "PPM": "pgm"}


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000


class ImageRejected(InvalidInput):
    """An image that is refused: malformed or corrupt here; over a limit or of a refused format in the subclasses."""


# Both bases: callers catch ImageRejected; the kind (first base) is what an adapter reports.
class ImageTooLarge(TooLarge, ImageRejected):
    pass


class ImageUnsupported(Unsupported, ImageRejected):
    pass


def decode_image(data: bytes, limits: ImageLimits | None = None) -> np.ndarray:
    """Return an HxWx3 uint8 RGB array with EXIF orientation applied, or raise ImageRejected."""
    limits = limits or ImageLimits()
    if not data:
        raise ImageRejected("The upload is empty: send the bytes of a JPEG, PNG, WebP, GIF or PGM photo.",
                            code="empty_image")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(
            f"The image is {len(data)} bytes; the limit is {limits.max_bytes}. Send a smaller or more "
            "compressed photo.", code="image_too_large")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
    except UnidentifiedImageError:
        raise ImageUnsupported(
            "This is not an image in an accepted format (JPEG, PNG, WebP, GIF, PGM).",
            code="unsupported_image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge(
            f"The image has too many pixels (limit {limits.max_pixels}); refusing to decode it.",
            code="too_many_pixels") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(
            f"The image header could not be read ({type(exc).__name__}); the file is truncated or corrupt. "
            "Send the complete file.", code="corrupt_image") from None
    width, height = img.size
    if width * height > limits.max_pixels or width <= 0 or height <= 0:
        raise ImageTooLarge(
            f"The image is {width}x{height} pixels; the limit is {limits.max_pixels} pixels. "
            "Downscale it before sending.", code="too_many_pixels")
    try:
        img.load()  # decodes the first frame only (GIF/WebP animations are not expanded)
        img = ImageOps.exif_transpose(img) or img
        rgb = img.convert("RGB")
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(
            f"The image could not be decoded ({type(exc).__name__}); it may be truncated or corrupt. "
            "Send the complete file.", code="corrupt_image") from None
    finally:
        img.close()
    return np.asarray(rgb, dtype=np.uint8)
