"""What the routes depend on: the service, the authenticated caller (rate-limited), bounded upload reading.

Everything lives on `app.state` (set by `create_app`), not in module globals, so two apps in one process (the
tests make several) keep their own service and their own rate-limit buckets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, UploadFile

from facewarden.api.limits import RateLimiter, read_limited
from facewarden.config import Settings
from facewarden.errors import FaceWardenError, RateLimited
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


def current_actor(request: Request, service: Service) -> Actor:
    """The caller named by the `Authorization: Bearer ...` header. Failed attempts are audited (until the
    client's address is throttled, so the log cannot be flooded); every caller has a request budget."""
    limits: RateLimits = request.app.state.rate_limits
    header = request.headers.get("authorization", "")
    secret = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
    client = request.client.host if request.client else "unknown"
    try:
        who = service.accounts.authenticate(secret)
    except FaceWardenError as exc:
        if (wait := limits.failed_auth.check(f"ip:{client}")) > 0:
            raise RateLimited(f"Too many failed authentications; retry in {wait:.0f} s.") from None
        service.accounts.record_login_failure(client, exc.code)
        raise
    if (wait := limits.per_principal.check(who.principal)) > 0:
        raise RateLimited(f"Rate limit of {service.settings.rate_limit_per_minute} requests/minute exceeded; "
                          f"retry in {wait:.1f} s.")
    return who


Caller = Annotated[Actor, Depends(current_actor)]


async def read_photo(service: FaceService, upload: UploadFile) -> bytes:
    """A photo or probe, in memory up to the upload limit; beyond it, `image_too_large`."""
    return await read_limited(upload, service.settings.max_upload_bytes)


async def read_clip(service: FaceService, upload: UploadFile) -> bytes:
    """A liveness video, up to its own limit; beyond it, `video_too_large`."""
    return await read_limited(upload, service.settings.liveness_max_video_bytes, code="video_too_large")


async def read_frame(service: FaceService, upload: UploadFile) -> bytes:
    """One liveness frame: a photo's size limit, reported as part of the clip (`video_too_large`)."""
    return await read_limited(upload, service.settings.max_upload_bytes, code="video_too_large")
