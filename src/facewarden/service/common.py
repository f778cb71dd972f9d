"""Small helpers the use-case families share: time zones, the purpose row, a subject's retention date."""

from __future__ import annotations

from datetime import UTC, datetime

from facewarden.audit import AuditEvent
from facewarden.governance import policy
from facewarden.store import Purpose, Subject


def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything here is UTC."""
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def iso(dt: datetime | None) -> str | None:
    dt = aware(dt)
    return dt.isoformat() if dt else None


def purpose_row(tenant_id: str, spec: policy.PurposeSpec, ends_at: datetime | None, now: datetime) -> Purpose:
    return Purpose(tenant_id=tenant_id, name=spec.name, description=spec.description,
                   legal_bases=",".join(sorted(spec.legal_bases)), retention_days=spec.retention_days,
                   law_enforcement_searchable=spec.law_enforcement_searchable,
                   liveness_required=spec.liveness_required, subject_category=spec.subject_category,
                   target_fmr=spec.target_fmr, light_challenge=spec.light_challenge, ends_at=ends_at,
                   created_at=now, updated_at=now)


def retain_until(subject: Subject, purpose: Purpose | None) -> datetime:
    """When the subject's templates must be gone: consent term, purpose end or retention after the last
    interaction, whichever comes first. A subject whose purpose was deleted is overdue."""
    return policy.retention_deadline(
        created_at=aware(subject.created_at), last_interaction=aware(subject.last_verified_at),  # type: ignore[arg-type]
        retention_days=purpose.retention_days if purpose else 0, consent_term=aware(subject.expires_at),
        purpose_ends=aware(purpose.ends_at) if purpose else None)


def describe(event: AuditEvent, subject: Subject) -> None:
    """Put whose data and under which purpose and legal basis on the event (identifiers only)."""
    event.subject_id = subject.id
    event.purpose = subject.purpose
    event.legal_basis = subject.legal_basis
