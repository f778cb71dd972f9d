"""Law-enforcement endpoints: written requests, review, searches under a grant, emergency searches, double
confirmation of leads. Each one calls one service use case, where the rules are enforced."""


from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from facewarden.api.limits import read_limited
from facewarden.governance import policy
from facewarden.service import Actor, FaceService


class ReviewBody(BaseModel):
    approve: bool
    reason: str = Field(default="", max_length=20_000)  # required: the service refuses a decision without one


def le_router(service: FaceService, caller: Any, errors: dict[int | str, dict[str, Any]]) -> APIRouter:
    router = APIRouter(prefix="/v1/le", tags=["law enforcement"], responses=errors)
    Caller = Annotated[Actor, caller]
    limit = service.settings.max_upload_bytes

    async def read_probe(upload: UploadFile) -> bytes:
        return await read_limited(upload, limit)

    # Text fields default to empty so that a missing one is refused (and audited) by the service with the
    # name of every missing field, as `request_incomplete`.
    @router.post("/requests", status_code=201)
    async def file_request(
        who: Caller,
        probe: Annotated[UploadFile, File(description="The probe photo, exactly one face")],
        administering_tenant: Annotated[str, Form(max_length=64, description="The agency whose database")] = "",
        case_number: Annotated[str, Form(max_length=100)] = "",
        offence: Annotated[str, Form(max_length=200)] = "",
        narrative: Annotated[str, Form(max_length=20_000, description="Why this search, in this case")] = "",
        authorised_use: Annotated[str, Form(description=", ".join(sorted(policy.AUTHORISED_USES)))] = "",
        basis_kind: Annotated[str, Form(description="court-order or emergency")] = "",
        court_order_ref: Annotated[str | None, Form(max_length=200)] = None,
        emergency_facts: Annotated[str | None, Form(max_length=20_000)] = None,
        max_candidates: Annotated[int, Form(description="At most the database's policy allows")] = 5,
        emergency_search_id: Annotated[str | None, Form(max_length=36,
                                                        description="The emergency search it follows")] = None,
    ) -> dict[str, Any]:
        """File a written request with the agency that administers a face database; a reviewer there decides."""
        photo = await read_probe(probe)
        fields = policy.RequestFields(case_number, offence, narrative, authorised_use, basis_kind, court_order_ref,
                                      emergency_facts, max_candidates)
        return await run_in_threadpool(lambda: service.file_request(
            who, administering_tenant=administering_tenant, fields=fields, probe=photo,
            emergency_search_id=emergency_search_id))

    @router.get("/requests")
    def list_requests(who: Caller) -> dict[str, Any]:
        """Reviewers: the requests to your agency. Investigators: your agency's requests. Never the probe."""
        return {"requests": service.list_requests(who)}

    @router.post("/requests/{request_id}/review")
    def review(who: Caller, request_id: str, body: ReviewBody) -> dict[str, Any]:
        """Approve (a grant for this case only) or deny (the probe is destroyed), with the reason."""
        return service.review_request(who, request_id, approve=body.approve, reason=body.reason)

    @router.post("/requests/{request_id}/search")
    async def search(who: Caller, request_id: str) -> dict[str, Any]:
        """Run one search under the request's grant. The results are investigative leads, not identifications."""
        return await run_in_threadpool(service.search, who, request_id)

    @router.post("/emergency-searches")
    async def emergency_search(
        who: Caller,
        probe: Annotated[UploadFile, File(description="The probe photo, exactly one face")],
        administering_tenant: Annotated[str, Form(max_length=64)] = "",
        case_number: Annotated[str, Form(max_length=100)] = "",
        authorised_use: Annotated[str, Form()] = "",
        emergency_facts: Annotated[str, Form(max_length=20_000)] = "",
        max_candidates: Annotated[int, Form()] = 5,
    ) -> dict[str, Any]:
        """Search at once where the policy allows the use; a written request must follow within 48 hours."""
        photo = await read_probe(probe)
        return await run_in_threadpool(lambda: service.emergency_search(
            who, administering_tenant=administering_tenant, case_number=case_number, authorised_use=authorised_use,
            emergency_facts=emergency_facts, probe=photo, max_candidates=max_candidates))

    @router.post("/candidates/{candidate_id}/confirm")
    def confirm(who: Caller, candidate_id: str) -> dict[str, Any]:
        """A reviewer of the administering agency confirms a lead; it takes two different reviewers."""
        return service.confirm_candidate(who, candidate_id)

    @router.get("/searches/{search_id}")
    def get_search(who: Caller, search_id: str) -> dict[str, Any]:
        return service.get_search(who, search_id)

    return router
