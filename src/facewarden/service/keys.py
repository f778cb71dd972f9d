"""Key-encryption keys: status, rotation (dual control over the API) and retirement of unused versions; and the
recovery of the key store's intent journal after a crash (which keys the main database still uses)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from facewarden.audit import AuditEvent
from facewarden.crypto.intents import RecoveryReport, key_uses
from facewarden.faults import RECOVERY_DISABLED, crash_point
from facewarden.governance import roles
from facewarden.governance.actors import Actor
from facewarden.service.approvals import DualControl
from facewarden.service.context import ServiceContext
from facewarden.store import Database, LivenessFrame, SearchRequest, Subject

_CHUNK = 500


def referenced_keys(db: Database, key_ids: list[str]) -> set[str]:
    """The key ids among `key_ids` whose records the main database still holds: a subject (its templates), a
    police request with its probe photo, a liveness session with sealed frames."""
    wanted: dict[str, dict[tuple[str, ...], list[str]]] = {"subject": {}, "probe": {}, "liveness": {}}
    for key_id in key_ids:
        for kind, ids in key_uses(key_id):
            wanted[kind].setdefault(ids, []).append(key_id)
    used: set[str] = set()
    with db.session(readonly=True) as s:
        subjects = list(wanted["subject"])
        for i in range(0, len(subjects), _CHUNK):
            chunk = subjects[i:i + _CHUNK]
            rows = s.execute(select(Subject.tenant_id, Subject.id).where(Subject.id.in_([c[1] for c in chunk])))
            used.update(k for r in rows for k in wanted["subject"].get((r.tenant_id, r.id), []))
        for kind, query in (("probe", lambda ids: select(SearchRequest.id).where(
                                SearchRequest.id.in_(ids), SearchRequest.probe.is_not(None))),
                            ("liveness", lambda ids: select(LivenessFrame.session_id).where(
                                LivenessFrame.session_id.in_(ids)).distinct())):
            ids = [c[0] for c in wanted[kind]]
            for i in range(0, len(ids), _CHUNK):
                for (found,) in s.execute(query(ids[i:i + _CHUNK])):
                    used.update(wanted[kind].get((found,), []))
    return used


class KeyManagement:
    def __init__(self, ctx: ServiceContext, approvals: DualControl) -> None:
        self.ctx = ctx
        self.approvals = approvals
        approvals.register("key_rotation", self._rotate_approved)
        ctx.keyring.resolver = lambda ids: referenced_keys(ctx.db, ids)

    def status(self, actor: Actor) -> dict[str, Any]:
        self.ctx.require_deployment_admin(actor, "key_status")
        status = self.ctx.keyring.status()
        status["orphan_keys"] = len(self.ctx.keyring.orphan_ids())
        return status

    # -- recovery of the intent journal -----------------------------------------------------------
    def recover(self, actor: Actor, *, orphans: bool = False, purge_orphans: bool = False,
                grace_s: float | None = None) -> dict[str, Any]:
        """Finish or undo what a crash left between the key store and the main database (start-up, the retention
        job's schedule, `facewarden keys recover`). Recorded in the audit log when it changed anything."""
        if not actor.is_local_admin:
            self.ctx.require_deployment_admin(actor, "key_recover")
        if RECOVERY_DISABLED:  # the crash bench's baseline only (facewarden/faults.py)
            return RecoveryReport().as_dict()
        grace = timedelta(seconds=self.ctx.settings.key_recovery_grace_s if grace_s is None else grace_s)
        report = self.ctx.keyring.recover(grace, orphans=orphans, purge_orphans=purge_orphans)
        if report.resolved() or report.orphans_purged:
            # Counts only: which keys were resolved says nothing an erasure's own entry does not.
            self.ctx.audit.record(AuditEvent(actor.tenant_id, actor.principal, "key_recover", outcome="resolved",
                                             details=report.as_dict()))
        return report.as_dict()

    # -- rotation -------------------------------------------------------------------------------------
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
        key store has committed. A crash midway leaves keys under two versions, both still in the KEK (a version
        is retired only once no key uses it): every key still opens, and the next rotation finishes the job."""
        keyring = self.ctx.keyring
        with self.ctx.audited(actor, "key_rotate", roles.ADMIN) as event:
            new_version = keyring.rotate()
            rewrapped = keyring.rewrap_all(progress)
            event.details = {"kek_version": new_version, "data_keys_rewrapped": rewrapped,
                             "provider": keyring.kek.name}
            self.ctx.audit.record(event)
        crash_point("rotate.before_retire")
        retired = self.retire_unused(actor) if retire_old else []
        return {"current_version": new_version, "rewrapped": rewrapped, "retired": retired,
                "versions": keyring.kek.versions()}

    def retire_unused(self, actor: Actor) -> list[int]:
        with self.ctx.audited(actor, "key_retire", roles.ADMIN) as event:
            retired = self.ctx.keyring.retire_unused()
            event.details = {"kek_versions_retired": retired}
            self.ctx.audit.record(event)
        return retired
