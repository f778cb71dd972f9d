"""Comparing two photos, storing nothing (a selfie against an identity document's photo, say)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from facewarden.api.deps import Caller, Service, read_photo
from facewarden.api.errors import ERROR_RESPONSES
from facewarden.api.schemas.compare import Comparison

router = APIRouter(prefix="/v1", tags=["matching"], responses=ERROR_RESPONSES)


# exclude_unset: the score keys are absent, not null, for callers the service withholds them from.
@router.post("/compare", response_model=Comparison, response_model_exclude_unset=True)
async def compare(who: Caller, service: Service, a: Annotated[UploadFile, File(description="The first photo "
                                                                                "(the live capture)")],
                  b: Annotated[UploadFile, File(description="The second photo (a document's, say)")],
                  purpose: Annotated[str, Form(description="Why you compare; a purpose of your tenant",
                                               max_length=64)],
                  legal_basis: Annotated[str, Form(description="consent, contract, law, vital-interest or "
                                                               "public-task", max_length=32)],
                  liveness_session: Annotated[str | None, Form(description="A passed liveness session, where "
                                                               "the purpose requires one")] = None,
                  ) -> dict[str, Any]:
    photo_a = await read_photo(service, a)
    photo_b = await read_photo(service, b)
    result = await run_in_threadpool(lambda: service.comparing.compare(
        who, photo_a, photo_b, purpose=purpose, legal_basis=legal_basis, liveness_session=liveness_session))
    return result.as_dict()
