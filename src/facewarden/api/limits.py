"""Request-size, request-time, upload-concurrency and request-rate limits, in front of every endpoint."""

from __future__ import annotations

import asyncio
import threading
import time

from starlette.datastructures import UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facewarden.api.errors import STATUS_BY_KIND, ResponseWatch, send_error
from facewarden.errors import ErrorKind, TooLarge

MAX_FRAMES_UPLOADED = 60  # liveness frames in one submission (the form parser's file limit follows it)


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
                    await send_error(send, STATUS_BY_KIND[ErrorKind.TOO_LARGE], "request_too_large", message)
                    return
        seen = 0
        watched = ResponseWatch(send)

        async def limited_receive() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return msg

        try:
            await self.app(scope, limited_receive, watched)
        except _TooLarge:
            if not watched.started:
                await send_error(send, STATUS_BY_KIND[ErrorKind.TOO_LARGE], "request_too_large", message)


CLOSE = [(b"connection", b"close")]


class SlowBodyGuard:
    """Bounds how long a request body may take, and how many uploads (multipart bodies) are read and processed at
    once. A body that stalls (no bytes for `idle_s`) or drags on (not complete after `total_s`) is answered 408
    `request_timeout` and its connection closed: a slow client cannot pin a connection, a buffer or an upload slot.
    Beyond `max_uploads` concurrent uploads, or half of them from one client address (so one slow client cannot
    hold them all), the next one is answered 503 `server_busy` with Retry-After at once, before any of its body is
    read: memory stays bounded by `max_uploads` x the request-size limit."""

    def __init__(self, app: ASGIApp, *, idle_s: float, total_s: float, max_uploads: int) -> None:
        self.app = app
        self.idle_s = idle_s
        self.total_s = total_s
        self.max_uploads = max_uploads
        self.per_client = max(1, max_uploads // 2)
        self.active_uploads = 0  # one event loop: no lock needed
        self.by_client: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = any(n == b"content-type" and v.lower().startswith(b"multipart/") for n, v in scope["headers"])
        client = (scope.get("client") or ("-",))[0]
        if upload and (self.active_uploads >= self.max_uploads or self.by_client.get(client, 0) >= self.per_client):
            await send_error(send, STATUS_BY_KIND[ErrorKind.UNAVAILABLE], "server_busy",
                              f"The server is processing {self.max_uploads} uploads already; retry in a moment.",
                              extra=[(b"retry-after", b"2"), *CLOSE])
            return
        deadline = time.monotonic() + self.total_s
        answered = False  # we answered the timeout ourselves: drop whatever the app still sends
        started = False
        body_done = False

        async def timed_receive() -> Message:
            nonlocal answered, body_done
            if answered:
                return {"type": "http.disconnect"}
            if body_done:  # after the body, receive() only waits for a disconnect (streamed answers): no limit
                return await receive()
            try:
                msg = await asyncio.wait_for(receive(), max(0.0, min(self.idle_s, deadline - time.monotonic())))
                body_done = msg["type"] != "http.request" or not msg.get("more_body", False)
                return msg
            except TimeoutError:
                if not started:
                    answered = True
                    await send_error(send, STATUS_BY_KIND[ErrorKind.TIMEOUT], "request_timeout",
                                      "The request body arrived too slowly; send it again over a better "
                                      "connection.", extra=CLOSE)
                return {"type": "http.disconnect"}  # the app sees a vanished client and stops reading

        async def guarded_send(msg: Message) -> None:
            nonlocal started
            if answered:
                return
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        if upload:
            self.active_uploads += 1
            self.by_client[client] = self.by_client.get(client, 0) + 1
        try:
            await self.app(scope, timed_receive, guarded_send)
        except Exception:
            if not answered:
                raise
        finally:
            if upload:
                self.active_uploads -= 1
                if (left := self.by_client.pop(client) - 1) > 0:
                    self.by_client[client] = left


class RateLimiter:
    """Token bucket per caller (API key, or client address before authentication). Buckets that have refilled
    are pruned, so a flood of addresses or bad keys cannot grow memory without bound."""

    PRUNE_EVERY = 1024  # checks between sweeps of refilled buckets
    MAX_BUCKETS = 100_000  # beyond this, the least recently used half is dropped (they only lose their debt)

    def __init__(self, per_minute: int, burst: int | None = None) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst or max(1, per_minute // 4))
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._checks = 0

    def _tokens(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate)

    def wait(self, key: str) -> float:
        """The seconds until `key` has a token again (0: it has one now); takes nothing."""
        with self._lock:
            tokens = self._tokens(key, time.monotonic())
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def check(self, key: str) -> float:
        """Take one token; return 0 when allowed, else the seconds to wait."""
        now = time.monotonic()
        with self._lock:
            self._checks += 1
            if self._checks % self.PRUNE_EVERY == 0 or len(self._buckets) > self.MAX_BUCKETS:
                self._prune(now)
            tokens = self._tokens(key, now)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        full = [k for k, (tokens, last) in self._buckets.items() if tokens + (now - last) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) > self.MAX_BUCKETS:  # all in debt at once: keep the most recent half
            recent = sorted(self._buckets.items(), key=lambda kv: kv[1][1])[len(self._buckets) // 2:]
            self._buckets = dict(recent)

    def __len__(self) -> int:
        return len(self._buckets)


async def read_limited(upload: UploadFile, limit: int, *, code: str = "image_too_large") -> bytes:
    """An uploaded file, read into memory up to `limit` bytes; one byte more is a 413 with `code`."""
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"'{upload.filename}' exceeds {limit} bytes.", code=code)
    return data
