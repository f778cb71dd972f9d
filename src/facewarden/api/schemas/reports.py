"""The law-enforcement transparency report and the GDPR Art. 30 record of processing activities."""

from __future__ import annotations

from facewarden.api.schemas.common import ResponseModel


class ReportPeriod(ResponseModel):
    since: str
    until: str  # exclusive


class ReportCounts(ResponseModel):
    requests_received: int
    approved: int
    denied: int
    pending: int
    searches_run: int
    emergency_searches: int
    emergency_flagged: int
    candidates_returned: int
    candidates_per_request: float
    confirmed_leads: int


class AgencyCounts(ReportCounts):
    requesting_tenant: str


class TransparencyReport(ResponseModel):
    """Counts per requesting agency; no personal data."""

    report: str
    legal_references: list[str]
    administering_tenant: str | None
    period: ReportPeriod
    generated_at: str
    counting_basis: str
    agencies: list[AgencyCounts]
    totals: ReportCounts


class Controller(ResponseModel):
    name: str
    contact: str
    dpo_contact: str | None


class Recipient(ResponseModel):
    tenant_id: str
    name: str
    role: str


class RetentionTerms(ResponseModel):
    retention_days: int
    maximum_days: int
    purpose_ends_at: str | None
    note: str


class ProcessingActivity(ResponseModel):
    tenant_id: str
    tenant_name: str
    purpose: str
    description: str
    legal_bases: list[str]
    data_subject_categories: list[str]
    personal_data_categories: list[str]
    enrolled_subjects: int
    law_enforcement_searchable: bool
    recipients: list[Recipient]
    third_country_transfers: list[str]
    retention: RetentionTerms
    security_measures: list[str]


class ProcessingRecord(ResponseModel):
    """GDPR Art. 30(1), generated from the purposes and settings in force now."""

    record: str
    generated_at: str
    tenant_id: str | None
    controller: Controller
    processing_activities: list[ProcessingActivity]
    security_measures: list[str]
