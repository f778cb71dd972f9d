"""Governance: purposes, the police-search policy of an administering agency, dual control, retention. Each one
calls one use case, where the policy is enforced."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from facewarden.api.deps import Caller, Service
from facewarden.api.errors import ERROR_RESPONSES
from facewarden.api.responses import WAITING, accepted_if_pending
from facewarden.api.schemas import (
    Approved,
    CalibrationList,
    LePolicyApplied,
    LePolicyBody,
    PendingList,
    PurposeApplied,
    PurposeBody,
    PurposeList,
    RejectBody,
    Rejected,
    RetentionRun,
)
from facewarden.governance import policy

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


@router.get("/purposes", tags=["purposes"], response_model=PurposeList)
def list_purposes(who: Caller, service: Service) -> dict[str, Any]:
    return {"purposes": service.governance.list_purposes(who)}


@router.get("/calibrations", tags=["purposes"], response_model=CalibrationList)
def list_calibrations(who: Caller, service: Service) -> dict[str, Any]:
    """The calibration each target FMR in use is decided at now, for the current face model (administrators and
    auditors): the threshold, its interval and the evidence it came from."""
    return {"calibrations": service.calibration.latest(who)}


@router.put("/purposes/{name}", tags=["purposes"], response_model=PurposeApplied, responses=WAITING)
def define_purpose(who: Caller, service: Service, name: str, body: PurposeBody) -> dict[str, Any] | JSONResponse:
    """A new purpose is defined at once; changing an existing one needs a second administrator."""
    spec = policy.PurposeSpec(name, body.description, frozenset(body.legal_bases), body.retention_days,
                              body.subject_category, body.law_enforcement_searchable, body.liveness_required,
                              body.target_fmr, body.light_challenge)
    return accepted_if_pending(service.governance.define_purpose(who, spec, body.ends_at))


@router.put("/le/policy", tags=["law enforcement"], response_model=LePolicyApplied, responses=WAITING)
def set_le_policy(who: Caller, service: Service, body: LePolicyBody) -> dict[str, Any] | JSONResponse:
    """The administering agency's rules for police searches of its database."""
    return accepted_if_pending(service.governance.set_le_policy(
        who, allowed_uses=set(body.allowed_uses), allow_own_agency_review=body.allow_own_agency_review,
        searches_per_grant=body.searches_per_grant, grant_days=body.grant_days, max_candidates=body.max_candidates))


@router.get("/approvals", tags=["dual control"], response_model=PendingList)
def pending(who: Caller, service: Service) -> dict[str, Any]:
    return {"pending": service.approvals.list_pending(who)}


@router.post("/approvals/{action_id}/approve", tags=["dual control"], response_model=Approved)
def approve(who: Caller, service: Service, action_id: str) -> dict[str, Any]:
    """A second administrator, not the proposer, approves; the action runs now."""
    return service.approvals.approve(who, action_id)


@router.post("/approvals/{action_id}/reject", tags=["dual control"], response_model=Rejected)
def reject(who: Caller, service: Service, action_id: str, body: RejectBody) -> dict[str, Any]:
    return service.approvals.reject(who, action_id, body.reason)


@router.post("/retention/run", tags=["retention"], response_model=RetentionRun)
def run_retention(who: Caller, service: Service) -> dict[str, Any]:
    """Destroy what has passed its consent term, purpose or retention period (also runs on a schedule)."""
    return service.retention.run(who)
