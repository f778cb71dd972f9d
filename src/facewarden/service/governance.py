"""Governance use cases: purpose policies, dual control, the retention job, the police-search policy.

A mixin of `FaceService` (it uses the service's database, audit log, clock and erasure), kept in its own
file so the face use cases and the governance ones can each be read on their own.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from facewarden.audit import AuditEvent
from facewarden.errors import Conflict, Forbidden, InvalidInput, NotFound
from facewarden.governance import policy, reports
from facewarden.service import roles
from facewarden.service.common import LOCAL_ADMIN, Actor, _aware, iso, purpose_row, retain_until
from facewarden.store import LawEnforcementPolicy, PendingAction, Purpose, Subject

if TYPE_CHECKING:
    from facewarden.service.core import FaceService

log = logging.getLogger("facewarden.governance")
PENDING_ACTION_TTL = timedelta(days=7)
_POLICY_COLUMNS = ("description", "legal_bases", "retention_days", "law_enforcement_searchable",
                   "liveness_required", "subject_category", "ends_at", "updated_at")


def purpose_json(p: Purpose) -> dict[str, Any]:
    return {"name": p.name, "description": p.description, "legal_bases": sorted(p.legal_bases.split(",")),
            "retention_days": p.retention_days, "law_enforcement_searchable": p.law_enforcement_searchable,
            "liveness_required": p.liveness_required,
            "subject_category": p.subject_category, "ends_at": iso(p.ends_at)}


class GovernanceUseCases:
    # -- purposes --------------------------------------------------------------------------
    def list_purposes(self: FaceService, actor: Actor) -> list[dict[str, Any]]:
        self._require(actor, "purpose_list", *roles.ALL_ROLES)  # staff and devices, not data subjects
        with self.db.session(readonly=True) as s:
            rows = s.scalars(select(Purpose).where(Purpose.tenant_id == actor.tenant_id).order_by(Purpose.name))
            return [purpose_json(p) for p in rows]

    def define_purpose(self: FaceService, actor: Actor, spec: policy.PurposeSpec,
                       ends_at: datetime | None = None) -> dict[str, Any]:
        """A new purpose takes one administrator; changing an existing one takes two (dual control)."""
        with self._audited(actor, "purpose_define", roles.ADMIN, purpose=spec.name) as event:
            policy.validate_purpose(spec)
            with self.db.session(readonly=True) as s:
                exists = s.get(Purpose, (actor.tenant_id, spec.name)) is not None
            params = {"name": spec.name, "description": spec.description, "legal_bases": sorted(spec.legal_bases),
                      "retention_days": spec.retention_days, "subject_category": spec.subject_category,
                      "law_enforcement_searchable": spec.law_enforcement_searchable,
                      "liveness_required": spec.liveness_required, "ends_at": iso(ends_at)}
            if exists and not actor.is_local_admin:
                event.outcome = "proposed"
                return self._propose(actor, "purpose_policy", params, event)
            return self._apply_purpose(actor.tenant_id, params, event)

    def _apply_purpose(self: FaceService, tenant_id: str, params: dict[str, Any],
                       event: AuditEvent) -> dict[str, Any]:
        now = self.clock()
        spec = policy.PurposeSpec(params["name"], params["description"], frozenset(params["legal_bases"]),
                                  params["retention_days"], params["subject_category"],
                                  params["law_enforcement_searchable"], params.get("liveness_required", False))
        ends_at = datetime.fromisoformat(params["ends_at"]) if params.get("ends_at") else None
        with self.db.session() as s:
            if spec.law_enforcement_searchable:
                held = s.scalar(select(func.count()).select_from(Subject).where(
                    Subject.tenant_id == tenant_id, Subject.purpose == spec.name,
                    Subject.legal_basis.not_in(("law", "public-task"))))
                if held:
                    raise Conflict(f"{held} subjects were enrolled for '{spec.name}' on consent or contract; their "
                                   "templates can never become searchable by law enforcement.",
                                   code="searchable_needs_law")
            self._bump_generation(s)  # the galleries re-read retention and purposes
            fresh = purpose_row(tenant_id, spec, ends_at, now)
            row = s.get(Purpose, (tenant_id, spec.name))
            if row is None:
                row = fresh
                s.add(row)
            else:  # the policy changes; when the purpose was created does not
                for column in _POLICY_COLUMNS:
                    setattr(row, column, getattr(fresh, column))
            event.details = {k: v for k, v in params.items() if k != "description"}
            event.outcome = "applied"
            self.audit.append(s, event)
            return {"purpose": purpose_json(row), "status": "applied"}

    # -- police-search policy of an administering agency ------------------------------------
    def set_le_policy(self: FaceService, actor: Actor, *, allowed_uses: set[str], allow_own_agency_review: bool,
                      searches_per_grant: int, grant_days: int, max_candidates: int) -> dict[str, Any]:
        with self._audited(actor, "le_policy_set", roles.ADMIN) as event:
            if not allowed_uses or not allowed_uses <= policy.AUTHORISED_USES:
                raise InvalidInput(f"allowed_uses must be a non-empty subset of {sorted(policy.AUTHORISED_USES)}.",
                                   code="invalid_policy")
            if not (1 <= searches_per_grant <= 100 and 1 <= grant_days <= 365 and 1 <= max_candidates <= 50):
                raise InvalidInput("searches_per_grant 1-100, grant_days 1-365, max_candidates 1-50.",
                                   code="invalid_policy")
            params = {"allowed_uses": sorted(allowed_uses), "allow_own_agency_review": allow_own_agency_review,
                      "searches_per_grant": searches_per_grant, "grant_days": grant_days,
                      "max_candidates": max_candidates}
            with self.db.session(readonly=True) as s:
                exists = s.get(LawEnforcementPolicy, actor.tenant_id) is not None
            if exists and not actor.is_local_admin:
                event.outcome = "proposed"
                return self._propose(actor, "le_policy", params, event)
            return self._apply_le_policy(actor.tenant_id, params, event)

    def _apply_le_policy(self: FaceService, tenant_id: str, params: dict[str, Any],
                         event: AuditEvent) -> dict[str, Any]:
        with self.db.session() as s:
            row = s.get(LawEnforcementPolicy, tenant_id)
            if row is None:
                row = LawEnforcementPolicy(tenant_id=tenant_id)
                s.add(row)
            row.allowed_uses = ",".join(params["allowed_uses"])
            row.allow_own_agency_review = params["allow_own_agency_review"]
            row.searches_per_grant, row.grant_days = params["searches_per_grant"], params["grant_days"]
            row.max_candidates, row.updated_at = params["max_candidates"], self.clock()
            event.details, event.outcome = params, "applied"
            self.audit.append(s, event)
        return {"le_policy": params, "status": "applied"}

    # -- dual control ------------------------------------------------------------------------
    def _propose(self: FaceService, actor: Actor, kind: str, params: dict[str, Any],
                 event: AuditEvent) -> dict[str, Any]:
        action_id = str(uuid.uuid4())
        with self.db.session() as s:
            s.add(PendingAction(id=action_id, tenant_id=actor.tenant_id, kind=kind, params=json.dumps(params),
                                requested_by=actor.principal, status="pending", created_at=self.clock()))
            event.details = {"pending_action": action_id, "kind": kind}
            self.audit.append(s, event)
        return {"pending_action": action_id, "kind": kind, "status": "pending",
                "message": "Dual control: a second administrator must approve this at "
                           f"/v1/approvals/{action_id}/approve."}

    def erase_many(self: FaceService, actor: Actor, external_ids: list[str]) -> dict[str, Any]:
        """Erase several subjects. Above the threshold a second administrator must approve."""
        with self._audited(actor, "bulk_erase", roles.OPERATOR, roles.ADMIN) as event:
            ids = sorted(set(external_ids))
            if not ids or len(ids) > 10_000:
                raise InvalidInput("Send 1-10000 subject references.", code="invalid_subjects")
            if len(ids) > self.settings.bulk_erase_dual_control_threshold and not actor.is_local_admin:
                actor.require(roles.ADMIN)
                event.outcome = "proposed"
                return self._propose(actor, "bulk_erase", {"subjects": ids}, event)
            actor.require(roles.OPERATOR)
            event.outcome, event.details = "executed", {"count": len(ids)}
            self.audit.record(event)
        return self._erase_all(actor, ids)

    def _erase_all(self: FaceService, actor: Actor, ids: list[str], *, dual_approved: bool = False
                   ) -> dict[str, Any]:
        erased, missing = [], []
        for external_id in ids:
            try:
                self._erase(actor, external_id, dual_approved=dual_approved)
                erased.append(external_id)
            except NotFound:
                missing.append(external_id)
        return {"erased": len(erased), "not_found": missing}

    def list_pending(self: FaceService, actor: Actor) -> list[dict[str, Any]]:
        self._require(actor, "dual_control_list", roles.ADMIN)
        with self.db.session(readonly=True) as s:
            rows = s.scalars(select(PendingAction).where(PendingAction.tenant_id == actor.tenant_id,
                                                         PendingAction.status == "pending"))
            return [{"id": r.id, "kind": r.kind, "requested_by": r.requested_by, "created_at": iso(r.created_at),
                     "params": json.loads(r.params)} for r in rows]

    def approve_action(self: FaceService, actor: Actor, action_id: str) -> dict[str, Any]:
        """The second administrator approves: the action runs now, in their name and the proposer's."""
        with self._audited(actor, "dual_control_approve", roles.ADMIN, details={"pending_action": action_id}) \
                as event:
            with self.db.session() as s:
                action = s.get(PendingAction, action_id, with_for_update=True)
                if action is None or action.tenant_id != actor.tenant_id:
                    raise NotFound("No such pending action in your tenant.")
                if action.status != "pending":
                    raise Conflict(f"This action is already {action.status}.", code="action_decided")
                if action.requested_by == actor.principal:
                    raise Forbidden("Dual control: the administrator who proposed an action cannot approve it.",
                                    code="same_person")
                expired = _aware(action.created_at) + PENDING_ACTION_TTL <= self.clock()  # type: ignore[operator]
                if expired:
                    action.status = "expired"  # committed with this unit of work; the refusal follows it
                else:
                    # Claimed under the lock, so two approvers cannot both run it; released again if it fails.
                    action.status, action.approved_by, action.decided_at = "approved", actor.principal, self.clock()
                kind, params, proposer = action.kind, json.loads(action.params), action.requested_by
            if expired:
                raise Conflict("This proposal is older than 7 days; propose it again.", code="action_expired")
            try:
                result = self._execute(actor, kind, params)
            except Exception:
                with self.db.session() as s:
                    s.get(PendingAction, action_id).status = "pending"  # type: ignore[union-attr]
                raise
            with self.db.session() as s:
                s.get(PendingAction, action_id).status = "executed"  # type: ignore[union-attr]
                event.details = {"pending_action": action_id, "kind": kind, "proposed_by": proposer}
                event.outcome = "approved"
                self.audit.append(s, event)
            return {"pending_action": action_id, "kind": kind, "result": result}

    def reject_action(self: FaceService, actor: Actor, action_id: str, reason: str) -> dict[str, Any]:
        with self._audited(actor, "dual_control_reject", roles.ADMIN, details={"pending_action": action_id}) \
                as event, self.db.session() as s:
            action = s.get(PendingAction, action_id, with_for_update=True)
            if action is None or action.tenant_id != actor.tenant_id or action.status != "pending":
                raise NotFound("No such pending action in your tenant.")
            action.status, action.approved_by, action.decided_at = "rejected", actor.principal, self.clock()
            event.outcome = "rejected"
            self.audit.append(s, event)
        return {"pending_action": action_id, "status": "rejected", "reason": reason}

    def _execute(self: FaceService, actor: Actor, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        approved = replace(actor, roles=actor.roles | {roles.OPERATOR})  # the approval is the authority here
        if kind == "key_rotation":
            return self._rotate_keys(approved, retire_old=bool(params.get("retire_old")))
        if kind == "bulk_erase":
            return self._erase_all(approved, list(params["subjects"]), dual_approved=True)
        if kind == "person_create":
            person_id = self.create_person(actor, name=params["name"], person_roles=set(params["roles"]),
                                           _dual_approved=True)
            return {"person_id": person_id, "roles": params["roles"]}
        event = AuditEvent(actor.tenant_id, actor.principal, kind)
        if kind == "purpose_policy":
            return self._apply_purpose(actor.tenant_id, params, event)
        if kind == "le_policy":
            return self._apply_le_policy(actor.tenant_id, params, event)
        raise InvalidInput(f"Unknown action kind {kind}.")

    # -- reports ---------------------------------------------------------------------------
    def transparency_report(self: FaceService, actor: Actor, *, since: datetime, until: datetime,
                            tenant_id: str | None = None) -> dict[str, Any]:
        """Police requests, searches and leads against the caller's databases, per requesting agency; no personal
        data. API callers get their own tenant; the local administrator names one or gets every one (None)."""
        with self._audited(actor, "transparency_report", roles.AUDITOR, roles.ADMIN, roles.REVIEWER) as event:
            scope = tenant_id if actor.is_local_admin else actor.tenant_id
            try:
                with self.db.session(readonly=True) as s:
                    report = reports.transparency_report(s, scope, since, until)
            except ValueError as exc:
                raise InvalidInput(str(exc), code="invalid_period") from exc
            event.details = {**report["period"], "scope": scope or "*"}
            self.audit.record(event)
            return report

    def processing_record(self: FaceService, actor: Actor, *, tenant_id: str | None = None) -> dict[str, Any]:
        """The GDPR Art. 30 record generated from the purposes and settings in force now."""
        with self._audited(actor, "processing_record", roles.AUDITOR, roles.ADMIN) as event:
            scope = tenant_id if actor.is_local_admin else actor.tenant_id
            with self.db.session(readonly=True) as s:
                record = reports.processing_record(s, self.settings, scope)
            event.details = {"scope": scope or "*", "activities": len(record["processing_activities"])}
            self.audit.record(event)
            return record

    # -- retention ---------------------------------------------------------------------------
    def start_retention(self: FaceService, interval_s: float) -> threading.Event:
        """Run the retention job every `interval_s` seconds in the background; set the event to stop."""
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(interval_s):
                try:
                    self.run_retention(LOCAL_ADMIN)
                except Exception:  # retried at the next interval; the failure is logged
                    log.exception("the retention job failed")

        threading.Thread(target=run, name="retention", daemon=True).start()
        return stop

    def run_retention(self: FaceService, actor: Actor) -> dict[str, Any]:
        """Destroy every template whose consent term, purpose or retention period has run out (BIPA: at the
        latest 3 years after the last interaction), and close emergency police searches with no written
        request after 48 hours. Runs on a schedule in `serve`; administrators can run it on demand."""
        if not actor.is_local_admin:
            self._require_deployment_admin(actor, "retention_run")  # records its own refusal
        with self._audited(actor, "retention_run", roles.ADMIN) as event:
            now = self.clock()
            due: list[tuple[str, str]] = []
            with self.db.session(readonly=True) as s:
                purposes = {(p.tenant_id, p.name): p for p in s.scalars(select(Purpose))}
                for subject in s.scalars(select(Subject)):
                    if retain_until(subject, purposes.get((subject.tenant_id, subject.purpose))) <= now:
                        due.append((subject.tenant_id, subject.id))
            for tenant_id, subject_id in due:
                with self.db.session() as s:
                    subject = s.get(Subject, subject_id, with_for_update=True)
                    if subject is not None:
                        self._shred(s, subject, AuditEvent(tenant_id, actor.principal, "retention_erase"),
                                    "retention_expired")
            emergencies = self.expire_emergencies(actor)
            probes = self.expire_probes(actor)
            frames = self.expire_liveness_frames()
            event.details = {"subjects_destroyed": len(due), "emergencies_flagged": emergencies,
                             "probes_destroyed": probes, "liveness_frame_sets_destroyed": frames}
            self.audit.record(event)
        return {"subjects_destroyed": len(due), "emergencies_flagged": emergencies, "ran_at": now.isoformat()}


