"""Liveness: issue a challenge session, submit the captured clip. Answers are pass or fail only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from facewarden.api.deps import Caller, Service, read_clip, read_frame, read_photo, unthrottled_address
from facewarden.api.errors import ERROR_RESPONSES
from facewarden.api.limits import MAX_FRAMES_UPLOADED
from facewarden.api.schemas import CaptureChallenge, LivenessChallenge, LivenessDecision, SessionBody
from facewarden.errors import FaceWardenError, InvalidInput, RateLimited, TooLarge, Unauthorized

router = APIRouter(prefix="/v1/liveness", tags=["liveness"], responses=ERROR_RESPONSES)
# The capture page's two calls: no API key in the browser, only the session's own token.
capture_router = APIRouter(prefix="/v1/liveness/capture", tags=["liveness"], responses=ERROR_RESPONSES)


@router.post("/sessions", status_code=201, response_model=LivenessChallenge)
def start(who: Caller, service: Service, body: SessionBody) -> dict[str, Any]:
    """A single-use challenge for this subject (or, without one, for a comparison) on this device: 2-3 actions and
    a nonce, valid for minutes."""
    issued = service.liveness.start(who, body.subject, purpose=body.purpose)
    # the fragment (after #) never leaves the browser: the token stays out of server logs and referrers
    return issued | {"capture_url": f"/capture/#session={issued['session_id']}&token={issued['capture_token']}"}


def _frame_times(timestamps: str | None, frames: int) -> list[float]:
    if frames > MAX_FRAMES_UPLOADED:
        raise TooLarge(f"Send at most {MAX_FRAMES_UPLOADED} frames.", code="too_many_frames")
    try:
        times = [float(t) for t in (timestamps or "").split(",")]
    except ValueError:
        raise InvalidInput("`timestamps` must be numbers in seconds, comma-separated.",
                           code="invalid_timestamps") from None
    if len(times) != frames:
        raise InvalidInput("Send one timestamp per frame.", code="invalid_timestamps")
    return times


@router.post("/sessions/{session_id}", response_model=LivenessDecision)
async def submit(who: Caller, service: Service, session_id: str,
                 video: Annotated[UploadFile | None, File(description="mp4 or webm clip")] = None,
                 frames: Annotated[list[UploadFile] | None, File(description="JPEG/PNG frames")] = None,
                 timestamps: Annotated[str | None, Form(description="seconds, comma-separated")] = None,
                 reference: Annotated[UploadFile | None, File(description="for a comparison's session: the photo "
                                                                          "the live face must match")] = None,
                 ) -> dict[str, Any]:
    """The clip the client captured while the person did the actions. `{"passed": true|false}`."""
    clip = await read_clip(service, video) if video is not None else None
    stills = None
    if frames is not None:
        times = _frame_times(timestamps, len(frames))
        stills = [(await read_frame(service, f), t) for f, t in zip(frames, times, strict=True)]
    photo = await read_photo(service, reference) if reference is not None else None
    return await run_in_threadpool(lambda: service.liveness.submit(who, session_id, video=clip, frames=stills,
                                                                   reference=photo))


capture_header = APIKeyHeader(name="X-Capture-Token", scheme_name="CaptureToken", auto_error=False,
                              description="A liveness session's capture token (from POST /v1/liveness/sessions): "
                                          "opens that one session's challenge and one clip upload, nothing else.")


def capture_token(request: Request, token: Annotated[str | None, Depends(capture_header)]) -> str:
    """The session's capture token, under the same budgets as API keys: per address for failures (checked
    before the token is), and per address for requests."""
    if not token or not 20 <= len(token) <= 100:
        raise Unauthorized("Send the session's capture token in X-Capture-Token (the capture link carries it).")
    limits = request.app.state.rate_limits
    client = unthrottled_address(request)
    if (wait := limits.per_principal.check(f"capture:{client}")) > 0:
        raise RateLimited(f"Too many requests from your address; retry in {wait:.1f} s.")
    request.state.principal = "capture-page"
    return token


CaptureToken = Annotated[str, Depends(capture_token)]


def _count_failure(request: Request, exc: FaceWardenError) -> None:
    if exc.code == "liveness_session_not_found":  # a wrong token or session id: a guess, on the failure budget
        request.app.state.rate_limits.failed_auth.check(f"ip:{request.client.host if request.client else 'unknown'}")


@capture_router.get("/{session_id}", response_model=CaptureChallenge)
def capture_challenge(request: Request, service: Service, session_id: str, token: CaptureToken) -> dict[str, Any]:
    """The challenge the capture page shows (actions, instructions, colours), for the holder of the session's
    capture token (`X-Capture-Token`)."""
    try:
        return service.liveness.capture_challenge(session_id, token)
    except FaceWardenError as exc:
        _count_failure(request, exc)
        raise


@capture_router.post("/{session_id}", response_model=LivenessDecision)
async def capture_submit(request: Request, service: Service, session_id: str, token: CaptureToken,
                         video: Annotated[UploadFile, File(description="the recorded clip, webm or mp4")]
                         ) -> dict[str, Any]:
    """The clip the capture page recorded; decided as the session's device would have sent it. Pass or fail."""
    clip = await read_clip(service, video)
    try:
        return await run_in_threadpool(lambda: service.liveness.submit_capture(session_id, token, clip))
    except FaceWardenError as exc:
        _count_failure(request, exc)
        raise
