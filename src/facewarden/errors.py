"""Errors that carry a stable code, an HTTP status and a message that says what to do."""

from __future__ import annotations


class FaceWardenError(Exception):
    """Base error. `code` is stable for clients; `message` explains what went wrong and what to do."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class InvalidInput(FaceWardenError):
    status = 400
    code = "invalid_input"


class NotFound(FaceWardenError):
    status = 404
    code = "not_found"


class Conflict(FaceWardenError):
    status = 409
    code = "conflict"


class Forbidden(FaceWardenError):
    status = 403
    code = "forbidden"


class Unauthorized(FaceWardenError):
    status = 401
    code = "unauthorized"


class Locked(FaceWardenError):
    status = 423
    code = "verification_locked"


class IntegrityFailure(FaceWardenError):
    """Stored ciphertext failed authentication: it was altered, moved or its key is gone."""

    status = 409
    code = "template_integrity"


class KeyUnavailable(FaceWardenError):
    status = 410
    code = "key_destroyed"
