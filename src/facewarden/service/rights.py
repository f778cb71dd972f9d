"""The enrolled person's rights (GDPR Art. 15, 17, 20; BIPA): see what is held, withdraw consent, erase for
good (crypto-shredding), and the operator's listing of subjects (identifiers and metadata only)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from facewarden.audit import AuditEvent
from facewarden.errors import Conflict, Forbidden, InvalidInput, NotFound
from facewarden.faults import crash_point
from facewarden.governance import roles
from facewarden.governance.actors import Actor
from facewarden.service.approvals import DualControl
from facewarden.service.common import describe, iso, retain_until
from facewarden.service.context import ServiceContext
from facewarden.service.subjects import open_templates, subject_of
from facewarden.store import Purpose, Subject, repositories

log = logging.getLogger("facewarden.service")


class SubjectRights:
    def __init__(self, ctx: ServiceContext, approvals: DualControl) -> None:
        self.ctx = ctx
        approvals.register("bulk_erase", self._erase_approved)

    def erase(self, actor: Actor, external_id: str | None) -> dict[str, Any]:
        """GDPR Art. 17: delete the records and destroy the data key (crypto-shredding). Operators erase in their
        tenant; a data subject erases their own record with their credential."""
        return self._erase(actor, external_id)

    def _erase(self, actor: Actor, external_id: str | None, *, dual_approved: bool = False) -> dict[str, Any]:
        ctx = self.ctx
        with ctx.audited(actor, "erase", roles.OPERATOR, roles.SUBJECT) as event:
            if roles.OPERATOR in actor.roles and not (actor.is_local_admin or dual_approved):
                # Many erasures by one person need a second administrator, however they are split up.
                ctx.check_rate(actor, ("erase",), ctx.settings.bulk_erase_dual_control_threshold,
                               timedelta(days=1), code="dual_control_required")
            with ctx.db.session() as s:
                subject = subject_of(s, actor, external_id, for_update=True)
                if actor.subject_id and subject.legal_basis not in {"consent", "contract"}:
                    raise Forbidden(f"This record is kept on the legal basis '{subject.legal_basis}'; ask the "
                                    "operator, who must check whether it may be erased.", code="erasure_needs_operator")
                return self.shred(s, subject, event, "erased")

    def erase_all(self, actor: Actor, ids: list[str], *, dual_approved: bool = False) -> dict[str, Any]:
        erased, missing = [], []
        for external_id in ids:
            try:
                self._erase(actor, external_id, dual_approved=dual_approved)
                erased.append(external_id)
            except NotFound:
                missing.append(external_id)
        return {"erased": len(erased), "not_found": missing}

    def _erase_approved(self, approver: Actor, params: dict[str, Any]) -> dict[str, Any]:
        approved = replace(approver, roles=approver.roles | {roles.OPERATOR})  # the approval is the authority here
        return self.erase_all(approved, list(params["subjects"]), dual_approved=True)

    def withdraw_consent(self, actor: Actor, external_id: str | None) -> dict[str, Any]:
        """Withdrawal stops matching at once and erases the templates the consent covered."""
        with self.ctx.audited(actor, "consent_withdraw", roles.OPERATOR, roles.SUBJECT) as event, \
                self.ctx.db.session() as s:
            subject = subject_of(s, actor, external_id, for_update=True)
            if subject.legal_basis != "consent":
                raise Conflict(f"This record is held on the legal basis '{subject.legal_basis}', not consent; ask "
                               "the operator to erase it instead.", code="not_consent_based")
            return self.shred(s, subject, event, "consent_withdrawn")

    def shred(self, s: Session, subject: Subject, event: AuditEvent, outcome: str) -> dict[str, Any]:
        """Delete a subject and destroy its data key, with its audit entry, in the caller's transaction."""
        ctx = self.ctx
        describe(event, subject)
        tenant_id, subject_id, external_id = subject.tenant_id, subject.id, subject.external_id
        n = len(subject.templates)
        s.delete(subject)
        repositories.bump_gallery_generation(s)
        s.flush()
        # Liveness leftovers of the person go with them: sealed audit frames (their keys) and clip fingerprints.
        sessions = repositories.forget_liveness(s, subject_id)
        event.outcome = outcome
        event.details = {"templates_destroyed": n, "data_key_destroyed": True, "liveness_sessions": len(sessions)}
        ctx.audit.append(s, event)
        # The key store commits apart: journal the shred there first, then destroy the keys once the records'
        # deletion and its audit entry have committed. A crash in between is finished (or, if the deletion never
        # committed, undone) by the key-intent recovery; the answer is given only once the keys are gone.
        keys = [ctx.keyring.subject_key(tenant_id, subject_id), *map(ctx.keyring.liveness_key, sessions)]
        ctx.keyring.begin_shred(keys)
        crash_point("erase.intent_written")

        def destroy_keys() -> None:
            ctx.gallery.remove_subject(tenant_id, subject_id)
            crash_point("erase.committed")
            ctx.keyring.finish_shred(keys)

        s.info.setdefault("after_commit", []).append(destroy_keys)
        log.info("%s subject=%s tenant=%s", outcome, subject_id, tenant_id)
        return {"subject": external_id, outcome: True, "erased": True, "templates_destroyed": n,
                "data_key_destroyed": True}

    def export(self, actor: Actor, external_id: str | None) -> dict[str, Any]:
        """GDPR Art. 15/20: everything held on one subject, templates included, as JSON. There is no bulk
        export of templates, for anyone."""
        ctx = self.ctx
        with ctx.audited(actor, "export", roles.OPERATOR, roles.SUBJECT) as event:
            # One subject at a time, and few per day: exports hold plaintext templates.
            ctx.check_rate(actor, ("export",), ctx.settings.person_export_limit_per_day, timedelta(days=1))
            with ctx.db.session() as s:
                subject = subject_of(s, actor, external_id)
                describe(event, subject)
                templates = open_templates(ctx, subject)
                event.details = {"templates": len(templates)}
                ctx.audit.append(s, event)
                return {
                    "subject": subject.external_id,
                    "subject_id": subject.id,
                    "tenant": subject.tenant_id,
                    "display_name": subject.display_name,
                    "purpose": subject.purpose,
                    "legal_basis": subject.legal_basis,
                    "consent": {"given_at": iso(subject.consent_given_at), "method": subject.consent_method,
                                "text": subject.consent_text},
                    "expires_at": iso(subject.expires_at),
                    "retain_until": iso(retain_until(subject, s.get(Purpose, (subject.tenant_id, subject.purpose)))),
                    "created_at": iso(subject.created_at),
                    "last_verified_at": iso(subject.last_verified_at),
                    "failed_attempts": subject.failed_attempts,
                    "locked": subject.locked_at is not None,
                    "has_passcode": subject.passcode_hash is not None,
                    "raw_images_kept": False,
                    "templates": [{"template_id": t.id, "model": f"{t.model_id}@{t.model_version}",
                                   "created_at": iso(t.created_at), "quality": t.quality,
                                   "embedding": [float(x) for x in vec]} for t, vec in templates],
                }

    def list_subjects(self, actor: Actor, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Identifiers and metadata only; never face data."""
        with self.ctx.audited(actor, "list_subjects", roles.OPERATOR) as event, self.ctx.db.session() as s:
            if not (1 <= limit <= 1000 and 0 <= offset <= 2**31):
                raise InvalidInput("`limit` must be 1-1000 and `offset` 0 or more.", code="invalid_page")
            rows = repositories.subjects_page(s, actor.tenant_id, limit, offset)
            event.details = {"count": len(rows), "offset": offset}
            self.ctx.audit.append(s, event)
            return [{"subject": r.external_id, "purpose": r.purpose, "legal_basis": r.legal_basis,
                     "templates": len(r.templates), "locked": r.locked_at is not None} for r in rows]
