"""Police searches: written requests, review, grants, searches, emergencies, double confirmation."""

from __future__ import annotations

from pydantic import BaseModel, Field

from facewarden.api.schemas.common import ResponseModel
from facewarden.governance import policy


class ReviewBody(BaseModel):
    approve: bool
    reason: str = Field(default="", max_length=20_000)  # required: the service refuses a decision without one


class Grant(ResponseModel):
    grant_id: str
    searches_allowed: int
    searches_used: int
    expires_at: str | None


class FiledRequest(ResponseModel):
    request_id: str
    status: str  # "pending"
    case_number: str
    administering_tenant: str
    authorised_use: str
    basis_kind: str
    max_candidates: int
    emergency_search_id: str | None
    message: str


class PoliceRequest(ResponseModel):
    """A request as its parties see it; never the probe."""

    request_id: str
    administering_tenant: str
    requesting_tenant: str
    requested_by: str
    case_number: str
    offence: str
    narrative: str = Field(description="Why this search, in this case")
    authorised_use: str = Field(description=", ".join(sorted(policy.AUTHORISED_USES)))
    basis_kind: str = Field(description="court-order or emergency")
    court_order_ref: str | None
    emergency_facts: str | None
    max_candidates: int
    emergency_search_id: str | None = Field(description="The emergency search it follows up")
    status: str = Field(description="pending, approved, denied or expired")
    decided_by: str | None
    decision_reason: str | None
    decided_at: str | None
    created_at: str | None
    grant: Grant | None


class PoliceRequestList(ResponseModel):
    requests: list[PoliceRequest]


class Review(ResponseModel):
    request_id: str
    case_number: str
    status: str  # "approved" or "denied"
    decided_by: str
    reason: str
    decided_at: str | None
    grant: Grant | None


class Lead(ResponseModel):
    candidate_id: str
    subject: str | None  # None once the subject has been erased
    rank: int
    confirmed: bool


class SearchLeads(ResponseModel):
    """Investigative leads, not identifications: see `marking`."""

    search_id: str
    case_number: str
    marking: str
    searches_used: int
    searches_allowed: int
    candidates: list[Lead]


class EmergencyLeads(ResponseModel):
    search_id: str
    case_number: str
    marking: str
    emergency: bool
    candidates: list[Lead]
    follow_up_due: str = Field(description="A written request must follow by then")
    message: str


class Confirmation(ResponseModel):
    candidate_id: str
    search_id: str
    case_number: str
    rank: int
    confirmations: int
    confirmed: bool
    marking: str


class RecordedLead(Lead):
    confirmations: int


class SearchRecord(ResponseModel):
    search_id: str
    case_number: str
    marking: str
    administering_tenant: str
    requesting_tenant: str
    request_id: str | None
    emergency: bool
    status: str
    created_at: str | None
    candidates_returned: int
    candidates: list[RecordedLead]
    follow_up_due: str | None = Field(default=None, description="Emergency searches only")
