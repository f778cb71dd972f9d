"""Police searches (/v1/le): written requests, review, searches under a grant, emergency searches, double
confirmation of leads. Each one calls one use case, where the rules are enforced."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from facewarden.api.deps import Caller, Service, read_photo
from facewarden.api.errors import ERROR_RESPONSES
from facewarden.api.schemas import (
    Confirmation,
    EmergencyLeads,
    FiledRequest,
    PoliceRequestList,
    Review,
    ReviewBody,
    SearchLeads,
    SearchRecord,
)
from facewarden.governance import policy

router = APIRouter(prefix="/v1/le", tags=["law enforcement"], responses=ERROR_RESPONSES)


# Text fields default to empty so that a missing one is refused (and audited) by the service with the name of
# every missing field, as `request_incomplete`.
@router.post("/requests", status_code=201, response_model=FiledRequest)
async def file_request(
    who: Caller,
    service: Service,
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
    photo = await read_photo(service, probe)
    fields = policy.RequestFields(case_number, offence, narrative, authorised_use, basis_kind, court_order_ref,
                                  emergency_facts, max_candidates)
    return await run_in_threadpool(lambda: service.police.file_request(
        who, administering_tenant=administering_tenant, fields=fields, probe=photo,
        emergency_search_id=emergency_search_id))


@router.get("/requests", response_model=PoliceRequestList)
def list_requests(who: Caller, service: Service) -> dict[str, Any]:
    """Reviewers: the requests to your agency. Investigators: your agency's requests. Never the probe."""
    return {"requests": service.police.list_requests(who)}


@router.post("/requests/{request_id}/review", response_model=Review)
def review(who: Caller, service: Service, request_id: str, body: ReviewBody) -> dict[str, Any]:
    """Approve (a grant for this case only) or deny (the probe is destroyed), with the reason."""
    return service.police.review_request(who, request_id, approve=body.approve, reason=body.reason)


@router.post("/requests/{request_id}/search", response_model=SearchLeads)
async def search(who: Caller, service: Service, request_id: str) -> dict[str, Any]:
    """Run one search under the request's grant. The results are investigative leads, not identifications."""
    return await run_in_threadpool(service.police.search, who, request_id)


@router.post("/emergency-searches", response_model=EmergencyLeads)
async def emergency_search(
    who: Caller,
    service: Service,
    probe: Annotated[UploadFile, File(description="The probe photo, exactly one face")],
    administering_tenant: Annotated[str, Form(max_length=64)] = "",
    case_number: Annotated[str, Form(max_length=100)] = "",
    authorised_use: Annotated[str, Form()] = "",
    emergency_facts: Annotated[str, Form(max_length=20_000)] = "",
    max_candidates: Annotated[int, Form()] = 5,
) -> dict[str, Any]:
    """Search at once where the policy allows the use; a written request must follow within 48 hours."""
    photo = await read_photo(service, probe)
    return await run_in_threadpool(lambda: service.police.emergency_search(
        who, administering_tenant=administering_tenant, case_number=case_number, authorised_use=authorised_use,
        emergency_facts=emergency_facts, probe=photo, max_candidates=max_candidates))


@router.post("/candidates/{candidate_id}/confirm", response_model=Confirmation)
def confirm(who: Caller, service: Service, candidate_id: str) -> dict[str, Any]:
    """A reviewer of the administering agency confirms a lead; it takes two different reviewers."""
    return service.police.confirm_candidate(who, candidate_id)


# exclude_unset: `follow_up_due` is present for emergency searches only.
@router.get("/searches/{search_id}", response_model=SearchRecord, response_model_exclude_unset=True)
def get_search(who: Caller, service: Service, search_id: str) -> dict[str, Any]:
    return service.police.get_search(who, search_id)
