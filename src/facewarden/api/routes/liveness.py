"""Liveness: issue a challenge session, submit the captured clip. Answers are pass or fail only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from facewarden.api.deps import Caller, Service, read_clip, read_frame, read_photo
from facewarden.api.errors import ERROR_RESPONSES
from facewarden.api.limits import MAX_FRAMES_UPLOADED
from facewarden.api.schemas import LivenessChallenge, LivenessDecision, SessionBody
from facewarden.errors import InvalidInput, TooLarge

router = APIRouter(prefix="/v1/liveness", tags=["liveness"], responses=ERROR_RESPONSES)


@router.post("/sessions", status_code=201, response_model=LivenessChallenge)
def start(who: Caller, service: Service, body: SessionBody) -> dict[str, Any]:
    """A single-use challenge for this subject (or, without one, for a comparison) on this device: 2-3 actions and
    a nonce, valid for minutes."""
    return service.liveness.start(who, body.subject, purpose=body.purpose)


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
