"""The reads behind the transparency report and the Art. 30 record: parameterised SQLAlchemy aggregates only.

Each returns the plain, frozen fact types of `facewarden.governance.report_rules` (no ORM object leaves this
module); what the counts mean is decided by those rules, not here. Only ids, names of tenants and purposes,
statuses and counts are read: never a person, a subject id, a case number or a narrative."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from facewarden.governance.report_rules import (
    LeadCount,
    ProcessingFacts,
    PurposeFact,
    RecipientFact,
    RequestCount,
    SearchCount,
    SubjectCount,
    TransparencyFacts,
    reporting_period,
)
from facewarden.store.models import LeCandidate, LeSearch, Purpose, SearchGrant, SearchRequest, Subject, Tenant

__all__ = ["processing_facts", "transparency_facts"]


def transparency_facts(session: Session, administering_tenant: str | None, since: datetime,
                       until: datetime) -> TransparencyFacts:
    """Requests created, searches run and confirmed leads of those searches in [since, until), per requesting
    agency, against `administering_tenant`'s databases (None: every administering tenant). An invalid period
    raises ValueError before anything is read."""
    start, end = reporting_period(since, until)  # UTC: SQLite compares against stored UTC wall time
    req_filters = [SearchRequest.created_at >= start, SearchRequest.created_at < end]
    search_filters = [LeSearch.created_at >= start, LeSearch.created_at < end]
    if administering_tenant is not None:
        req_filters.append(SearchRequest.administering_tenant == administering_tenant)
        search_filters.append(LeSearch.administering_tenant == administering_tenant)

    requests = session.execute(
        select(SearchRequest.requesting_tenant, SearchRequest.status, func.count(SearchRequest.id))
        .where(*req_filters).group_by(SearchRequest.requesting_tenant, SearchRequest.status))
    searches = session.execute(
        select(LeSearch.requesting_tenant, LeSearch.emergency, LeSearch.status, func.count(LeSearch.id),
               func.coalesce(func.sum(LeSearch.candidates_returned), 0))
        .where(*search_filters).group_by(LeSearch.requesting_tenant, LeSearch.emergency, LeSearch.status))
    leads = session.execute(
        select(LeSearch.requesting_tenant, func.count(LeCandidate.id))
        .join(LeCandidate, LeCandidate.search_id == LeSearch.id)
        .where(*search_filters, LeCandidate.confirmed_at.is_not(None))  # set once the second reviewer confirms
        .group_by(LeSearch.requesting_tenant))
    return TransparencyFacts(
        administering_tenant=administering_tenant,
        requests=tuple(RequestCount(agency, status, int(n)) for agency, status, n in requests),
        # PostgreSQL sums to Decimal; the facts carry plain ints.
        searches=tuple(SearchCount(agency, bool(emergency), status, int(n), int(candidates))
                       for agency, emergency, status, n, candidates in searches),
        leads=tuple(LeadCount(agency, int(n)) for agency, n in leads),
    )


def processing_facts(session: Session, tenant_id: str | None) -> ProcessingFacts:
    """The purposes (with their tenant's name), enrolled subjects per purpose and the agencies granted searches,
    of every tenant or of `tenant_id`."""
    purpose_q = (select(Purpose, Tenant.name).join(Tenant, Tenant.id == Purpose.tenant_id)
                 .order_by(Purpose.tenant_id, Purpose.name))
    subject_q = (select(Subject.tenant_id, Subject.purpose, func.count(Subject.id))
                 .group_by(Subject.tenant_id, Subject.purpose))
    grants_q = (select(SearchRequest.administering_tenant, SearchRequest.requesting_tenant, Tenant.name)
                .join(SearchGrant, SearchGrant.request_id == SearchRequest.id)
                .join(Tenant, Tenant.id == SearchRequest.requesting_tenant).distinct())
    if tenant_id is not None:
        purpose_q = purpose_q.where(Purpose.tenant_id == tenant_id)
        subject_q = subject_q.where(Subject.tenant_id == tenant_id)
        grants_q = grants_q.where(SearchRequest.administering_tenant == tenant_id)

    purposes = tuple(
        PurposeFact(tenant_id=p.tenant_id, tenant_name=tenant_name, name=p.name, description=p.description,
                    legal_bases=p.legal_bases, subject_category=p.subject_category, retention_days=p.retention_days,
                    law_enforcement_searchable=bool(p.law_enforcement_searchable), ends_at=p.ends_at)
        for p, tenant_name in session.execute(purpose_q))
    return ProcessingFacts(
        tenant_id=tenant_id,
        purposes=purposes,
        subjects=tuple(SubjectCount(tenant, purpose, int(n)) for tenant, purpose, n in session.execute(subject_q)),
        recipients=tuple(RecipientFact(administering, requesting, name)
                         for administering, requesting, name in session.execute(grants_q)),
    )
