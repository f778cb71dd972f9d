"""Request-size and request-rate limits, in front of every endpoint."""

from __future__ import annotations

import json
import threading
import time

from starlette.datastructures import UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facewarden.api.errors import STATUS_BY_KIND, error_body
from facewarden.errors import ErrorKind, TooLarge

MAX_FRAMES_UPLOADED = 60  # liveness frames in one submission (the form parser's file limit follows it)


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(error_body(code, message)).encode()
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuse bodies over `max_bytes` by Content-Length, and count chunked bodies as they stream in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = (f"The request body exceeds {self.max_bytes} bytes. Send fewer or smaller photos.")
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = True
                if too_big:
                    await _send_error(send, STATUS_BY_KIND[ErrorKind.TOO_LARGE], "request_too_large", message)
                    return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_error(send, STATUS_BY_KIND[ErrorKind.TOO_LARGE], "request_too_large", message)


class RateLimiter:
    """Token bucket per caller (API key, or client address before authentication)."""

    def __init__(self, per_minute: int, burst: int | None = None) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst or max(1, per_minute // 4))
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> float:
        """Take one token; return 0 when allowed, else the seconds to wait."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


async def read_limited(upload: UploadFile, limit: int, *, code: str = "image_too_large") -> bytes:
    """An uploaded file, read into memory up to `limit` bytes; one byte more is a 413 with `code`."""
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"'{upload.filename}' exceeds {limit} bytes.", code=code)
    return data
