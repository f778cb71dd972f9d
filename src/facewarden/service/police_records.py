"""What police-search records look like to their parties, and the limits on a written request's fields."""

from __future__ import annotations

from typing import Any

from facewarden.errors import InvalidInput
from facewarden.governance import policy
from facewarden.service.common import iso
from facewarden.store import SearchGrant, SearchRequest

MARKING = "INVESTIGATIVE LEAD - NOT A POSITIVE IDENTIFICATION"
MAX_CASE_NUMBER = 64  # the audit log's case_id column
MAX_SHORT_FIELD = 200
MAX_TEXT_FIELD = 20_000


def case_id(case_number: str | None) -> str | None:
    """The case number as it goes into the audit log, or None when it is not a usable one."""
    case = (case_number or "").strip()
    return case if 0 < len(case) <= MAX_CASE_NUMBER and case.isprintable() else None


def fields_of(req: SearchRequest) -> policy.RequestFields:
    return policy.RequestFields(req.case_number, req.offence, req.narrative, req.authorised_use, req.basis_kind,
                                req.court_order_ref, req.emergency_facts, req.max_candidates)


def check_lengths(fields: policy.RequestFields) -> None:
    if fields.case_number and case_id(fields.case_number) is None:
        raise InvalidInput(f"case_number must be 1-{MAX_CASE_NUMBER} printable characters.", code="invalid_request")
    for name in ("offence", "court_order_ref"):
        if len(getattr(fields, name) or "") > MAX_SHORT_FIELD:
            raise InvalidInput(f"{name} is at most {MAX_SHORT_FIELD} characters.", code="invalid_request")
    for name in ("narrative", "emergency_facts"):
        if len(getattr(fields, name) or "") > MAX_TEXT_FIELD:
            raise InvalidInput(f"{name} is at most {MAX_TEXT_FIELD} characters.", code="invalid_request")


def request_json(req: SearchRequest, grant: SearchGrant | None) -> dict[str, Any]:
    """A request as its parties see it; never the probe."""
    return {
        "request_id": req.id, "administering_tenant": req.administering_tenant,
        "requesting_tenant": req.requesting_tenant, "requested_by": req.requested_by,
        "case_number": req.case_number, "offence": req.offence, "narrative": req.narrative,
        "authorised_use": req.authorised_use, "basis_kind": req.basis_kind, "court_order_ref": req.court_order_ref,
        "emergency_facts": req.emergency_facts, "max_candidates": req.max_candidates,
        "emergency_search_id": req.emergency_search_id, "status": req.status, "decided_by": req.decided_by,
        "decision_reason": req.decision_reason, "decided_at": iso(req.decided_at), "created_at": iso(req.created_at),
        "grant": grant_json(grant),
    }


def grant_json(grant: SearchGrant | None) -> dict[str, Any] | None:
    if grant is None:
        return None
    return {"grant_id": grant.id, "searches_allowed": grant.searches_allowed,
            "searches_used": grant.searches_used or 0,  # a grant not yet flushed has no default in yet
            "expires_at": iso(grant.expires_at)}
