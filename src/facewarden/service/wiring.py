"""Where the parts are put together: one context, one object per family of use cases, wired once."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime

from facewarden import faults
from facewarden.audit import AuditLog, LogSigner, make_witness
from facewarden.config import Settings
from facewarden.crypto.keyring import KeyRing, make_keyring
from facewarden.gallery import Gallery, make_gallery
from facewarden.governance.actors import LOCAL_ADMIN
from facewarden.service.accounts import Accounts
from facewarden.service.approvals import DualControl
from facewarden.service.auditing import Auditing
from facewarden.service.calibration import Calibrations
from facewarden.service.compare import Comparing
from facewarden.service.context import ServiceContext
from facewarden.service.governance import Governance
from facewarden.service.keys import KeyManagement
from facewarden.service.liveness import Liveness
from facewarden.service.matching import Matching
from facewarden.service.police import PoliceSearch
from facewarden.service.reports import Reports
from facewarden.service.retention import Retention
from facewarden.service.rights import SubjectRights
from facewarden.service.telemetry import Telemetry
from facewarden.store import Database
from facewarden.vision import Embedder

log = logging.getLogger("facewarden.service")


class FaceService:
    """The use cases, by family. Adapters call `service.<family>.<use case>(actor, ...)`; policy is enforced
    there, so no adapter can forget a check."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.approvals = DualControl(ctx)
        self.accounts = Accounts(ctx, self.approvals)
        self.liveness = Liveness(ctx)
        self.matching = Matching(ctx, self.liveness)
        self.comparing = Comparing(ctx, self.liveness)
        self.telemetry = Telemetry(ctx)  # counts operations from the audit log incrementally: one per service
        self.rights = SubjectRights(ctx, self.approvals)
        self.keys = KeyManagement(ctx, self.approvals)
        self.governance = Governance(ctx, self.approvals, self.rights)
        self.police = PoliceSearch(ctx)
        self.retention = Retention(ctx, self.rights, self.police, self.liveness, self.keys)
        self.auditing = Auditing(ctx)
        self.reports = Reports(ctx)
        self.calibration = Calibrations(ctx)  # operating points: the threshold of each purpose

    # The parts the adapters, the benches and the tests reach for.
    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def db(self) -> Database:
        return self.ctx.db

    @property
    def audit(self) -> AuditLog:
        return self.ctx.audit

    @property
    def keyring(self) -> KeyRing:
        return self.ctx.keyring

    @property
    def gallery(self) -> Gallery:
        return self.ctx.gallery

    @property
    def embedder(self) -> Embedder:
        return self.ctx.embedder

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.ctx.clock

    @clock.setter
    def clock(self, clock: Callable[[], datetime]) -> None:
        self.ctx.clock = clock

    def close(self) -> None:
        """Release the database connections (tests and short-lived CLI runs)."""
        self.ctx.db.dispose()
        self.ctx.keyring.store.engine.dispose()


def build_service(settings: Settings | None = None, *, create: bool = False,
                  engine_factory: Callable[[], Embedder] | None = None) -> FaceService:
    """Wire the service from settings. `create=True` (facewarden init) makes the home, keys and schema."""
    from facewarden.vision.batch import EngineOptions
    from facewarden.vision.engine import FaceEngine

    settings = settings or Settings()
    if faults.ACTIVE:
        log.warning("FACEWARDEN_TEST_FAULTS is set: this process kills itself at test crash points. Never set it "
                    "outside the crash tests.")
    if create:
        settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(settings.home, 0o700)
    keyring = make_keyring(settings, create=create)
    db = Database(settings.resolved_database_url)
    db.upgrade()
    verify = settings.audit_witness_ca or True
    audit = AuditLog(db, LogSigner.from_file(settings.resolved_audit_signing_key, create=create),
                     [make_witness(w, verify=verify) for w in settings.resolved_audit_witnesses])
    embedder_factory = engine_factory or EngineOptions.from_settings(settings).engine
    # The gallery compares embeddings the way the embedder does (the dlib engine's dimension and metric).
    gallery = make_gallery(settings.gallery, dimension=FaceEngine.dimension, metric=FaceEngine.metric)
    service = FaceService(ServiceContext(settings, db, audit, keyring, gallery, embedder_factory))
    service.accounts.ensure_tenant()
    # What a crash left half-way between the key store and the main database is finished or undone before any
    # request is served (intents of processes still running elsewhere wait for their grace period).
    service.keys.recover(LOCAL_ADMIN)
    return service
