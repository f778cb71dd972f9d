"""Key-encryption keys: status, rotation (dual control over the API) and retirement of unused versions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from facewarden.governance import roles
from facewarden.governance.actors import Actor
from facewarden.service.approvals import DualControl
from facewarden.service.context import ServiceContext


class KeyManagement:
    def __init__(self, ctx: ServiceContext, approvals: DualControl) -> None:
        self.ctx = ctx
        self.approvals = approvals
        approvals.register("key_rotation", self._rotate_approved)

    def status(self, actor: Actor) -> dict[str, Any]:
        self.ctx.require_deployment_admin(actor, "key_status")
        return self.ctx.keyring.status()

    def rotate(self, actor: Actor, *, retire_old: bool = False,
               progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """New KEK version; every data key rewrapped under it. Over the API it takes two administrators
        (dual control): the first proposes, the second approves."""
        if not actor.is_local_admin:
            self.ctx.require_deployment_admin(actor, "key_rotate")
            with self.ctx.audited(actor, "key_rotate", roles.ADMIN) as event:
                event.outcome = "proposed"
                return self.approvals.propose(actor, "key_rotation", {"retire_old": retire_old}, event)
        return self._rotate(actor, retire_old=retire_old, progress=progress)

    def _rotate_approved(self, approver: Actor, params: dict[str, Any]) -> dict[str, Any]:
        return self._rotate(approver, retire_old=bool(params.get("retire_old")))

    def _rotate(self, actor: Actor, *, retire_old: bool = False,
                progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """Templates are not touched. The keys live outside the main database, so the entry is written once the
        key store has committed."""
        keyring = self.ctx.keyring
        with self.ctx.audited(actor, "key_rotate", roles.ADMIN) as event:
            new_version = keyring.rotate()
            rewrapped = keyring.rewrap_all(progress)
            event.details = {"kek_version": new_version, "data_keys_rewrapped": rewrapped,
                             "provider": keyring.kek.name}
            self.ctx.audit.record(event)
        retired = self.retire_unused(actor) if retire_old else []
        return {"current_version": new_version, "rewrapped": rewrapped, "retired": retired,
                "versions": keyring.kek.versions()}

    def retire_unused(self, actor: Actor) -> list[int]:
        with self.ctx.audited(actor, "key_retire", roles.ADMIN) as event:
            retired = self.ctx.keyring.retire_unused()
            event.details = {"kek_versions_retired": retired}
            self.ctx.audit.record(event)
        return retired
