"""What every family of use cases is given: settings, the unit of work, the audit log, the clock, the key ring,
the gallery, the embedder, and the few checks they all make (role, audit of refusals, per-person limits)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from facewarden.audit import AuditEvent, AuditLog
from facewarden.audit.entries import utc_timestamp
from facewarden.config import Settings
from facewarden.errors import FaceWardenError, Forbidden, InternalError, RateLimited
from facewarden.gallery import Gallery
from facewarden.governance import roles
from facewarden.governance.actors import DEFAULT_TENANT, Actor
from facewarden.imaging import ImageLimits, decode_image
from facewarden.store import Database, repositories
from facewarden.vision.selection import allows_dominant, probe_face

if TYPE_CHECKING:
    import numpy as np

    from facewarden.crypto.keyring import KeyRing
    from facewarden.vision import DetectedFace, Embedder


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ServiceContext:
    settings: Settings
    db: Database  # the unit of work: `with ctx.db.session() as s:` commits or rolls back as one
    audit: AuditLog
    keyring: KeyRing
    gallery: Gallery
    embedder_factory: Callable[[], Embedder]
    clock: Callable[[], datetime] = utc_now  # tests move it to check retention and expiries
    limits: ImageLimits = field(init=False)

    def __post_init__(self) -> None:
        self.limits = ImageLimits(self.settings.max_upload_bytes, self.settings.max_image_pixels)

    @cached_property
    def embedder(self) -> Embedder:
        """Loaded on first use: key and admin commands never pay for the models."""
        embedder = self.embedder_factory()
        shape = (self.gallery.dimension, self.gallery.metric)
        if shape != (embedder.dimension, embedder.metric):
            raise InternalError(f"The gallery holds {shape[0]}-D {shape[1]} embeddings but the embedder makes "
                                f"{embedder.dimension}-D {embedder.metric} ones; configure matching parts.",
                                code="config")
        return embedder

    # -- faces -------------------------------------------------------------------------------
    def decode(self, image: bytes) -> np.ndarray:
        return decode_image(image, self.limits)

    def probe(self, image: bytes) -> DetectedFace:
        """The one usable face of an enrolment photo (its main face where `enrol_main_face`), or an input error."""
        return probe_face(self.embedder, self.decode(image), dominant=self.settings.enrol_main_face,
                          margin=self.settings.dominant_face_margin)

    def probe_for(self, image: bytes | np.ndarray, purpose: str) -> DetectedFace:
        """The one usable face of a probe for `purpose` (photo bytes, or an already decoded picture): its main
        face where `dominant_face_purposes` allows that purpose, else exactly one face; or an input error."""
        rgb = self.decode(image) if isinstance(image, bytes) else image
        return probe_face(self.embedder, rgb, margin=self.settings.dominant_face_margin,
                          dominant=allows_dominant(purpose, self.settings.dominant_face_purposes))

    # -- the audit log and the checks every use case makes ---------------------------------------
    @contextmanager
    def audited(self, actor: Actor, operation: str, *allowed_roles: str, **fields: Any) -> Iterator[AuditEvent]:
        """Run a use case under an audit event. The use case appends it inside its own transaction
        (`ctx.audit.append(s, event)`); if the use case is refused instead, the refusal is recorded alone.
        Errors that are not refusals roll everything back and leave no entry: nothing happened."""
        event = AuditEvent(actor.tenant_id, actor.principal, operation, **fields)
        try:
            if allowed_roles:
                actor.require(*allowed_roles)
            yield event
        except FaceWardenError as exc:
            if not event.committed:
                event.outcome = exc.code
                self.audit.record(event)
            raise

    def require(self, actor: Actor, operation: str, *allowed: str) -> None:
        """A role check for reads that are not logged when allowed: the refusal still is."""
        try:
            actor.require(*allowed)
        except Forbidden as exc:
            self.audit.record(AuditEvent(actor.tenant_id, actor.principal, operation, outcome=exc.code))
            raise

    def require_deployment_admin(self, actor: Actor, operation: str) -> None:
        """Key-encryption keys and the retention job serve every tenant: only the deployment's own
        administrators run them."""
        self.require(actor, operation, roles.ADMIN)
        if actor.tenant_id != DEFAULT_TENANT:
            self.audit.record(AuditEvent(actor.tenant_id, actor.principal, operation, outcome="deployment_only"))
            raise Forbidden("Keys and the retention job serve every tenant; the deployment's administrators "
                            f"(tenant '{DEFAULT_TENANT}') run them.", code="deployment_only")

    def check_rate(self, actor: Actor, operations: tuple[str, ...], limit: int, window: timedelta, *,
                   code: str = "person_rate_limited") -> None:
        """Per-person limits, counted from the audit log itself, so they hold across processes."""
        since = utc_timestamp(self.clock() - window)
        with self.db.session(readonly=True) as s:
            used = repositories.count_operations(s, actor.principal, operations, since)
        if used >= limit:
            raise RateLimited(f"You ran {used} of these operations in the last {window}; the limit per person is "
                              f"{limit}. Ask an administrator if this is legitimate work.", code=code)

    def check_search_rate(self, actor: Actor) -> None:
        """Identifications and police searches count together against one person's daily limit."""
        self.check_rate(actor, roles.SEARCH_OPERATIONS, self.settings.person_search_limit_per_day, timedelta(days=1))
