"""Governance use cases: purpose policies, the police-search policy of an administering agency, and batch
erasure, each under dual control where one administrator alone must not decide."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from facewarden.audit import AuditEvent
from facewarden.errors import Conflict, InvalidInput
from facewarden.governance import policy, roles
from facewarden.governance.actors import Actor
from facewarden.service.approvals import DualControl, Executor
from facewarden.service.common import iso, purpose_row
from facewarden.service.context import ServiceContext
from facewarden.service.rights import SubjectRights
from facewarden.store import LawEnforcementPolicy, Purpose, repositories

_POLICY_COLUMNS = ("description", "legal_bases", "retention_days", "law_enforcement_searchable",
                   "liveness_required", "light_challenge", "subject_category", "target_fmr", "ends_at",
                   "updated_at")


def purpose_json(p: Purpose) -> dict[str, Any]:
    return {"name": p.name, "description": p.description, "legal_bases": sorted(p.legal_bases.split(",")),
            "retention_days": p.retention_days, "law_enforcement_searchable": p.law_enforcement_searchable,
            "liveness_required": p.liveness_required, "light_challenge": p.light_challenge,
            "target_fmr": p.target_fmr, "subject_category": p.subject_category, "ends_at": iso(p.ends_at)}


class Governance:
    def __init__(self, ctx: ServiceContext, approvals: DualControl, rights: SubjectRights) -> None:
        self.ctx = ctx
        self.approvals = approvals
        self.rights = rights
        approvals.register("purpose_policy", self._apply_approved("purpose_policy", self._apply_purpose))
        approvals.register("le_policy", self._apply_approved("le_policy", self._apply_le_policy))

    @staticmethod
    def _apply_approved(kind: str, apply: Callable[[str, dict[str, Any], AuditEvent], dict[str, Any]]) -> Executor:
        """An approved policy change runs in the approver's tenant, under an audit event of its own kind."""
        def run(approver: Actor, params: dict[str, Any]) -> dict[str, Any]:
            return apply(approver.tenant_id, params, AuditEvent(approver.tenant_id, approver.principal, kind))
        return run

    # -- purposes --------------------------------------------------------------------------
    def list_purposes(self, actor: Actor) -> list[dict[str, Any]]:
        self.ctx.require(actor, "purpose_list", *roles.ALL_ROLES)  # staff and devices, not data subjects
        with self.ctx.db.session(readonly=True) as s:
            return [purpose_json(p) for p in repositories.tenant_purposes(s, actor.tenant_id).values()]

    def define_purpose(self, actor: Actor, spec: policy.PurposeSpec,
                       ends_at: datetime | None = None) -> dict[str, Any]:
        """A new purpose takes one administrator; changing an existing one takes two (dual control)."""
        if spec.light_challenge is None:  # secure by default: a recorded or generated clip cannot show the colours
            spec = replace(spec, light_challenge=spec.liveness_required)
        with self.ctx.audited(actor, "purpose_define", roles.ADMIN, purpose=spec.name) as event:
            policy.validate_purpose(spec)
            with self.ctx.db.session(readonly=True) as s:
                exists = s.get(Purpose, (actor.tenant_id, spec.name)) is not None
            params = {"name": spec.name, "description": spec.description, "legal_bases": sorted(spec.legal_bases),
                      "retention_days": spec.retention_days, "subject_category": spec.subject_category,
                      "law_enforcement_searchable": spec.law_enforcement_searchable,
                      "liveness_required": spec.liveness_required, "target_fmr": spec.target_fmr,
                      "light_challenge": spec.light_challenge, "ends_at": iso(ends_at)}
            if exists and not actor.is_local_admin:
                event.outcome = "proposed"
                return self.approvals.propose(actor, "purpose_policy", params, event)
            return self._apply_purpose(actor.tenant_id, params, event)

    def _apply_purpose(self, tenant_id: str, params: dict[str, Any], event: AuditEvent) -> dict[str, Any]:
        now = self.ctx.clock()
        spec = policy.PurposeSpec(params["name"], params["description"], frozenset(params["legal_bases"]),
                                  params["retention_days"], params["subject_category"],
                                  params["law_enforcement_searchable"], params.get("liveness_required", False),
                                  params.get("target_fmr", policy.DEFAULT_TARGET_FMR),
                                  params.get("light_challenge", False))
        ends_at = datetime.fromisoformat(params["ends_at"]) if params.get("ends_at") else None
        with self.ctx.db.session() as s:
            if spec.law_enforcement_searchable:
                held = repositories.count_subjects_not_on_law(s, tenant_id, spec.name)
                if held:
                    raise Conflict(f"{held} subjects were enrolled for '{spec.name}' on consent or contract; their "
                                   "templates can never become searchable by law enforcement.",
                                   code="searchable_needs_law")
            repositories.bump_gallery_generation(s)  # the galleries re-read retention and purposes
            fresh = purpose_row(tenant_id, spec, ends_at, now)
            row = s.get(Purpose, (tenant_id, spec.name))
            if row is None:
                row = fresh
                s.add(row)
            else:  # the policy changes; when the purpose was created does not
                for column in _POLICY_COLUMNS:
                    setattr(row, column, getattr(fresh, column))
            event.details = {k: f"{v:g}" if k == "target_fmr" else v  # the audit log takes no floats
                             for k, v in params.items() if k != "description"}
            event.outcome = "applied"
            self.ctx.audit.append(s, event)
            return {"purpose": purpose_json(row), "status": "applied"}

    # -- police-search policy of an administering agency ------------------------------------
    def set_le_policy(self, actor: Actor, *, allowed_uses: set[str], allow_own_agency_review: bool,
                      searches_per_grant: int, grant_days: int, max_candidates: int) -> dict[str, Any]:
        with self.ctx.audited(actor, "le_policy_set", roles.ADMIN) as event:
            if not allowed_uses or not allowed_uses <= policy.AUTHORISED_USES:
                raise InvalidInput(f"allowed_uses must be a non-empty subset of {sorted(policy.AUTHORISED_USES)}.",
                                   code="invalid_policy")
            if not (1 <= searches_per_grant <= 100 and 1 <= grant_days <= 365 and 1 <= max_candidates <= 50):
                raise InvalidInput("searches_per_grant 1-100, grant_days 1-365, max_candidates 1-50.",
                                   code="invalid_policy")
            params = {"allowed_uses": sorted(allowed_uses), "allow_own_agency_review": allow_own_agency_review,
                      "searches_per_grant": searches_per_grant, "grant_days": grant_days,
                      "max_candidates": max_candidates}
            with self.ctx.db.session(readonly=True) as s:
                exists = s.get(LawEnforcementPolicy, actor.tenant_id) is not None
            if exists and not actor.is_local_admin:
                event.outcome = "proposed"
                return self.approvals.propose(actor, "le_policy", params, event)
            return self._apply_le_policy(actor.tenant_id, params, event)

    def _apply_le_policy(self, tenant_id: str, params: dict[str, Any], event: AuditEvent) -> dict[str, Any]:
        with self.ctx.db.session() as s:
            row = s.get(LawEnforcementPolicy, tenant_id)
            if row is None:
                row = LawEnforcementPolicy(tenant_id=tenant_id)
                s.add(row)
            row.allowed_uses = ",".join(params["allowed_uses"])
            row.allow_own_agency_review = params["allow_own_agency_review"]
            row.searches_per_grant, row.grant_days = params["searches_per_grant"], params["grant_days"]
            row.max_candidates, row.updated_at = params["max_candidates"], self.ctx.clock()
            event.details, event.outcome = params, "applied"
            self.ctx.audit.append(s, event)
        return {"le_policy": params, "status": "applied"}

    # -- batch erasure ------------------------------------------------------------------------
    def erase_many(self, actor: Actor, external_ids: list[str]) -> dict[str, Any]:
        """Erase several subjects. Above the threshold a second administrator must approve."""
        with self.ctx.audited(actor, "bulk_erase", roles.OPERATOR, roles.ADMIN) as event:
            ids = sorted(set(external_ids))
            if not ids or len(ids) > 10_000:
                raise InvalidInput("Send 1-10000 subject references.", code="invalid_subjects")
            if len(ids) > self.ctx.settings.bulk_erase_dual_control_threshold and not actor.is_local_admin:
                actor.require(roles.ADMIN)
                event.outcome = "proposed"
                return self.approvals.propose(actor, "bulk_erase", {"subjects": ids}, event)
            actor.require(roles.OPERATOR)
            event.outcome, event.details = "executed", {"count": len(ids)}
            self.ctx.audit.record(event)
        return self.rights.erase_all(actor, ids)
