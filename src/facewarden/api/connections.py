"""Connection limits below the ASGI app, for `serve`: uvicorn (0.54, h11) closes idle keep-alive connections
but has no deadline for the request head, so a client that connects and trickles header bytes (slowloris), or
never sends any, holds its socket and its TLS buffers (~300 KB each) for ever. This protocol gives every
connection `header_timeout_s` from connect, or from the previous answer, to deliver a complete request head, and
closes connections beyond `max_connections` at once. Slow bodies are the ASGI guard's (`limits.SlowBodyGuard`).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("facewarden.connections")


class GuardedH11Protocol(H11Protocol):
    header_timeout_s: float = 10.0  # set by `configured`
    max_connections: int = 1000
    closed_stalled = 0  # class-wide count, for the logs and the soak test
    _lost = 0
    _warned_at = float("-inf")

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        if len(self.connections) > self.max_connections:
            now = self.loop.time()
            if now - GuardedH11Protocol._warned_at > 10:  # one line per 10 s, not one per refused connection
                GuardedH11Protocol._warned_at = now
                log.warning("refusing connections: %d open, the limit is %d (FACEWARDEN_MAX_CONNECTIONS)",
                            len(self.connections) - 1, self.max_connections)
            transport.abort()
            return
        self._arm()

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self.header_timeout_s, self._expire)

    def _expire(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            # Closed gracefully, but the peer never answers TLS's close_notify: asyncio would keep the socket and
            # its buffers for its 30 s shutdown timeout. Cut it.
            self.transport.abort()
            return
        # A request being answered is the body guard's business; anything else (no head yet, a head half sent, a
        # body trickling in after its answer) has had its time. No graceful TLS close for a stalled peer.
        if self.cycle is not None and not self.cycle.response_complete:
            return
        type(self).closed_stalled += 1
        log.debug("closed a connection that sent no complete request head in %.0f s", self.header_timeout_s)
        self.transport.abort()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()  # the next request head is due within the same time (or a closing socket is cut then)

    def connection_lost(self, exc: Exception | None) -> None:
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()  # type: ignore[union-attr]
            self._deadline = None
        super().connection_lost(exc)
        # After a burst of connections (each left OpenSSL and h11 fragments in the heap), hand the free pages
        # back to the OS once the crowd is gone.
        GuardedH11Protocol._lost += 1
        if GuardedH11Protocol._lost % 64 == 0 or not self.connections:
            trim_malloc()


def configured(header_timeout_s: float, max_connections: int) -> type[GuardedH11Protocol]:
    """A protocol class with these limits (uvicorn instantiates the class it is given per connection)."""
    attrs: dict[str, Any] = {"header_timeout_s": header_timeout_s, "max_connections": max_connections}
    return type("ConfiguredH11Protocol", (GuardedH11Protocol,), attrs)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
_LIBC: Any = None


def _libc() -> Any:
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _LIBC.mallopt, _LIBC.malloc_trim  # noqa: B018 (glibc only)
        except (OSError, AttributeError):
            _LIBC = False
    return _LIBC


def trim_malloc() -> None:
    """Give free heap pages back to the OS (glibc's malloc_trim); a few milliseconds on a large heap."""
    if libc := _libc():
        libc.malloc_trim(0)


def tune_malloc() -> bool:
    """glibc keeps freed memory when it can: its mmap threshold rises after each freed large block (TLS buffers,
    uploads), so later ones come from heaps that are never shrunk, and each thread gets its own arena. Fixing the
    threshold, trimming eagerly and capping arenas lets RSS fall back after a burst. False off glibc (no-op)."""
    if not (libc := _libc()):
        return False
    mallopt = libc.mallopt
    ok = mallopt(_M_MMAP_THRESHOLD, 128 * 1024) == 1
    ok &= mallopt(_M_TRIM_THRESHOLD, 256 * 1024) == 1
    ok &= mallopt(_M_ARENA_MAX, 4) == 1
    return bool(ok)


def bound_tls_timeouts(handshake_s: float, shutdown_s: float = 5.0) -> None:
    """uvicorn passes no TLS timeouts to asyncio, which then reads these process-wide defaults (60 s for a
    handshake, 30 s for a close_notify answer) when each connection is accepted: a client that connects and never
    starts TLS would hold its socket and a 256 KB read buffer for a minute, before our protocol even exists."""
    asyncio.constants.SSL_HANDSHAKE_TIMEOUT = handshake_s
    asyncio.constants.SSL_SHUTDOWN_TIMEOUT = shutdown_s
