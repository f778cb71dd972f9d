"""The one place where an error kind becomes an HTTP status, and the JSON shape every error has."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from facewarden.api.schemas import ErrorResponse
from facewarden.errors import ErrorKind, FaceWardenError

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


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FaceWardenError, _facewarden_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
