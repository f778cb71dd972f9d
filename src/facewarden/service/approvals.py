"""Dual control: one administrator proposes, a different one approves, and only then the action runs.

The actions themselves belong to other families (keys, rights, accounts, governance); they register an executor
for their kind when the service is wired, so this family depends on none of them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from facewarden.audit import AuditEvent
from facewarden.errors import Conflict, Forbidden, InvalidInput, NotFound
from facewarden.governance import roles
from facewarden.governance.actors import Actor
from facewarden.service.common import aware, iso
from facewarden.service.context import ServiceContext
from facewarden.store import PendingAction, repositories
from facewarden.store.db import NUL_MESSAGE, has_nul

PENDING_ACTION_TTL = timedelta(days=7)
Executor = Callable[[Actor, dict[str, Any]], dict[str, Any]]


class DualControl:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._executors: dict[str, Executor] = {}

    def register(self, kind: str, executor: Executor) -> None:
        """`executor(approver, params)` runs the approved action in the approver's name."""
        self._executors[kind] = executor

    def propose(self, actor: Actor, kind: str, params: dict[str, Any], event: AuditEvent) -> dict[str, Any]:
        """Record the proposal and its audit entry; the caller's event says what was proposed."""
        if kind not in self._executors:
            raise InvalidInput(f"Unknown action kind {kind}.")
        if has_nul(params):  # stored as JSON (escaped), it would only fail once approved
            raise InvalidInput(NUL_MESSAGE, code="nul_byte_in_text")
        action_id = str(uuid.uuid4())
        with self.ctx.db.session() as s:
            s.add(PendingAction(id=action_id, tenant_id=actor.tenant_id, kind=kind, params=json.dumps(params),
                                requested_by=actor.principal, status="pending", created_at=self.ctx.clock()))
            event.details = {"pending_action": action_id, "kind": kind}
            self.ctx.audit.append(s, event)
        return {"pending_action": action_id, "kind": kind, "status": "pending",
                "message": "Dual control: a second administrator must approve this pending action."}

    def list_pending(self, actor: Actor) -> list[dict[str, Any]]:
        self.ctx.require(actor, "dual_control_list", roles.ADMIN)
        with self.ctx.db.session(readonly=True) as s:
            return [{"id": r.id, "kind": r.kind, "requested_by": r.requested_by, "created_at": iso(r.created_at),
                     "params": json.loads(r.params)} for r in repositories.pending_actions(s, actor.tenant_id)]

    def approve(self, actor: Actor, action_id: str) -> dict[str, Any]:
        """The second administrator approves: the action runs now, in their name and the proposer's."""
        ctx = self.ctx
        with ctx.audited(actor, "dual_control_approve", roles.ADMIN, details={"pending_action": action_id}) as event:
            with ctx.db.session() as s:
                action = s.get(PendingAction, action_id, with_for_update=True)
                if action is None or action.tenant_id != actor.tenant_id:
                    raise NotFound("No such pending action in your tenant.")
                if action.status != "pending":
                    raise Conflict(f"This action is already {action.status}.", code="action_decided")
                if action.requested_by == actor.principal:
                    raise Forbidden("Dual control: the administrator who proposed an action cannot approve it.",
                                    code="same_person")
                expired = aware(action.created_at) + PENDING_ACTION_TTL <= ctx.clock()  # type: ignore[operator]
                if expired:
                    action.status = "expired"  # committed with this unit of work; the refusal follows it
                else:
                    # Claimed under the lock, so two approvers cannot both run it; released again if it fails.
                    action.status, action.approved_by, action.decided_at = "approved", actor.principal, ctx.clock()
                kind, params, proposer = action.kind, json.loads(action.params), action.requested_by
            if expired:
                raise Conflict("This proposal is older than 7 days; propose it again.", code="action_expired")
            try:
                executor = self._executors.get(kind)
                if executor is None:
                    raise InvalidInput(f"Unknown action kind {kind}.")
                result = executor(actor, params)
            except Exception:
                with ctx.db.session() as s:
                    s.get(PendingAction, action_id).status = "pending"  # type: ignore[union-attr]
                raise
            with ctx.db.session() as s:
                s.get(PendingAction, action_id).status = "executed"  # type: ignore[union-attr]
                event.details = {"pending_action": action_id, "kind": kind, "proposed_by": proposer}
                event.outcome = "approved"
                ctx.audit.append(s, event)
            return {"pending_action": action_id, "kind": kind, "result": result}

    def reject(self, actor: Actor, action_id: str, reason: str) -> dict[str, Any]:
        ctx = self.ctx
        with ctx.audited(actor, "dual_control_reject", roles.ADMIN, details={"pending_action": action_id}) \
                as event, ctx.db.session() as s:
            action = s.get(PendingAction, action_id, with_for_update=True)
            if action is None or action.tenant_id != actor.tenant_id or action.status != "pending":
                raise NotFound("No such pending action in your tenant.")
            action.status, action.approved_by, action.decided_at = "rejected", actor.principal, ctx.clock()
            event.outcome = "rejected"
            ctx.audit.append(s, event)
        return {"pending_action": action_id, "status": "rejected", "reason": reason}
