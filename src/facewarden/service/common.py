"""What every use-case module shares: who is asking, the clock's time zone, the purpose row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from facewarden.errors import Forbidden
from facewarden.governance import policy
from facewarden.service import roles
from facewarden.store import Purpose, Subject

DEFAULT_TENANT = "default"
LOCAL_ADMIN_PRINCIPAL = "local-admin"  # whoever runs the CLI on the server: they hold the key files anyway
SUBJECT_TOKEN_PREFIX = "fws_"  # noqa: S105 (a prefix, not a secret)


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything here is UTC."""
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def iso(dt: datetime | None) -> str | None:
    dt = _aware(dt)
    return dt.isoformat() if dt else None


@dataclass(frozen=True)
class Actor:
    """Who is asking: resolved from an API key (HTTP), a subject credential, or the local operator (CLI)."""

    tenant_id: str
    principal: str  # person:<id>, apikey:<id> (a device or app), subject:<id>, or local-admin
    roles: frozenset[str]
    person_id: str | None = None
    subject_id: str | None = None  # set only for a data subject acting through their credential
    purposes: frozenset[str] | None = None  # a device key bound to purposes (a payment terminal); None: any

    def check_purpose(self, purpose: str) -> None:
        if self.purposes is not None and purpose not in self.purposes:
            raise Forbidden(f"This API key may be used only for {sorted(self.purposes)}.",
                            code="purpose_not_allowed_for_key")

    def require(self, *allowed: str) -> None:
        if not self.roles & set(allowed):
            raise Forbidden(
                f"This action needs one of the roles {sorted(allowed)}; your key has {sorted(self.roles)}. "
                "Ask an administrator for a key with the right role.")

    @property
    def is_local_admin(self) -> bool:
        return self.principal == LOCAL_ADMIN_PRINCIPAL


LOCAL_ADMIN = Actor(DEFAULT_TENANT, LOCAL_ADMIN_PRINCIPAL, frozenset(roles.ALL_ROLES))


def purpose_row(tenant_id: str, spec: policy.PurposeSpec, ends_at: datetime | None, now: datetime) -> Purpose:
    return Purpose(tenant_id=tenant_id, name=spec.name, description=spec.description,
                   legal_bases=",".join(sorted(spec.legal_bases)), retention_days=spec.retention_days,
                   law_enforcement_searchable=spec.law_enforcement_searchable,
                   liveness_required=spec.liveness_required, subject_category=spec.subject_category,
                   ends_at=ends_at, created_at=now, updated_at=now)


def retain_until(subject: Subject, purpose: Purpose | None) -> datetime:
    """When the subject's templates must be gone: consent term, purpose end or retention after the last
    interaction, whichever comes first. A subject whose purpose was deleted is overdue."""
    return policy.retention_deadline(
        created_at=_aware(subject.created_at), last_interaction=_aware(subject.last_verified_at),  # type: ignore[arg-type]
        retention_days=purpose.retention_days if purpose else 0, consent_term=_aware(subject.expires_at),
        purpose_ends=_aware(purpose.ends_at) if purpose else None)
