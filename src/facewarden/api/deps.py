"""What the routes depend on: the service, the authenticated caller (rate-limited), bounded upload reading.

Everything lives on `app.state` (set by `create_app`), not in module globals, so two apps in one process (the
tests make several) keep their own service and their own rate-limit buckets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, UploadFile
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from facewarden.api.limits import RateLimiter, read_limited
from facewarden.config import Settings
from facewarden.errors import FaceWardenError, Forbidden, RateLimited
from facewarden.service import Actor, FaceService

FAILED_AUTH_PER_MINUTE = 30  # per client address: slows down guessing keys without locking anyone out


@dataclass(frozen=True)
class RateLimits:
    per_principal: RateLimiter  # every authenticated request, per API key, person or subject credential
    failed_auth: RateLimiter  # failed authentications, per client address

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        return cls(RateLimiter(settings.rate_limit_per_minute), RateLimiter(FAILED_AUTH_PER_MINUTE))


def get_service(request: Request) -> FaceService:
    service: FaceService = request.app.state.service
    return service


Service = Annotated[FaceService, Depends(get_service)]


# Declares the bearer scheme in the OpenAPI (the Authorize button of /docs); auto_error=False keeps our own
# `unauthorized` answer for a missing or malformed header instead of FastAPI's.
bearer = HTTPBearer(auto_error=False, description="An API key (fw_...) or, on /v1/me only, a subject "
                    "credential (fws_...).")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def unthrottled_address(request: Request) -> str:
    """The client's address, refused while it is over its failed-authentication budget (before any credential of
    its is looked at)."""
    client = request.client.host if request.client else "unknown"
    if (wait := request.app.state.rate_limits.failed_auth.wait(f"ip:{client}")) > 0:
        raise RateLimited(f"Too many failed authentications from your address; retry in {wait:.0f} s.")
    return client


def authenticated(request: Request, service: Service, credentials: Credentials) -> Actor:
    """Whoever the bearer token names, API key or subject credential. A client address over its failed-login
    budget is refused before its token is even looked at (so guessing is not evaluated, nor audited, while
    throttled); each failure takes from that budget and is audited; every caller has a request budget."""
    limits: RateLimits = request.app.state.rate_limits
    client = unthrottled_address(request)
    try:
        who = service.accounts.authenticate(credentials.credentials if credentials else None)
    except FaceWardenError as exc:
        limits.failed_auth.check(f"ip:{client}")
        service.accounts.record_login_failure(client, exc.code)
        raise
    if (wait := limits.per_principal.check(who.principal)) > 0:
        raise RateLimited(f"Rate limit of {service.settings.rate_limit_per_minute} requests/minute exceeded; "
                          f"retry in {wait:.1f} s.")
    request.state.principal = who.principal  # an internal id, for the access log
    return who


def current_actor(who: Annotated[Actor, Depends(authenticated)]) -> Actor:
    """An API caller (key or person). A subject credential is refused here: the operator endpoints name a
    subject in their path, and the person's own credential must never act on whatever name it is given."""
    if who.subject_id is not None:
        raise Forbidden("A subject credential reaches only your own record: GET /v1/me, "
                        "POST /v1/me/withdraw-consent and DELETE /v1/me.", code="self_service_only")
    return who


Caller = Annotated[Actor, Depends(current_actor)]
SelfCaller = Annotated[Actor, Depends(authenticated)]  # /v1/me: the subject credential's own endpoints


async def read_photo(service: FaceService, upload: UploadFile) -> bytes:
    """A photo or probe, in memory up to the upload limit; beyond it, `image_too_large`."""
    return await read_limited(upload, service.settings.max_upload_bytes)


async def read_clip(service: FaceService, upload: UploadFile) -> bytes:
    """A liveness video, up to its own limit; beyond it, `video_too_large`."""
    return await read_limited(upload, service.settings.liveness_max_video_bytes, code="video_too_large")


async def read_frame(service: FaceService, upload: UploadFile) -> bytes:
    """One liveness frame: a photo's size limit, reported as part of the clip (`video_too_large`)."""
    return await read_limited(upload, service.settings.max_upload_bytes, code="video_too_large")
