"""The rules of the law-enforcement transparency report (Utah Code 77-23e-106, Massachusetts G.L. c.6 §220
quarterly reporting) and of the GDPR Art. 30 record of processing activities, as pure functions.

They turn facts (counts and configuration read by `facewarden.store.report_queries`) into the report dicts; no
database, no I/O. The fact types live here, beside the rules that read them, so the store depends on governance
and never the other way round. Reports hold counts and configuration only: agency (tenant) ids, purpose names and
numbers, never a name, a person or subject id, a case number or a narrative."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from facewarden.config import Settings
from facewarden.governance.policy import MAX_RETENTION_DAYS

__all__ = [
    "COUNTING_BASIS",
    "PERSONAL_DATA_CATEGORIES",
    "REPORT_COUNTS",
    "THIRD_COUNTRY_TRANSFERS",
    "LeadCount",
    "ProcessingFacts",
    "PurposeFact",
    "RecipientFact",
    "RequestCount",
    "SearchCount",
    "SubjectCount",
    "TransparencyFacts",
    "processing_record",
    "reporting_period",
    "security_measures",
    "transparency_report",
    "utc",
]

# The per-agency counts, in the order the CSV and the HTML table show them.
REPORT_COUNTS = ("requests_received", "approved", "denied", "pending", "searches_run", "emergency_searches",
                 "emergency_flagged", "candidates_returned", "candidates_per_request", "confirmed_leads")

# What the system stores about an enrolled person (Art. 30(1)(c)); derived from the tables, not configurable.
PERSONAL_DATA_CATEGORIES = (
    "face templates (128-D embeddings, encrypted)",
    "consent records",
    "verification counters and timestamps",
    "audit entries (pseudonymous identifiers)",
)
# Transfers to third countries or international organisations (Art. 30(1)(e)). Empty until federation exists;
# the record then says "none".
THIRD_COUNTRY_TRANSFERS: tuple[str, ...] = ()

COUNTING_BASIS = (
    "Requests are those created in the period, counted by their status when the report was generated (a request "
    "created in the period and decided after it counts as approved or denied; one still undecided, or that lapsed "
    "undecided after 30 days, counts as pending). Searches are those run in the period, emergency searches "
    "included; candidates and confirmed leads "
    "belong to those searches. A flagged emergency search is one that no written request followed within 48 "
    "hours.")

# Request statuses counted as pending: undecided, or lapsed undecided.
_PENDING_STATUSES = frozenset({"pending", "expired"})


# -- facts: what the store reads, as plain values ------------------------------------------

@dataclass(frozen=True)
class RequestCount:
    """Written requests created in the period by one requesting agency with one status (as it is now)."""
    requesting_tenant: str
    status: str
    requests: int


@dataclass(frozen=True)
class SearchCount:
    """Searches run in the period by one requesting agency, of one kind (emergency or not) and status."""
    requesting_tenant: str
    emergency: bool
    status: str
    searches: int
    candidates: int  # candidates those searches returned


@dataclass(frozen=True)
class LeadCount:
    """Candidates of one agency's searches in the period that two reviewers confirmed."""
    requesting_tenant: str
    confirmed: int


@dataclass(frozen=True)
class TransparencyFacts:
    administering_tenant: str | None  # None: every administering tenant
    requests: tuple[RequestCount, ...] = ()
    searches: tuple[SearchCount, ...] = ()
    leads: tuple[LeadCount, ...] = ()


@dataclass(frozen=True)
class PurposeFact:
    tenant_id: str
    tenant_name: str
    name: str
    description: str
    legal_bases: str  # comma-separated, as stored
    subject_category: str
    retention_days: int
    law_enforcement_searchable: bool
    ends_at: datetime | None


@dataclass(frozen=True)
class SubjectCount:
    tenant_id: str
    purpose: str
    subjects: int


@dataclass(frozen=True)
class RecipientFact:
    """A requesting agency that received a search grant against the administering tenant's database."""
    administering_tenant: str
    requesting_tenant: str
    requesting_name: str


@dataclass(frozen=True)
class ProcessingFacts:
    tenant_id: str | None  # None: every tenant
    purposes: tuple[PurposeFact, ...] = ()  # ordered by tenant id, then purpose name
    subjects: tuple[SubjectCount, ...] = ()
    recipients: tuple[RecipientFact, ...] = ()


# -- periods --------------------------------------------------------------------------------

def utc(dt: datetime) -> datetime:
    """Naive datetimes are taken as UTC. SQLite stores the UTC wall time without an offset, so bounds must be
    converted to UTC before they are compared with it."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def reporting_period(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """The period [since, until) in UTC; ValueError unless it ends after it starts."""
    try:
        start, end = utc(since), utc(until)
    except OverflowError:  # year 1 or 9999 moved past the calendar's edge by its UTC offset
        raise ValueError("The period lies outside the dates that can be represented (years 1-9999 UTC).") from None
    if start >= end:
        raise ValueError("The period must end after it starts (since < until).")
    return start, end


# -- transparency report --------------------------------------------------------------------

def _average(total: int, count: int) -> float:
    if count == 0:
        return 0.0
    return float((Decimal(total) / Decimal(count)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _empty_row(agency: str) -> dict[str, Any]:
    return {"requesting_tenant": agency, **{key: 0 for key in REPORT_COUNTS if key != "candidates_per_request"},
            "candidates_per_request": 0.0}


def _now() -> datetime:
    return datetime.now(UTC)


def transparency_report(facts: TransparencyFacts, since: datetime, until: datetime, *,
                        now: Callable[[], datetime] = _now) -> dict[str, Any]:
    """Law-enforcement use of the face databases administered by `facts.administering_tenant` (None: every
    administering tenant) in the period [since, until), per requesting agency, with a totals row.

    Counting basis: `requests_received` counts the written requests created in the period; `approved`, `denied`
    and `pending` split those same requests by their status *now* (when the report is generated), so the three
    always add up to `requests_received` and a request is counted in exactly one report, the one for the period
    it was filed in. `searches_run` counts the searches run in the period (emergency searches included),
    `emergency_flagged` the emergency searches that no written request followed within 48 hours,
    `candidates_returned` the candidates those searches returned, `candidates_per_request` their average per
    search (2 decimals, 0 without searches) and `confirmed_leads` the candidates of those searches that two
    reviewers confirmed.

    The report holds agency (tenant) ids and counts only: no names, person, subject or case identifiers."""
    start, end = reporting_period(since, until)
    rows: dict[str, dict[str, Any]] = {}

    def row(agency: str) -> dict[str, Any]:
        return rows.setdefault(agency, _empty_row(agency))

    for request in facts.requests:
        agency_row = row(request.requesting_tenant)
        agency_row["requests_received"] += request.requests
        if request.status == "approved":
            agency_row["approved"] += request.requests
        elif request.status == "denied":
            agency_row["denied"] += request.requests
        elif request.status in _PENDING_STATUSES:
            agency_row["pending"] += request.requests
    for search in facts.searches:
        agency_row = row(search.requesting_tenant)
        agency_row["searches_run"] += search.searches
        agency_row["candidates_returned"] += search.candidates
        if search.emergency:
            agency_row["emergency_searches"] += search.searches
            if search.status == "flagged":
                agency_row["emergency_flagged"] += search.searches
    for lead in facts.leads:
        row(lead.requesting_tenant)["confirmed_leads"] += lead.confirmed

    agencies = [rows[agency] for agency in sorted(rows)]
    totals = _empty_row("")
    del totals["requesting_tenant"]
    for agency_row in agencies:
        agency_row["candidates_per_request"] = _average(agency_row["candidates_returned"], agency_row["searches_run"])
        for key in REPORT_COUNTS:
            if key != "candidates_per_request":
                totals[key] += agency_row[key]
    totals["candidates_per_request"] = _average(totals["candidates_returned"], totals["searches_run"])

    return {
        "report": "Law-enforcement face recognition transparency report",
        "legal_references": ["Utah Code 77-23e-106", "Mass. G.L. c.6 §220"],
        "administering_tenant": facts.administering_tenant,
        "period": {"since": start.isoformat(), "until": end.isoformat()},
        "generated_at": now().isoformat(),
        "counting_basis": COUNTING_BASIS,
        "agencies": agencies,
        "totals": totals,
    }


# -- GDPR Art. 30 record of processing activities -------------------------------------------

def security_measures(settings: Settings) -> list[str]:
    """Art. 30(1)(g): the technical and organisational measures, as the settings configure them now."""
    if settings.key_provider == "pkcs11":
        kek = (f"Key-encryption key held in a PKCS#11 hardware security module (token "
               f"'{settings.pkcs11_token_label}'); it never leaves the module")
    else:
        kek = "Key-encryption key in a local key file (owner-only permissions), outside the database"
    witnesses = len(settings.resolved_audit_witnesses)
    return [
        "Face templates encrypted with AES-256-GCM under a per-subject data key; erasing the subject destroys "
        "the key (crypto-shredding), and the key vault is kept apart from the main database",
        kek,
        "TLS on the HTTP API: on" if settings.tls else "TLS on the HTTP API: OFF (plain HTTP)",
        "Tamper-evident audit log: Merkle tree (RFC 9162) with Ed25519-signed tree heads, published to "
        f"{witnesses} witness{'es' if witnesses != 1 else ''}",
        "Liveness (presentation-attack) detection: not yet",
        f"Lockout after {settings.lockout_attempts} failed verifications",
        f"Per-person limits: {settings.person_verify_limit_per_hour} verifications per hour, "
        f"{settings.person_search_limit_per_day} identifications and police searches per day",
        "Role-based access: every API key carries roles and the audit log names the person or device acting",
        f"Dual control: erasing more than {settings.bulk_erase_dual_control_threshold} subjects at once needs a "
        "second administrator",
        "Raw images kept: yes" if settings.keep_raw_images else "Raw images are not kept after template extraction",
    ]


def _retention_note(days: int) -> str:
    return (f"Templates are destroyed {days} days after the subject's last interaction, when the purpose ends or "
            "consent is withdrawn, whichever comes first, and at the latest 3 years after the last interaction "
            f"({MAX_RETENTION_DAYS} days; BIPA 740 ILCS 14/15(a)).")


def processing_record(facts: ProcessingFacts, settings: Settings, *,
                      now: Callable[[], datetime] = _now) -> dict[str, Any]:
    """The GDPR Art. 30(1) record of processing activities, from the purposes in the database and the settings
    now in force: one processing activity per purpose (of every tenant, or of `facts.tenant_id`).

    Subjects appear as a count per purpose only. Recipients are the law-enforcement agencies (tenants) that
    received a search grant against the purpose's tenant, listed only on purposes law enforcement may search."""
    subjects = {(count.tenant_id, count.purpose): count.subjects for count in facts.subjects}
    recipients_of: dict[str, dict[str, str]] = {}
    for grant in facts.recipients:
        recipients_of.setdefault(grant.administering_tenant, {})[grant.requesting_tenant] = grant.requesting_name

    measures = security_measures(settings)
    activities = []
    for purpose in facts.purposes:
        granted = recipients_of.get(purpose.tenant_id, {})
        recipients = ([{"tenant_id": r, "name": granted[r], "role": "law-enforcement agency"} for r in sorted(granted)]
                      if purpose.law_enforcement_searchable else [])
        activities.append({
            "tenant_id": purpose.tenant_id,
            "tenant_name": purpose.tenant_name,
            "purpose": purpose.name,
            "description": purpose.description,
            "legal_bases": [b.strip() for b in purpose.legal_bases.split(",") if b.strip()],
            "data_subject_categories": [purpose.subject_category],
            "personal_data_categories": list(PERSONAL_DATA_CATEGORIES),
            "enrolled_subjects": subjects.get((purpose.tenant_id, purpose.name), 0),
            "law_enforcement_searchable": bool(purpose.law_enforcement_searchable),
            "recipients": recipients,
            "third_country_transfers": list(THIRD_COUNTRY_TRANSFERS) or ["none"],
            "retention": {
                "retention_days": purpose.retention_days,
                "maximum_days": MAX_RETENTION_DAYS,
                "purpose_ends_at": utc(purpose.ends_at).isoformat() if purpose.ends_at else None,
                "note": _retention_note(purpose.retention_days),
            },
            "security_measures": measures,
        })
    return {
        "record": "Record of processing activities (GDPR Art. 30(1))",
        "generated_at": now().isoformat(),
        "tenant_id": facts.tenant_id,
        "controller": {"name": settings.controller_name, "contact": settings.controller_contact,
                       "dpo_contact": settings.dpo_contact},
        "processing_activities": activities,
        "security_measures": measures,
    }
