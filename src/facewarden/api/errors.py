"""The one place where an error kind becomes an HTTP status, and the JSON shape every error has; a full disk
becomes 503 `storage_full` and anything unexpected a JSON 500 `internal_error`, never a dropped connection."""

from __future__ import annotations

import errno
import json
import logging
import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facewarden.api.schemas import ErrorResponse
from facewarden.errors import ErrorKind, FaceWardenError, InternalError, Unavailable

log = logging.getLogger("facewarden.api")

STATUS_BY_KIND: dict[ErrorKind, int] = {
    ErrorKind.INVALID: 400,
    ErrorKind.UNAUTHORIZED: 401,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.GONE: 410,
    ErrorKind.TOO_LARGE: 413,
    ErrorKind.UNSUPPORTED: 415,
    ErrorKind.UNPROCESSABLE: 422,
    ErrorKind.LOCKED: 423,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.TIMEOUT: 408,
    ErrorKind.INTERNAL: 500,
    ErrorKind.UPSTREAM: 502,
    ErrorKind.UNAVAILABLE: 503,
}

# For `responses=` on every router: each status an error can have, with the body it has (OpenAPI).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in sorted(set(STATUS_BY_KIND.values()))}


def status_for(exc: FaceWardenError) -> int:
    return STATUS_BY_KIND[exc.kind]


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


async def _facewarden_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FaceWardenError)
    return JSONResponse(error_body(exc.code, exc.message), status_code=status_for(exc))


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Never echo the submitted values back (they may be face data); name the fields only.
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return JSONResponse(error_body("invalid_request", f"Invalid request: {problems}"), status_code=422)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    """Starlette's own refusals (a body that is not JSON, an unknown path) in the same error shape as ours."""
    assert isinstance(exc, StarletteHTTPException)
    code = {400: "bad_request", 404: "not_found"}.get(exc.status_code, "bad_request")
    return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FaceWardenError, _facewarden_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


def _chain(exc: BaseException) -> list[BaseException]:
    """The error and every one it was raised from (SQLAlchemy keeps the driver's error in `.orig`)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is not None and all(e is not s for s in seen):
            seen.append(e)
            todo += [e.__cause__, e.__context__, getattr(e, "orig", None)]
    return seen


def storage_full(exc: BaseException) -> bool:
    """Whether an error, or one it was raised from, says the disk is full: SQLite's SQLITE_FULL, PostgreSQL's
    disk_full (53100, psycopg.errors.DiskFull), or an OS write failing with ENOSPC/EDQUOT."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in _DISK_FULL_ERRNOS:
            return True
        if isinstance(e, sqlite3.Error) and (getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
                                             or "disk is full" in str(e)):
            return True
        if getattr(e, "sqlstate", None) == "53100":
            return True
    return False


def _hide_sql_parameters(exc: BaseException) -> None:
    """SQLAlchemy prints a failed statement's parameters (subject references, sealed templates) in its message;
    the log gets the statement and the traceback without them."""
    for e in _chain(exc):
        if isinstance(e, StatementError):
            e.hide_parameters = True


def unexpected_error(exc: BaseException, scope: Scope) -> FaceWardenError:
    """What the client is told about an exception no handler expected: the cause if it is a full disk, else
    nothing of the internals. The traceback goes to the server log with the route template, never the body."""
    route = getattr(scope.get("route"), "path", "<unmatched>")
    if storage_full(exc):
        log.error("disk full during %s %s: %s", scope.get("method"), route, type(exc).__name__)
        return Unavailable("The server's disk is full: nothing can be written or audited, so this request was "
                           "refused (reads of face data are audited, and refused too). Free space or ask the "
                           "operator; retry afterwards.", code="storage_full")
    _hide_sql_parameters(exc)
    log.error("unexpected error in %s %s", scope.get("method"), route, exc_info=exc)
    return InternalError("An unexpected error occurred; it was logged on the server. Retry, or report the time "
                         "of the request to the operator.", code="internal_error")


class ResponseWatch:
    """A middleware's `send`, remembering whether the response has started and with which status: once it has,
    an error can no longer be answered as JSON."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status = 0  # 0 until the response starts

    @property
    def started(self) -> bool:
        return self.status != 0

    async def __call__(self, msg: Message) -> None:
        if msg["type"] == "http.response.start":
            self.status = int(msg["status"])
        await self._send(msg)


async def send_error(send: Send, status: int, code: str, message: str, *,
                     extra: list[tuple[bytes, bytes]] | None = None) -> None:
    """An error answered by a middleware, in the JSON shape of every other error."""
    body = json.dumps(error_body(code, message)).encode()
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


class CatchAll:
    """Outermost user middleware: an exception that escapes the routes or the other middleware is
    answered as JSON here and not re-raised, so the server neither sends plain text nor drops the connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watched = ResponseWatch(send)
        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            error = unexpected_error(exc, scope)
            if watched.started:  # half a response went out: only closing the connection can tell the client
                raise
            await send_error(send, status_for(error), error.code, error.message,
                             extra=[(b"retry-after", b"30")] if error.kind is ErrorKind.UNAVAILABLE else None)
