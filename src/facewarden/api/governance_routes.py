"""Governance endpoints: people, purposes, consent withdrawal, the subject's own record, dual control,
retention. Each one calls one service use case, where the policy is enforced."""


from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from facewarden.governance import policy, reports
from facewarden.service import Actor, FaceService


class PersonBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    roles: list[str] = Field(min_length=1, max_length=6)


class PurposeBody(BaseModel):
    description: str = Field(min_length=1, max_length=2000)
    legal_bases: list[str] = Field(min_length=1, max_length=5)
    retention_days: int
    subject_category: str = Field(min_length=1, max_length=200)
    law_enforcement_searchable: bool = False
    liveness_required: bool = False
    ends_at: datetime | None = None


class LePolicyBody(BaseModel):
    allowed_uses: list[str] = Field(min_length=1, max_length=4)
    allow_own_agency_review: bool = False
    searches_per_grant: int = 3
    grant_days: int = 14
    max_candidates: int = 10


class EraseBatchBody(BaseModel):
    subjects: list[str] = Field(min_length=1, max_length=10_000)


class RejectBody(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


def _accepted(result: dict[str, Any]) -> Any:
    """A proposal waiting for a second administrator is 202 Accepted, not done."""
    return JSONResponse(result, status_code=202) if result.get("status") == "pending" else result


def governance_router(service: FaceService, caller: Any, errors: dict[int | str, dict[str, Any]]) -> APIRouter:
    router = APIRouter(prefix="/v1", responses=errors)
    Caller = Annotated[Actor, caller]

    @router.post("/persons", status_code=201, tags=["people"], responses={202: {"description": "Waiting"}})
    def create_person(who: Caller, body: PersonBody) -> Any:
        """A named person in your tenant; issue their API keys with `person_id`. A person with a deciding role
        (admin, reviewer, investigator) needs a second administrator's approval."""
        return _accepted(service.add_person(who, name=body.name, person_roles=set(body.roles)))

    @router.get("/purposes", tags=["purposes"])
    def list_purposes(who: Caller) -> dict[str, Any]:
        return {"purposes": service.list_purposes(who)}

    @router.put("/purposes/{name}", tags=["purposes"], responses={202: {"description": "Waiting for approval"}})
    def define_purpose(who: Caller, name: str, body: PurposeBody) -> Any:
        """A new purpose is defined at once; changing an existing one needs a second administrator."""
        spec = policy.PurposeSpec(name, body.description, frozenset(body.legal_bases), body.retention_days,
                                  body.subject_category, body.law_enforcement_searchable, body.liveness_required)
        return _accepted(service.define_purpose(who, spec, body.ends_at))

    @router.put("/le/policy", tags=["law enforcement"], responses={202: {"description": "Waiting for approval"}})
    def set_le_policy(who: Caller, body: LePolicyBody) -> Any:
        """The administering agency's rules for police searches of its database."""
        return _accepted(service.set_le_policy(
            who, allowed_uses=set(body.allowed_uses), allow_own_agency_review=body.allow_own_agency_review,
            searches_per_grant=body.searches_per_grant, grant_days=body.grant_days,
            max_candidates=body.max_candidates))

    @router.post("/subjects/{subject}/withdraw-consent", tags=["rights"])
    def withdraw_consent(who: Caller, subject: str) -> dict[str, Any]:
        """Matching stops at once and the templates the consent covered are destroyed."""
        return service.withdraw_consent(who, subject)

    @router.post("/subjects/erase-batch", tags=["rights"], responses={202: {"description": "Waiting for approval"}})
    def erase_batch(who: Caller, body: EraseBatchBody) -> Any:
        """Erase several subjects; above the configured threshold a second administrator must approve."""
        return _accepted(service.erase_many(who, body.subjects))

    @router.get("/me", tags=["rights"])
    def my_record(who: Caller) -> dict[str, Any]:
        """For the enrolled person, with their subject credential: everything held on them."""
        return service.export(who, None)

    @router.post("/me/withdraw-consent", tags=["rights"])
    def my_withdrawal(who: Caller) -> dict[str, Any]:
        return service.withdraw_consent(who, None)

    @router.delete("/me", tags=["rights"])
    def my_erasure(who: Caller) -> dict[str, Any]:
        return service.erase(who, None)

    @router.get("/approvals", tags=["dual control"])
    def pending(who: Caller) -> dict[str, Any]:
        return {"pending": service.list_pending(who)}

    @router.post("/approvals/{action_id}/approve", tags=["dual control"])
    def approve(who: Caller, action_id: str) -> dict[str, Any]:
        """A second administrator, not the proposer, approves; the action runs now."""
        return service.approve_action(who, action_id)

    @router.post("/approvals/{action_id}/reject", tags=["dual control"])
    def reject(who: Caller, action_id: str, body: RejectBody) -> dict[str, Any]:
        return service.reject_action(who, action_id, body.reason)

    page_headers = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}

    @router.get("/reports/transparency", tags=["reports"])
    def transparency(who: Caller, since: datetime, until: datetime,
                     fmt: Annotated[Literal["json", "csv", "html"], Query(alias="format")] = "json") -> Any:
        """Counts per requesting agency for [since, until) against your tenant's databases; no personal data."""
        report = service.transparency_report(who, since=since, until=until)
        if fmt == "csv":
            return PlainTextResponse(reports.report_csv(report), media_type="text/csv; charset=utf-8",
                                     headers={"Content-Disposition": 'attachment; filename="transparency.csv"'})
        if fmt == "html":
            return HTMLResponse(reports.report_html(report), headers=page_headers)
        return report

    @router.get("/reports/processing-record", tags=["reports"])
    def processing_record(who: Caller,
                          fmt: Annotated[Literal["json", "html"], Query(alias="format")] = "json") -> Any:
        """The GDPR Art. 30 record of processing activities, generated from the live configuration."""
        record = service.processing_record(who)
        if fmt == "html":
            return HTMLResponse(reports.processing_record_html(record), headers=page_headers)
        return record

    @router.post("/retention/run", tags=["retention"])
    def run_retention(who: Caller) -> dict[str, Any]:
        """Destroy what has passed its consent term, purpose or retention period (also runs on a schedule)."""
        return service.run_retention(who)

    return router
