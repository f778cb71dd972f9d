"""HTTP API adapter (FastAPI): parse, authenticate, call one use case, render."""

from facewarden.api.app import create_app

__all__ = ["create_app"]
