"""Matching: verification (1:1), unlocking after a lockout, identification (1:N)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from facewarden.api.deps import Caller, Service, read_photo
from facewarden.api.errors import ERROR_RESPONSES
from facewarden.api.schemas import Identification, PasscodeBody, Unlocked, Verification

router = APIRouter(prefix="/v1", tags=["matching"], responses=ERROR_RESPONSES)


# exclude_unset: the score keys are absent, not null, for callers the service withholds them from.
@router.post("/subjects/{subject}/verify", response_model=Verification, response_model_exclude_unset=True)
async def verify(who: Caller, service: Service, subject: str, image: Annotated[UploadFile, File()],
                 purpose: Annotated[str, Form(description="Why you verify; must be the template's purpose",
                                              max_length=64)],
                 liveness_session: Annotated[str | None, Form(description="A passed liveness session, "
                                                              "where the purpose requires one")] = None,
                 ) -> dict[str, Any]:
    photo = await read_photo(service, image)
    result = await run_in_threadpool(lambda: service.matching.verify(who, subject, photo, purpose=purpose,
                                                                     liveness_session=liveness_session))
    body: dict[str, Any] = {"subject": subject, "match": result.match,
                            "attempts_left": result.attempts_left, "locked": result.locked}
    if result.box is not None:  # which face of the photo was used (coordinates in the caller's own photo)
        body["face_box"] = list(result.box)
    if result.distance is not None:  # the service withholds scores from devices and apps
        body.update(distance=round(result.distance, 4), threshold=result.threshold,
                    threshold_source=result.threshold_source)
    if result.quality is not None:  # operators only, like the distance
        body["quality"] = round(result.quality, 4)
    return body


@router.post("/subjects/{subject}/unlock", response_model=Unlocked)
def unlock(who: Caller, service: Service, subject: str, body: PasscodeBody) -> dict[str, Any]:
    service.matching.unlock(who, subject, body.passcode)
    return {"subject": subject, "locked": False}


@router.post("/identify", response_model=Identification)
async def identify(who: Caller, service: Service, image: Annotated[UploadFile, File()],
                   purpose: Annotated[str, Form(description="Only templates enrolled for it are searched",
                                                max_length=64)],
                   max_candidates: Annotated[int, Form()] = 5,
                   all_faces: Annotated[bool, Form()] = False) -> dict[str, Any]:
    photo = await read_photo(service, image)
    faces = await run_in_threadpool(lambda: service.matching.identify(
        who, photo, purpose=purpose, max_candidates=max_candidates, all_faces=all_faces))
    threshold = service.calibration.threshold(who, purpose)  # the purpose's operating point
    return {"threshold": threshold.value, "threshold_source": threshold.source, "faces": [
        {"box": list(f.box), "candidates": [
            {"subject": c.subject, "distance": round(c.distance, 4)} for c in f.candidates]}
        for f in faces]}
