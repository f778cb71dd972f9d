"""The queries the use cases run, by table. Each takes the caller's session (the unit of work), so a use case and
its audit entry still commit together; parameterised SQLAlchemy only."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from facewarden.store.models import (
    ApiKey,
    AuditEntry,
    LeCandidate,
    LeSearch,
    LivenessFrame,
    LivenessSession,
    PendingAction,
    Purpose,
    SearchGrant,
    SearchRequest,
    ServiceState,
    Subject,
)

# -- subjects -------------------------------------------------------------------------------


def find_subject(s: Session, tenant_id: str, *, external_id: str | None = None, subject_id: str | None = None,
                 for_update: bool = False) -> Subject | None:
    """A subject of one tenant, by its own id (a data subject) or by the operator's reference."""
    q = select(Subject).where(Subject.tenant_id == tenant_id)
    q = q.where(Subject.id == subject_id) if subject_id else q.where(Subject.external_id == external_id)
    if for_update:
        q = q.with_for_update()
    return s.scalars(q).first()


def subject_id_for(s: Session, tenant_id: str, external_id: str) -> str | None:
    return s.scalar(select(Subject.id).where(Subject.tenant_id == tenant_id, Subject.external_id == external_id))


def subject_ids_by_key(s: Session, tenant_id: str, key: str) -> Sequence[str]:
    """The ids of a tenant's subjects whose reference compares equal to `key` (indexed), oldest first."""
    return list(s.scalars(select(Subject.id).where(Subject.tenant_id == tenant_id, Subject.reference_key == key)
                          .order_by(Subject.created_at)))


def active_key_roles(s: Session, tenant_id: str) -> Sequence[str]:
    """The comma-separated roles of each unrevoked API key of a tenant."""
    return list(s.scalars(select(ApiKey.roles).where(ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None))))


def subject_by_credential(s: Session, digest: str) -> Subject | None:
    return s.scalars(select(Subject).where(Subject.subject_token_hash == digest)).first()


def subjects_page(s: Session, tenant_id: str, limit: int, offset: int) -> Sequence[Subject]:
    return s.scalars(select(Subject).where(Subject.tenant_id == tenant_id)
                     .order_by(Subject.created_at).limit(limit).offset(offset)).all()


def all_subjects(s: Session) -> Sequence[Subject]:
    return s.scalars(select(Subject)).all()


def subjects_among(s: Session, tenant_id: str, subject_ids: Collection[str], purposes: Collection[str], *,
                   legal_bases: Collection[str] | None = None) -> Sequence[Subject]:
    """The given subjects that belong to the tenant and one of the purposes (and legal bases, if given)."""
    q = select(Subject).where(Subject.id.in_(subject_ids), Subject.tenant_id == tenant_id,
                              Subject.purpose.in_(purposes))
    if legal_bases is not None:
        q = q.where(Subject.legal_basis.in_(legal_bases))
    return s.scalars(q).all()


def subject_references(s: Session, subject_ids: Collection[str]) -> dict[str, str]:
    """Subject id -> the operator's reference, for those still enrolled."""
    if not subject_ids:
        return {}
    return {sid: ref for sid, ref in s.execute(select(Subject.id, Subject.external_id)
                                               .where(Subject.id.in_(subject_ids))).all()}


def count_subjects_not_on_law(s: Session, tenant_id: str, purpose: str) -> int:
    return s.scalar(select(func.count()).select_from(Subject).where(
        Subject.tenant_id == tenant_id, Subject.purpose == purpose,
        Subject.legal_basis.not_in(("law", "public-task")))) or 0


# -- purposes -------------------------------------------------------------------------------


def tenant_purposes(s: Session, tenant_id: str, names: Collection[str] | None = None) -> dict[str, Purpose]:
    q = select(Purpose).where(Purpose.tenant_id == tenant_id)
    if names is not None:
        q = q.where(Purpose.name.in_(names))
    return {p.name: p for p in s.scalars(q.order_by(Purpose.name))}


def all_purposes(s: Session) -> dict[tuple[str, str], Purpose]:
    return {(p.tenant_id, p.name): p for p in s.scalars(select(Purpose))}


def searchable_purposes(s: Session, tenant_id: str) -> set[str]:
    return set(s.scalars(select(Purpose.name).where(Purpose.tenant_id == tenant_id,
                                                    Purpose.law_enforcement_searchable.is_(True))))


# -- API keys, the audit log's counts, the gallery's generation ------------------------------


def api_key_by_hash(s: Session, digest: str) -> ApiKey | None:
    return s.scalars(select(ApiKey).where(ApiKey.key_hash == digest)).first()


def count_operations(s: Session, principal: str, operations: Collection[str], since: str) -> int:
    """How many audit entries one principal has for these operations since a timestamp."""
    return s.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.actor == principal, AuditEntry.operation.in_(operations), AuditEntry.at >= since)) or 0


def bump_gallery_generation(s: Session) -> None:
    """Every process's gallery cache reloads after the next read of the generation."""
    s.execute(update(ServiceState).where(ServiceState.id == 1)
              .values(gallery_generation=ServiceState.gallery_generation + 1))


def gallery_generation(s: Session) -> int:
    return s.scalar(select(ServiceState.gallery_generation).where(ServiceState.id == 1)) or 0


def pending_actions(s: Session, tenant_id: str) -> Sequence[PendingAction]:
    return s.scalars(select(PendingAction).where(PendingAction.tenant_id == tenant_id,
                                                 PendingAction.status == "pending")).all()


# -- liveness -------------------------------------------------------------------------------


def failed_liveness_sessions(s: Session, subject_id: str | None, device: str, since: datetime) -> int:
    """Failed sessions of this subject (None: of comparisons) on this device since `since`."""
    subject = LivenessSession.subject_id.is_(None) if subject_id is None else LivenessSession.subject_id == subject_id
    return s.scalar(select(func.count()).select_from(LivenessSession).where(
        subject, LivenessSession.device == device,
        LivenessSession.status == "failed", LivenessSession.created_at >= since)) or 0


def liveness_fingerprints(s: Session, subject_id: str, since: datetime) -> list[str]:
    """The fingerprints of the subject's accepted clips still remembered (to refuse their replay)."""
    return list(s.scalars(select(LivenessSession.fingerprint).where(
        LivenessSession.subject_id == subject_id, LivenessSession.fingerprint.is_not(None),
        LivenessSession.decided_at >= since)))


def comparison_fingerprints(s: Session, tenant_id: str, since: datetime, limit: int) -> list[str]:
    """The fingerprints of the tenant's accepted comparison clips still remembered, newest first (a replay of
    one may come with any re-encoding of the document, so the memory is not keyed by the photo)."""
    return list(s.scalars(select(LivenessSession.fingerprint).where(
        LivenessSession.tenant_id == tenant_id, LivenessSession.subject_id.is_(None),
        LivenessSession.fingerprint.is_not(None), LivenessSession.decided_at >= since)
        .order_by(LivenessSession.decided_at.desc()).limit(limit)))


def forget_old_fingerprints(s: Session, before: datetime) -> int:
    """Retention: clip fingerprints and reference digests of sessions decided before `before` are cleared."""
    result = s.execute(update(LivenessSession).where(
        LivenessSession.decided_at < before,
        (LivenessSession.fingerprint.is_not(None)) | (LivenessSession.reference_digest.is_not(None)))
        .values(fingerprint=None, reference_digest=None))
    return int(getattr(result, "rowcount", 0) or 0)


def forget_liveness(s: Session, subject_id: str) -> list[str]:
    """Delete the subject's sealed liveness frames and clip fingerprints; return the sessions' ids."""
    sessions = list(s.scalars(select(LivenessSession.id).where(LivenessSession.subject_id == subject_id)))
    if sessions:
        s.execute(delete(LivenessFrame).where(LivenessFrame.session_id.in_(sessions)))
        s.execute(update(LivenessSession).where(LivenessSession.id.in_(sessions)).values(fingerprint=None))
    return sessions


def delete_expired_liveness_frames(s: Session, now: datetime) -> list[str]:
    """Delete sealed frames past their date; return the sessions whose frames went."""
    sessions = [sid for (sid,) in s.execute(select(LivenessFrame.session_id).where(
        LivenessFrame.expires_at <= now).distinct())]
    if sessions:
        s.execute(delete(LivenessFrame).where(LivenessFrame.session_id.in_(sessions)))
    return sessions


# -- police searches ------------------------------------------------------------------------


def grant_of(s: Session, request_id: str, *, for_update: bool = False) -> SearchGrant | None:
    q = select(SearchGrant).where(SearchGrant.request_id == request_id)
    return s.scalars(q.with_for_update() if for_update else q).first()


def grants_of(s: Session, request_ids: Collection[str]) -> dict[str, SearchGrant]:
    if not request_ids:
        return {}
    return {g.request_id: g for g in s.scalars(select(SearchGrant).where(SearchGrant.request_id.in_(request_ids)))}


def requests_visible(s: Session, *, administered_by: str | None, requested_by: str | None,
                     limit: int = 1000) -> list[SearchRequest]:
    """Requests to an administering agency and/or from a requesting one, newest first."""
    scopes = []
    if administered_by is not None:
        scopes.append(SearchRequest.administering_tenant == administered_by)
    if requested_by is not None:
        scopes.append(SearchRequest.requesting_tenant == requested_by)
    return list(s.scalars(select(SearchRequest).where(or_(*scopes))
                          .order_by(SearchRequest.created_at.desc()).limit(limit)))


def follow_up_of(s: Session, emergency_search_id: str) -> str | None:
    return s.scalar(select(SearchRequest.id).where(SearchRequest.emergency_search_id == emergency_search_id))


def follow_up_statuses(s: Session, emergency_search_id: str) -> set[str]:
    return set(s.scalars(select(SearchRequest.status).where(SearchRequest.emergency_search_id == emergency_search_id)))


def open_emergency_searches(s: Session) -> list[LeSearch]:
    return list(s.scalars(select(LeSearch).where(LeSearch.emergency.is_(True), LeSearch.status == "leads")))


def candidates_of(s: Session, search_id: str) -> list[LeCandidate]:
    return list(s.scalars(select(LeCandidate).where(LeCandidate.search_id == search_id).order_by(LeCandidate.rank)))


def requests_holding_probes(s: Session) -> list[tuple[SearchRequest, SearchGrant | None]]:
    rows = s.execute(select(SearchRequest, SearchGrant).outerjoin(
        SearchGrant, SearchGrant.request_id == SearchRequest.id).where(SearchRequest.probe.is_not(None)))
    return [(req, grant) for req, grant in rows.all()]
