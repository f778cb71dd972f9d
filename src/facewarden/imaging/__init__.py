"""Safe decoding of untrusted images."""

from facewarden.imaging.decode import ImageLimits, decode_image

__all__ = ["ImageLimits", "decode_image"]
