"""FaceWarden: face recognition that protects the face data it holds."""

__version__ = "0.1.0"
