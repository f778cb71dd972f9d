"""Purposes, the police-search policy, dual control, retention."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from facewarden.api.schemas.common import ResponseModel


class PurposeBody(BaseModel):
    description: str = Field(min_length=1, max_length=2000)
    legal_bases: list[str] = Field(min_length=1, max_length=5)
    retention_days: int
    subject_category: str = Field(min_length=1, max_length=200)
    law_enforcement_searchable: bool = False
    liveness_required: bool = False
    light_challenge: bool | None = Field(default=None, description="liveness sessions also flash random screen "
                                         "colours that the face must reflect (needs a capture client that shows "
                                         "them: /capture/); by default, on where liveness_required is")
    target_fmr: float = Field(default=1e-3, description="The false match rate this purpose accepts per comparison "
                              "(1e-7 to 1e-1); `facewarden calibrate` turns it into a distance threshold")
    ends_at: datetime | None = None


class PurposePolicy(ResponseModel):
    name: str
    description: str
    legal_bases: list[str]
    retention_days: int
    law_enforcement_searchable: bool
    liveness_required: bool
    light_challenge: bool
    target_fmr: float
    subject_category: str
    ends_at: str | None


class PurposeList(ResponseModel):
    purposes: list[PurposePolicy]


class CalibrationRecord(ResponseModel):
    id: str
    run_id: str
    model: str
    target_fmr: float
    threshold: float = Field(description="The distance threshold comparisons at this target FMR are decided at")
    threshold_ci: list[float] | None = Field(description="95 % bootstrap interval of the threshold")
    extrapolated: bool = Field(description="The target is below 1/impostor pairs of the calibration set")
    fmr: float
    fnmr: float
    fnmr_ci: list[float] | None
    end_to_end_fnmr: float = Field(description="FNMR counting photos that failed to enrol as failures")
    dataset: str | None = Field(description="The labelled set's name (deployment's own tenant only)")
    dataset_digest: str
    identities: int
    images: int
    failed_to_enrol: int
    genuine_pairs: int
    impostor_pairs: int
    bootstrap_draws: int
    created_at: str
    created_by: str | None = Field(description="Who ran it (deployment's own tenant only)")


class CalibrationList(ResponseModel):
    calibrations: list[CalibrationRecord]


class PurposeApplied(ResponseModel):
    purpose: PurposePolicy
    status: str  # "applied"


class LePolicyBody(BaseModel):
    allowed_uses: list[str] = Field(min_length=1, max_length=4)
    allow_own_agency_review: bool = False
    searches_per_grant: int = 3
    grant_days: int = 14
    max_candidates: int = 10


class LePolicy(ResponseModel):
    allowed_uses: list[str]
    allow_own_agency_review: bool
    searches_per_grant: int
    grant_days: int
    max_candidates: int


class LePolicyApplied(ResponseModel):
    le_policy: LePolicy
    status: str  # "applied"


class ProposedAction(ResponseModel):
    id: str
    kind: str
    requested_by: str
    created_at: str | None
    params: dict[str, Any]


class PendingList(ResponseModel):
    pending: list[ProposedAction]


class Approved(ResponseModel):
    pending_action: str
    kind: str
    result: dict[str, Any] = Field(description="What the action returns when it runs: the key rotation, the "
                                               "erasures, the new person, purpose or police-search policy")


class RejectBody(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class Rejected(ResponseModel):
    pending_action: str
    status: str  # "rejected"
    reason: str


class RetentionRun(ResponseModel):
    subjects_destroyed: int
    emergencies_flagged: int
    ran_at: str
