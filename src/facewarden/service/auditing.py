"""The audit log as auditors and administrators read it: queries, exports with proofs, signed tree heads, and
the full verification run from the server's own CLI."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from facewarden.audit import AuditQuery, LogPublicKey, make_witness
from facewarden.audit.verify import VerifyReport
from facewarden.errors import Forbidden, NotFound
from facewarden.governance import roles
from facewarden.governance.actors import Actor
from facewarden.service.context import ServiceContext
from facewarden.service.subjects import resolve_reference


class Auditing:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def _scope(self, actor: Actor, q: AuditQuery) -> AuditQuery:
        """Auditors see their own tenant's entries; the local administrator (CLI) sees every tenant."""
        return replace(q, tenant_id=actor.read_scope(q.tenant_id))

    def _resolve_subject(self, actor: Actor, q: AuditQuery, subject: str | None) -> AuditQuery:
        if subject is None:
            return q
        with self.ctx.db.session(readonly=True) as s:
            subject_id = resolve_reference(s, actor.tenant_id, subject)  # same rules as every use case
        if subject_id is None:
            raise NotFound(f"No subject '{subject}' is enrolled now; after erasure, query by its subject_id.")
        return replace(q, subject_id=subject_id)

    def query(self, actor: Actor, q: AuditQuery, *, subject: str | None = None) -> list[dict[str, Any]]:
        """Entries matching the filters. `subject` is the operator's reference, resolved to the subject id."""
        with self.ctx.audited(actor, "audit_query", roles.AUDITOR, roles.ADMIN) as event:
            q = self._scope(actor, self._resolve_subject(actor, q, subject))
            rows = self.ctx.audit.query(q)
            event.details = {"filters": sorted(k for k, v in q.__dict__.items() if v not in (None, -1)),
                             "returned": len(rows)}
            self.ctx.audit.record(event)
            return rows

    def export(self, actor: Actor, q: AuditQuery, *, subject: str | None = None) -> dict[str, Any]:
        with self.ctx.audited(actor, "audit_export", roles.AUDITOR, roles.ADMIN) as event:
            q = self._scope(actor, self._resolve_subject(actor, q, subject))
            event.details = {"since": q.since, "until": q.until}
            self.ctx.audit.record(event)  # first, so the export's own entry is in its tree head
            return self.ctx.audit.export(q)

    # Proofs and tree heads hold hashes only, but they are still for auditors and administrators.
    def latest_head(self, actor: Actor) -> dict[str, Any]:
        self.ctx.require(actor, "audit_proof", roles.AUDITOR, roles.ADMIN)
        return self.ctx.audit.latest_head().to_json(self.ctx.audit.signer.log_id)

    def sign_head(self, actor: Actor) -> dict[str, Any]:
        """Sign a head for the current size now and hand it to the witnesses."""
        self.ctx.require(actor, "audit_proof", roles.AUDITOR, roles.ADMIN)
        head = self.ctx.audit.sign_head()
        return {**head.to_json(self.ctx.audit.signer.log_id), "witness_errors": self.ctx.audit.witness_errors}

    def heads(self, actor: Actor) -> list[dict[str, Any]]:
        self.ctx.require(actor, "audit_proof", roles.AUDITOR, roles.ADMIN)
        return [h.to_json(self.ctx.audit.signer.log_id) for h in self.ctx.audit.stored_heads()]

    def inclusion_proof(self, actor: Actor, seq: int, tree_size: int | None) -> dict[str, Any]:
        self.ctx.require(actor, "audit_proof", roles.AUDITOR, roles.ADMIN)
        return self.ctx.audit.inclusion_proof(seq, tree_size)

    def consistency_proof(self, actor: Actor, first: int, second: int | None) -> dict[str, Any]:
        self.ctx.require(actor, "audit_proof", roles.AUDITOR, roles.ADMIN)
        return self.ctx.audit.consistency_proof(first, second)

    # -- for the server's own operator (CLI, serve) -------------------------------------------------
    @staticmethod
    def _local_only(actor: Actor) -> None:
        if not actor.is_local_admin:
            raise Forbidden("Only the local administrator (CLI on the server) runs this.", code="local_only")

    def verify_log(self, actor: Actor, public_key: LogPublicKey | None = None,
                   extra_witnesses: Sequence[str] = ()) -> VerifyReport:
        """Check every entry against the signed tree heads and the witnesses' copies."""
        self._local_only(actor)
        verify = self.ctx.settings.audit_witness_ca or True
        return self.ctx.audit.verify(public_key, [make_witness(w, verify=verify) for w in extra_witnesses])

    def public_key_pem(self) -> str:
        """The log's public key: published, so that anyone can check receipts, tree heads and exports."""
        return self.ctx.audit.signer.pem()

    def start_signer(self, interval_s: float) -> threading.Event:
        """Sign and publish a tree head every `interval_s` seconds in the background; set the event to stop."""
        return self.ctx.audit.start_signer(interval_s)
