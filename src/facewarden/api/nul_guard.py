"""Refuse NUL characters in the path and query string before any route, dependency or database work runs.

The database layer refuses NUL in text parameters on every backend (`store.db.refuse_nul_text`); this guard
answers the same error earlier for what arrives in the URL, so no key check, rate count or upload read is spent
on a request that cannot succeed."""

from __future__ import annotations

import json
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from facewarden.api.errors import STATUS_BY_KIND, error_body
from facewarden.errors import ErrorKind
from facewarden.store.db import NUL_MESSAGE


class NulGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ("\x00" in scope.get("path", "")
                                        or b"\x00" in unquote_to_bytes(scope.get("query_string", b""))):
            body = json.dumps(error_body("nul_byte_in_text", NUL_MESSAGE)).encode()
            await send({"type": "http.response.start", "status": STATUS_BY_KIND[ErrorKind.INVALID],
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
