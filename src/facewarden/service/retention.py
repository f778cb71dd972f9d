"""The retention job: destroy what has passed its consent term, purpose or retention period, close emergency
police searches nobody followed up, and destroy probes and liveness frames past their date."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from facewarden.audit import AuditEvent
from facewarden.governance import roles
from facewarden.governance.actors import LOCAL_ADMIN, Actor
from facewarden.service.common import retain_until
from facewarden.service.context import ServiceContext
from facewarden.service.keys import KeyManagement
from facewarden.service.liveness import Liveness
from facewarden.service.police import PoliceSearch
from facewarden.service.rights import SubjectRights
from facewarden.store import Subject, repositories

log = logging.getLogger("facewarden.governance")


class Retention:
    def __init__(self, ctx: ServiceContext, rights: SubjectRights, police: PoliceSearch, liveness: Liveness,
                 keys: KeyManagement) -> None:
        self.ctx = ctx
        self.rights = rights
        self.police = police
        self.liveness = liveness
        self.keys = keys

    def start(self, interval_s: float) -> threading.Event:
        """Run the retention job every `interval_s` seconds in the background, and the key-intent recovery every
        `key_recovery_interval_s`; set the event to stop."""
        stop = threading.Event()
        recovery_s = self.ctx.settings.key_recovery_interval_s
        tick = max(1.0, min(interval_s, recovery_s))

        def run() -> None:
            now = time.monotonic()
            next_retention, next_recovery = now + interval_s, now + recovery_s
            while not stop.wait(tick):
                now = time.monotonic()
                for due, job, name in ((next_recovery, lambda: self.keys.recover(LOCAL_ADMIN), "key recovery"),
                                       (next_retention, lambda: self.run(LOCAL_ADMIN), "the retention job")):
                    if now < due:
                        continue
                    try:
                        job()
                    except Exception:  # retried at the next interval; the failure is logged
                        log.exception("%s failed", name)
                next_recovery = next_recovery if now < next_recovery else now + recovery_s
                next_retention = next_retention if now < next_retention else now + interval_s

        threading.Thread(target=run, name="retention", daemon=True).start()
        return stop

    def run(self, actor: Actor) -> dict[str, Any]:
        """Destroy every template whose consent term, purpose or retention period has run out (BIPA: at the
        latest 3 years after the last interaction), and close emergency police searches with no written
        request after 48 hours. Runs on a schedule in `serve`; administrators can run it on demand."""
        ctx = self.ctx
        if not actor.is_local_admin:
            ctx.require_deployment_admin(actor, "retention_run")  # records its own refusal
        with ctx.audited(actor, "retention_run", roles.ADMIN) as event:
            now = ctx.clock()
            with ctx.db.session(readonly=True) as s:
                purposes = repositories.all_purposes(s)
                due = [(subject.tenant_id, subject.id) for subject in repositories.all_subjects(s)
                       if retain_until(subject, purposes.get((subject.tenant_id, subject.purpose))) <= now]
            for tenant_id, subject_id in due:
                with ctx.db.session() as s:
                    subject = s.get(Subject, subject_id, with_for_update=True)
                    if subject is not None:
                        self.rights.shred(s, subject, AuditEvent(tenant_id, actor.principal, "retention_erase"),
                                          "retention_expired")
            emergencies = self.police.expire_emergencies(actor)
            probes = self.police.expire_probes(actor)
            frames = self.liveness.expire_frames()
            self.keys.recover(actor)  # what a crash left between the key store and the main database
            event.details = {"subjects_destroyed": len(due), "emergencies_flagged": emergencies,
                             "probes_destroyed": probes, "liveness_frame_sets_destroyed": frames}
            ctx.audit.record(event)
        return {"subjects_destroyed": len(due), "emergencies_flagged": emergencies, "ran_at": now.isoformat()}
