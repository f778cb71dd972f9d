"""The access log, in place of uvicorn's: one line per request with the route template, never the raw path.

Paths carry subject references (often names) and query strings carry search terms; neither is personal data we
may scatter into log files. A line names the method, the route template (`/v1/subjects/{subject}/verify`), the
status, the duration and the caller's internal principal id (`apikey:<uuid>`), nothing else.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from facewarden.api.errors import ResponseWatch

log = logging.getLogger("facewarden.access")


def route_template(scope: Scope, unmatched: str = "<unmatched>") -> str:
    """The matched route's template; unmatched paths (404s, scans) are not echoed at all."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else unmatched


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        watched = ResponseWatch(send)
        try:
            await self.app(scope, receive, watched)
        finally:
            principal = (scope.get("state") or {}).get("principal", "-")
            log.info('"%s %s" %d %.0f ms %s', scope.get("method"), route_template(scope), watched.status,
                     (time.perf_counter() - start) * 1000, principal)
