"""Liveness endpoints: issue a challenge session, submit the captured clip. Answers are pass or fail only."""


from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from facewarden.api.limits import read_limited
from facewarden.errors import InvalidInput
from facewarden.service import Actor, FaceService

MAX_FRAMES_UPLOADED = 60


class SessionBody(BaseModel):
    subject: str = Field(min_length=1, max_length=200)
    purpose: str = Field(min_length=1, max_length=64)


def liveness_router(service: FaceService, caller: Any, errors: dict[int | str, dict[str, Any]]) -> APIRouter:
    router = APIRouter(prefix="/v1/liveness", tags=["liveness"], responses=errors)
    Caller = Annotated[Actor, caller]
    settings = service.settings

    async def read(upload: UploadFile, limit: int) -> bytes:
        return await read_limited(upload, limit, code="video_too_large")

    @router.post("/sessions", status_code=201)
    def start(who: Caller, body: SessionBody) -> dict[str, Any]:
        """A single-use challenge for this subject on this device: 2-3 actions and a nonce, valid for minutes."""
        return service.start_liveness(who, body.subject, purpose=body.purpose)

    @router.post("/sessions/{session_id}")
    async def submit(who: Caller, session_id: str,
                     video: Annotated[UploadFile | None, File(description="mp4 or webm clip")] = None,
                     frames: Annotated[list[UploadFile] | None, File(description="JPEG/PNG frames")] = None,
                     timestamps: Annotated[str | None, Form(description="seconds, comma-separated")] = None,
                     ) -> dict[str, Any]:
        """The clip the client captured while the person did the actions. `{"passed": true|false}`."""
        clip = await read(video, settings.liveness_max_video_bytes) if video is not None else None
        stills = None
        if frames is not None:
            if len(frames) > MAX_FRAMES_UPLOADED:
                raise InvalidInput(f"Send at most {MAX_FRAMES_UPLOADED} frames.", code="too_many_frames")
            try:
                times = [float(t) for t in (timestamps or "").split(",")]
            except ValueError:
                raise InvalidInput("`timestamps` must be numbers in seconds, comma-separated.",
                                   code="invalid_timestamps") from None
            if len(times) != len(frames):
                raise InvalidInput("Send one timestamp per frame.", code="invalid_timestamps")
            stills = [(await read(f, settings.max_upload_bytes), t) for f, t in zip(frames, times, strict=True)]
        return await run_in_threadpool(lambda: service.submit_liveness(who, session_id, video=clip, frames=stills))

    return router
