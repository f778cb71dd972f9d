"""Operational numbers for monitoring (Prometheus): sizes, key-store counts and outcome counts, nothing personal.

Outcome counts come from the audit log itself (operation and outcome codes only), read incrementally, so they
agree with the log, hold across processes and restarts, and need no hook in each use case.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from facewarden.audit import AuditEvent
from facewarden.errors import Forbidden
from facewarden.governance import roles
from facewarden.governance.actors import DEFAULT_TENANT, Actor
from facewarden.service.context import ServiceContext
from facewarden.store import Subject
from facewarden.store.models import AuditEntry, AuditTreeHead

# The use cases whose outcomes are counted; outcomes are codes ("match", "no_match", "forbidden", "passed"...).
COUNTED_OPERATIONS = ("enrol", "add_photos", "verify", "identify", "unlock", "erase", "consent_withdraw",
                      "liveness_start", "liveness_check", "export", "login")  # login: failed authentications


@dataclass(frozen=True)
class TelemetrySnapshot:
    gallery_templates: int  # in this process's in-memory gallery
    subjects: int  # enrolled, every tenant
    audit_entries: int  # the log's size (its head)
    audit_signed_size: int  # the newest signed tree head's size
    audit_signed_at_ms: int | None  # when it was signed
    kek_provider: str
    kek_current_version: int
    kek_versions: int
    data_keys_per_version: dict[int, int]
    outcomes: dict[tuple[str, str], int] = field(default_factory=dict)  # (operation, outcome) -> count


class Telemetry:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._seen_seq = -1
        self._outcomes: dict[tuple[str, str], int] = {}

    def snapshot(self, actor: Actor) -> TelemetrySnapshot:
        """Deployment-wide numbers, so only the deployment's own tenant reads them: a `metrics` key (a scraper),
        an auditor or an administrator. Allowed reads are not logged (a scrape every 15 s would flood the log);
        refusals are."""
        ctx = self.ctx
        ctx.require(actor, "metrics", roles.METRICS, roles.AUDITOR, roles.ADMIN)
        if actor.tenant_id != DEFAULT_TENANT:
            ctx.audit.record(AuditEvent(actor.tenant_id, actor.principal, "metrics", outcome="deployment_only"))
            raise Forbidden("Metrics cover every tenant; keys of the deployment's own tenant "
                            f"('{DEFAULT_TENANT}') read them.", code="deployment_only")
        with ctx.db.session(readonly=True) as s:
            subjects = int(s.scalar(select(func.count()).select_from(Subject)) or 0)
            head = s.execute(select(AuditTreeHead.tree_size, AuditTreeHead.timestamp_ms)
                             .order_by(AuditTreeHead.tree_size.desc()).limit(1)).first()
            outcomes = self._count_outcomes(s)
        kek = ctx.keyring.kek
        return TelemetrySnapshot(
            gallery_templates=ctx.gallery.size(), subjects=subjects, audit_entries=ctx.audit.state_size(),
            audit_signed_size=int(head.tree_size) if head else 0,
            audit_signed_at_ms=int(head.timestamp_ms) if head else None,
            kek_provider=kek.name, kek_current_version=kek.current_version(), kek_versions=len(kek.versions()),
            data_keys_per_version=ctx.keyring.versions_in_use(), outcomes=outcomes)

    def _count_outcomes(self, s: Session) -> dict[tuple[str, str], int]:
        """Add the entries appended since the last scrape (one indexed range read), then hand out the totals."""
        with self._lock:
            top = s.scalar(select(func.max(AuditEntry.seq)))  # first, so an entry appended meanwhile waits
            if top is not None and top > self._seen_seq:
                rows = s.execute(select(AuditEntry.operation, AuditEntry.outcome, func.count())
                                 .where(AuditEntry.seq > self._seen_seq, AuditEntry.seq <= top,
                                        AuditEntry.operation.in_(COUNTED_OPERATIONS))
                                 .group_by(AuditEntry.operation, AuditEntry.outcome)).all()
                for operation, outcome, n in rows:
                    key = (str(operation), str(outcome))
                    self._outcomes[key] = self._outcomes.get(key, 0) + int(n)
                self._seen_seq = int(top)
            return dict(self._outcomes)
