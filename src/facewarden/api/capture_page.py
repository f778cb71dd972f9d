"""The liveness capture page (/capture/): a static page and its script, served with a strict policy.

The page reads its session id and capture token from the URL fragment, which browsers never send to a server,
so neither lands in access logs or referrers. It calls only /v1/liveness/capture/{id} with that token.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse

# No inline script or style, nothing from elsewhere, no framing; the camera for this origin only.
CAPTURE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "media-src 'self' blob: mediastream:; img-src 'self'; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
    "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
    "Cache-Control": "no-store"}
_FILES = {"": ("index.html", "text/html; charset=utf-8"), "capture.js": ("capture.js", "text/javascript"),
          "capture.css": ("capture.css", "text/css"), "icon.svg": ("icon.svg", "image/svg+xml")}


def capture_dir() -> Path:
    return Path(str(files("facewarden.api") / "capture"))


def install_capture_page(app: FastAPI) -> None:
    folder = capture_dir()
    for path, (name, media_type) in _FILES.items():
        def serve(name: str = name, media_type: str = media_type) -> FileResponse:
            return FileResponse(folder / name, media_type=media_type, headers=CAPTURE_HEADERS)

        app.add_api_route(f"/capture/{path}", serve, methods=["GET"], include_in_schema=False)
