"""The FaceWarden use cases: enrol, verify (1:1), identify (1:N), unlock, erase, export, rotate keys."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import numpy as np
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from facewarden.audit import AuditEvent, AuditLog, AuditQuery, LogSigner, make_witness
from facewarden.audit.entries import utc_timestamp
from facewarden.config import Settings
from facewarden.crypto.envelope import TemplateAAD, open_sealed, seal
from facewarden.crypto.kek import KeyEncryptionKeyProvider
from facewarden.crypto.local import LocalKeyFileProvider
from facewarden.crypto.vault import DataKeyVault, make_vault_engine
from facewarden.errors import (
    Conflict,
    FaceWardenError,
    Forbidden,
    InvalidInput,
    Locked,
    NotFound,
    Unauthorized,
)
from facewarden.gallery import GalleryEntry, InMemoryGallery
from facewarden.governance import policy
from facewarden.imaging import ImageLimits, decode_image
from facewarden.service import roles
from facewarden.service.common import (
    DEFAULT_TENANT,
    LOCAL_ADMIN_PRINCIPAL,
    SUBJECT_TOKEN_PREFIX,
    Actor,
    _aware,
    _now,
    iso,
    purpose_row,
    retain_until,
)
from facewarden.service.common import LOCAL_ADMIN as LOCAL_ADMIN  # re-exported: adapters and tests use it here
from facewarden.service.governance import GovernanceUseCases
from facewarden.service.lawenforcement import SEARCH_OPERATIONS, LawEnforcementUseCases
from facewarden.service.liveness import LivenessUseCases
from facewarden.store import (
    ApiKey,
    AuditEntry,
    Database,
    LivenessFrame,
    LivenessSession,
    Person,
    Purpose,
    ServiceState,
    Subject,
    Template,
    Tenant,
)
from facewarden.vision import DetectedFace, FaceEngine
from facewarden.vision.batch import EngineOptions

log = logging.getLogger("facewarden.service")

PASSCODE_ATTEMPTS = 10  # wrong passcodes before only an administrator can reset it
_hasher = PasswordHasher()  # Argon2id with argon2-cffi's RFC 9106 low-memory profile


def _embedding_bytes(vec: np.ndarray) -> bytes:
    return np.asarray(vec, dtype="<f4").tobytes()


def _embedding_from(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype="<f4").copy()


@dataclass
class EnrolRequest:
    external_id: str
    images: list[bytes]
    purpose: str
    legal_basis: str
    display_name: str | None = None
    consent_given_at: datetime | None = None
    consent_method: str | None = None
    consent_text: str | None = None
    expires_at: datetime | None = None
    passcode: str | None = None


@dataclass(frozen=True)
class VerifyResult:
    subject: str
    match: bool
    distance: float | None  # None unless the caller is an operator: devices get the decision only
    threshold: float
    attempts_left: int
    locked: bool


@dataclass(frozen=True)
class Candidate:
    subject: str
    subject_id: str
    distance: float


@dataclass(frozen=True)
class IdentifiedFace:
    box: tuple[int, int, int, int]
    candidates: list[Candidate] = field(default_factory=list)


class FaceService(GovernanceUseCases, LawEnforcementUseCases, LivenessUseCases):
    def __init__(self, settings: Settings, db: Database, vault: DataKeyVault, audit: AuditLog,
                 engine_factory: Callable[[], FaceEngine] | None = None) -> None:
        self.settings = settings
        self.db = db
        self.vault = vault
        self.audit = audit
        self.gallery = InMemoryGallery()
        self._engine_factory = engine_factory or EngineOptions.from_settings(settings).engine
        self.limits = ImageLimits(settings.max_upload_bytes, settings.max_image_pixels)
        self.clock: Callable[[], datetime] = _now  # tests move it to check retention and expiries

    @cached_property
    def engine(self) -> FaceEngine:
        """Loaded on first use: key and admin commands never pay for the models."""
        return self._engine_factory()

    # -- audit -----------------------------------------------------------------------------
    @contextmanager
    def _audited(self, actor: Actor, operation: str, *allowed_roles: str, **fields: Any) -> Iterator[AuditEvent]:
        """Run a use case under an audit event. The use case appends it inside its own transaction
        (`self.audit.append(s, event)`); if the use case is refused instead, the refusal is recorded alone.
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

    def record_login_failure(self, client: str, reason: str) -> None:
        self.audit.record(AuditEvent("-", f"anonymous@{client}", "login", outcome=reason))

    # -- tenants and API keys --------------------------------------------------------------
    def ensure_tenant(self, tenant_id: str = DEFAULT_TENANT, name: str | None = None) -> None:
        """Create the tenant if it is new, with the default purpose policies."""
        with self.db.session() as s:
            if s.get(Tenant, tenant_id) is None:
                now = self.clock()
                s.add(Tenant(id=tenant_id, name=name or tenant_id, created_at=now))
                s.flush()
                for spec in policy.DEFAULT_PURPOSES:
                    spec = replace(spec, liveness_required=spec.name in self.settings.liveness_required_purposes)
                    s.add(purpose_row(tenant_id, spec, None, now))

    def _target_tenant(self, actor: Actor, tenant_id: str | None) -> str:
        tenant = tenant_id or actor.tenant_id
        if tenant != actor.tenant_id and actor.principal != LOCAL_ADMIN_PRINCIPAL:
            raise Forbidden("Only the local administrator (CLI) acts on another tenant.", code="wrong_tenant")
        return tenant

    def add_person(self, actor: Actor, *, name: str, person_roles: set[str]) -> dict[str, Any]:
        """Over the API: a person with a deciding role (admin, reviewer, investigator) takes two administrators,
        or one administrator could mint the second person every two-person rule asks for."""
        if person_roles & roles.PERSONAL_ROLES and not actor.is_local_admin:
            with self._audited(actor, "person_create", roles.ADMIN) as event:
                if not name or len(name) > 200 or not person_roles <= roles.ALL_ROLES:
                    raise InvalidInput("A person needs a 1-200 character name and known roles.", code="invalid_roles")
                event.outcome = "proposed"
                return self._propose(actor, "person_create", {"name": name, "roles": sorted(person_roles)}, event)
        return {"person_id": self.create_person(actor, name=name, person_roles=person_roles),
                "roles": sorted(person_roles), "status": "applied"}

    def create_person(self, actor: Actor, *, name: str, person_roles: set[str],
                      tenant_id: str | None = None, _dual_approved: bool = False) -> str:
        """A named person in a tenant. Their API keys carry their roles; the audit log names them."""
        with self._audited(actor, "person_create", roles.ADMIN) as event:
            if person_roles & roles.PERSONAL_ROLES and not (actor.is_local_admin or _dual_approved):
                raise Forbidden("A person with the roles admin, reviewer or investigator needs a second "
                                "administrator's approval: POST /v1/persons proposes it.", code="dual_control_required")
            unknown = person_roles - roles.ALL_ROLES
            if unknown or not person_roles:
                raise InvalidInput(f"Unknown or missing roles {sorted(unknown)}; use {sorted(roles.ALL_ROLES)}.",
                                   code="invalid_roles")
            if not name or len(name) > 200:
                raise InvalidInput("A person's name is 1-200 characters.", code="invalid_name")
            tenant = self._target_tenant(actor, tenant_id)
            self.ensure_tenant(tenant)
            person_id = str(uuid.uuid4())
            event.details = {"person_id": person_id, "roles": sorted(person_roles), "for_tenant": tenant}
            with self.db.session() as s:
                s.add(Person(id=person_id, tenant_id=tenant, name=name, roles=",".join(sorted(person_roles)),
                             created_at=self.clock()))
                self.audit.append(s, event)
        return person_id

    def create_api_key(self, actor: Actor, *, name: str, key_roles: set[str], tenant_id: str | None = None,
                       person_id: str | None = None, purposes: set[str] | None = None) -> tuple[str, str]:
        """Return (key id, secret). The secret is shown once; only its SHA-256 is stored. Keys with the roles
        that decide or search (admin, reviewer, investigator) must belong to a person."""
        with self._audited(actor, "api_key_create", roles.ADMIN) as event:
            unknown = key_roles - roles.ALL_ROLES
            if unknown or not key_roles:
                raise InvalidInput(f"Unknown or missing roles {sorted(unknown)}; use {sorted(roles.ALL_ROLES)}.",
                                   code="invalid_roles")
            tenant = self._target_tenant(actor, tenant_id)
            self.ensure_tenant(tenant)
            key_id = str(uuid.uuid4())
            secret = "fw_" + secrets.token_urlsafe(32)
            event.details = {"key_id": key_id, "roles": sorted(key_roles), "for_tenant": tenant,
                             "person_id": person_id, "purposes": sorted(purposes) if purposes else None}
            with self.db.session() as s:
                if person_id is not None:
                    person = s.get(Person, person_id)
                    if person is None or person.tenant_id != tenant or person.disabled_at is not None:
                        raise NotFound("No such active person in that tenant.", code="person_not_found")
                    if not key_roles <= set(person.roles.split(",")):
                        raise Forbidden(f"A key can carry only its person's roles ({person.roles}).",
                                        code="role_not_held")
                elif key_roles & roles.PERSONAL_ROLES:
                    raise InvalidInput(f"Keys with the roles {sorted(roles.PERSONAL_ROLES)} must belong to a "
                                       "person (person_id): decisions are taken by named people.",
                                       code="person_required")
                s.add(ApiKey(id=key_id, tenant_id=tenant, name=name, roles=",".join(sorted(key_roles)),
                             key_hash=hashlib.sha256(secret.encode()).hexdigest(), created_at=self.clock(),
                             person_id=person_id, purposes=",".join(sorted(purposes)) if purposes else None))
                self.audit.append(s, event)
        return key_id, secret

    def revoke_api_key(self, actor: Actor, key_id: str) -> None:
        with self._audited(actor, "api_key_revoke", roles.ADMIN, details={"key_id": key_id}) as event, \
                self.db.session() as s:
            key = s.get(ApiKey, key_id)
            if key is None or key.tenant_id != actor.tenant_id:
                raise NotFound("No such API key in your tenant.")
            key.revoked_at = self.clock()
            self.audit.append(s, event)

    def authenticate(self, secret: str | None) -> Actor:
        if not secret:
            raise Unauthorized("Send your API key in the Authorization header: `Bearer fw_...`.")
        digest = hashlib.sha256(secret.encode()).hexdigest()
        with self.db.session(readonly=True) as s:
            if secret.startswith(SUBJECT_TOKEN_PREFIX):
                subject = s.scalars(select(Subject).where(Subject.subject_token_hash == digest)).first()
                if subject is None:
                    raise Unauthorized("The subject credential is unknown (the record may have been erased).")
                return Actor(subject.tenant_id, f"subject:{subject.id}", frozenset({roles.SUBJECT}),
                             subject_id=subject.id)
            key = s.scalars(select(ApiKey).where(ApiKey.key_hash == digest)).first()
            if key is None or key.revoked_at is not None:
                raise Unauthorized("The API key is unknown or revoked. Ask an administrator for a new one.")
            key_roles = frozenset(key.roles.split(","))
            bound = frozenset(key.purposes.split(",")) if key.purposes else None
            if key.person_id is None:  # a device or app: never a deciding role, whatever an old key says
                return Actor(key.tenant_id, f"apikey:{key.id}", key_roles - roles.PERSONAL_ROLES, purposes=bound)
            person = s.get(Person, key.person_id)
            if person is None or person.disabled_at is not None:
                raise Unauthorized("The person this API key belongs to is disabled.")
            return Actor(key.tenant_id, f"person:{person.id}", key_roles & set(person.roles.split(",")),
                         person_id=person.id, purposes=bound)

    # -- helpers ---------------------------------------------------------------------------
    def _subject(self, s: Session, actor: Actor, external_id: str | None, *, for_update: bool = False) -> Subject:
        """The subject in the caller's tenant; a data subject only ever reaches their own record."""
        q = select(Subject).where(Subject.tenant_id == actor.tenant_id)
        q = q.where(Subject.id == actor.subject_id) if actor.subject_id else q.where(Subject.external_id == external_id)
        if for_update:
            q = q.with_for_update()
        subject = s.scalars(q).first()
        if subject is None:
            raise NotFound(f"No subject '{external_id}' is enrolled in your tenant.")
        return subject

    @staticmethod
    def _key_id(tenant_id: str, subject_id: str) -> str:
        return f"{tenant_id}/{subject_id}"

    def _bump_generation(self, s: Session) -> None:
        s.execute(update(ServiceState).where(ServiceState.id == 1)
                  .values(gallery_generation=ServiceState.gallery_generation + 1))

    def _decrypt_templates(self, subject: Subject) -> list[tuple[Template, np.ndarray]]:
        dek = self.vault.get(self._key_id(subject.tenant_id, subject.id))
        out = []
        for t in subject.templates:
            aad = TemplateAAD(subject.tenant_id, subject.id, t.id, t.model_version).encode()
            out.append((t, _embedding_from(open_sealed(dek, t.ciphertext, aad))))
        return out

    def _probe(self, image: bytes) -> DetectedFace:
        return self.engine.single_face(decode_image(image, self.limits))

    def _matchable(self, s: Session, tenant_id: str, subject_ids: list[str], purposes: set[str], *,
                   legal_bases: set[str] | None = None) -> dict[str, str]:
        """Subject id -> reference, for the candidates the database still allows to match: right tenant and
        purpose (the in-memory gallery is only a cache), not past their retention, the legal basis if asked."""
        if not subject_ids:
            return {}
        q = select(Subject).where(Subject.id.in_(subject_ids), Subject.tenant_id == tenant_id,
                                  Subject.purpose.in_(purposes))
        if legal_bases is not None:
            q = q.where(Subject.legal_basis.in_(legal_bases))
        now = self.clock()
        rows = s.scalars(q).all()
        policies = {p.name: p for p in s.scalars(select(Purpose).where(Purpose.tenant_id == tenant_id,
                                                                      Purpose.name.in_(purposes)))}
        return {r.id: r.external_id for r in rows if retain_until(r, policies.get(r.purpose)) > now}

    def _purpose(self, s: Session, tenant_id: str, name: str) -> Purpose:
        purpose = s.get(Purpose, (tenant_id, name))
        if purpose is None:
            raise NotFound(f"Purpose '{name}' is not defined in your tenant; list them at /v1/purposes.",
                           code="unknown_purpose")
        return purpose

    def _check_rate(self, actor: Actor, operations: tuple[str, ...], limit: int, window: timedelta, *,
                    code: str = "person_rate_limited") -> None:
        """Per-person limits, counted from the audit log itself, so they hold across processes."""
        since = utc_timestamp(self.clock() - window)
        with self.db.session(readonly=True) as s:
            used = s.scalar(select(func.count()).select_from(AuditEntry).where(
                AuditEntry.actor == actor.principal, AuditEntry.operation.in_(operations), AuditEntry.at >= since))
        if (used or 0) >= limit:
            raise FaceWardenError(f"You ran {used} of these operations in the last {window}; the limit per person "
                                  f"is {limit}. Ask an administrator if this is legitimate work.",
                                  code=code, status=429)

    # -- enrol -----------------------------------------------------------------------------
    def enrol(self, actor: Actor, req: EnrolRequest,
              faces: list[DetectedFace] | None = None) -> dict[str, Any]:
        """Enrol a subject. `faces` lets bulk enrolment pass embeddings computed in parallel."""
        with self._audited(actor, "enrol", roles.OPERATOR, purpose=req.purpose or None,
                           legal_basis=req.legal_basis or None) as event:
            self._validate_enrolment(req, faces)
            if faces is None:
                faces = [self._probe(img) for img in req.images]
            return self._store_enrolment(actor, req, faces, event)

    def _store_enrolment(self, actor: Actor, req: EnrolRequest, faces: list[DetectedFace],
                         event: AuditEvent) -> dict[str, Any]:
        now = self.clock()
        with self.db.session() as s:
            purpose = self._purpose(s, actor.tenant_id, req.purpose)
            policy.check_enrolment_basis(purpose.name, frozenset(purpose.legal_bases.split(",")),
                                         _aware(purpose.ends_at), req.legal_basis, now)
            expires = _aware(req.expires_at)  # the consent term, if one was given
            exists = s.scalars(select(Subject.id).where(
                Subject.tenant_id == actor.tenant_id, Subject.external_id == req.external_id)).first()
            if exists:
                raise Conflict(f"Subject '{req.external_id}' is already enrolled. Erase it first to re-enrol.",
                               code="already_enrolled")
            credential = SUBJECT_TOKEN_PREFIX + secrets.token_urlsafe(32)
            subject = Subject(
                id=str(uuid.uuid4()), tenant_id=actor.tenant_id, external_id=req.external_id,
                display_name=req.display_name, purpose=req.purpose, legal_basis=req.legal_basis,
                consent_given_at=req.consent_given_at, consent_method=req.consent_method,
                consent_text=req.consent_text, expires_at=expires,
                passcode_hash=_hasher.hash(req.passcode) if req.passcode else None,
                failed_attempts=0, passcode_failures=0, created_at=now, updated_at=now,
                subject_token_hash=hashlib.sha256(credential.encode()).hexdigest())
            s.add(subject)
            dek = self.vault.create(self._key_id(actor.tenant_id, subject.id))
            model = self.engine.model
            entries = []
            for face in faces:
                tid = str(uuid.uuid4())
                aad = TemplateAAD(actor.tenant_id, subject.id, tid, model.version).encode()
                s.add(Template(id=tid, tenant_id=actor.tenant_id, subject_id=subject.id,
                               model_id=model.model_id, model_version=model.version,
                               ciphertext=seal(dek, _embedding_bytes(face.embedding), aad),
                               quality=face.sharpness, created_at=now))
                entries.append(GalleryEntry(actor.tenant_id, subject.id, tid, req.purpose, face.embedding))
            self._bump_generation(s)
            event.subject_id = subject.id
            event.outcome = "enrolled"
            event.details = {"templates": len(faces), "model": model.version,
                             "consent_recorded": req.consent_method is not None, "expires_at": iso(expires),
                             "passcode": req.passcode is not None}
            try:
                s.flush()
                self.audit.append(s, event)
            except Exception:
                self.vault.destroy(self._key_id(actor.tenant_id, subject.id))
                raise
        self.gallery.add(entries)
        log.info("enrolled subject=%s templates=%d tenant=%s", subject.id, len(faces), actor.tenant_id)
        return {"subject": req.external_id, "subject_id": subject.id, "templates": len(faces),
                "model": self.engine.model.label, "purpose": req.purpose, "legal_basis": req.legal_basis,
                "expires_at": iso(expires), "retain_until": retain_until(subject, purpose).isoformat(),
                # Handed to the person once: with it they export, withdraw consent or erase their own record.
                "subject_credential": credential}

    def _validate_enrolment(self, req: EnrolRequest, faces: list[DetectedFace] | None) -> None:
        if not req.external_id or len(req.external_id) > 200 or not req.external_id.isprintable():
            raise InvalidInput("`subject` must be 1-200 printable characters.", code="invalid_subject")
        if not req.purpose or len(req.purpose) > 64:
            raise InvalidInput("`purpose` is required (for example device-unlock, payment, login).",
                               code="invalid_purpose")
        if req.legal_basis not in policy.LEGAL_BASES:
            raise InvalidInput(f"`legal_basis` must be one of {sorted(policy.LEGAL_BASES)}.",
                               code="invalid_legal_basis")
        if req.legal_basis == "consent" and (req.consent_given_at is None or not req.consent_method):
            raise InvalidInput("Enrolment on consent needs `consent_given_at` and `consent_method` "
                               "(when and how the person agreed).", code="consent_missing")
        if req.expires_at is not None and _aware(req.expires_at) <= self.clock():  # type: ignore[operator]
            raise InvalidInput("`expires_at` is in the past.", code="invalid_expiry")
        if req.passcode is not None and not (6 <= len(req.passcode) <= 128):
            raise InvalidInput("A passcode must be 6-128 characters.", code="invalid_passcode")
        n = len(faces) if faces is not None else len(req.images)
        if not 1 <= n <= self.settings.max_images_per_enrolment:
            raise InvalidInput(f"Send 1 to {self.settings.max_images_per_enrolment} photos per enrolment.",
                               code="image_count")

    # -- verify (1:1) ----------------------------------------------------------------------
    def verify(self, actor: Actor, external_id: str, image: bytes, *, purpose: str,
               liveness_session: str | None = None) -> VerifyResult:
        """1:1, for the purpose the caller states; a template matches only for the purpose it was enrolled for.
        Where the purpose requires it, a passed liveness session of this subject and device is consumed."""
        with self._audited(actor, "verify", roles.OPERATOR, roles.VERIFIER, purpose=purpose) as event:
            actor.check_purpose(purpose)
            self._check_rate(actor, ("verify",), self.settings.person_verify_limit_per_hour, timedelta(hours=1))
            return self._verify(actor, external_id, image, purpose, liveness_session, event)

    def _verify(self, actor: Actor, external_id: str, image: bytes, purpose: str, liveness_session: str | None,
                event: AuditEvent) -> VerifyResult:
        with self.db.session(readonly=True) as s:
            subject = self._subject(s, actor, external_id)
            self._describe(event, subject)
            policy.check_match_purpose(subject.purpose, purpose)
            self._check_usable(s, subject)
            needs_liveness = self.liveness_required(s, subject)
            if needs_liveness and not liveness_session:
                self._consume_liveness(s, actor, subject, None)  # refuses, before any face work
        probe = self._probe(image)  # a bad photo is an input error, not a failed attempt
        with self.db.session() as s:
            subject = self._subject(s, actor, external_id, for_update=True)
            self._check_usable(s, subject)
            if needs_liveness:
                self._consume_liveness(s, actor, subject, liveness_session)  # single use, with this attempt
            # Embeddings of different models are not comparable: only this model's templates count.
            model = self.engine.model.version
            stored = [(t, v) for t, v in self._decrypt_templates(subject) if t.model_version == model]
            if not stored:
                raise Conflict(f"The templates of '{external_id}' were made by another face model; re-enrol the "
                               "subject with the current model.", code="model_mismatch")
            distance = float(min(np.linalg.norm(vec - probe.embedding) for _, vec in stored))
            match = distance <= self.settings.match_threshold
            if match:
                subject.failed_attempts = 0
                subject.last_verified_at = self.clock()
            else:
                subject.failed_attempts += 1
                if subject.failed_attempts >= self.settings.lockout_attempts:
                    subject.locked_at = self.clock()
            subject.updated_at = self.clock()
            left = max(0, self.settings.lockout_attempts - subject.failed_attempts)
            locked = subject.locked_at is not None
            event.outcome = "match" if match else "no_match"
            event.details = {"attempts_left": left, "locked": locked}  # never the distance
            self.audit.append(s, event)
        shown = distance if roles.OPERATOR in actor.roles else None
        return VerifyResult(external_id, match, shown, self.settings.match_threshold, left, locked)

    @staticmethod
    def _describe(event: AuditEvent, subject: Subject) -> None:
        """Put whose data and under which purpose and legal basis on the event (identifiers only)."""
        event.subject_id = subject.id
        event.purpose = subject.purpose
        event.legal_basis = subject.legal_basis

    def _check_usable(self, s: Session, subject: Subject) -> None:
        if subject.locked_at is not None:
            raise Locked(
                f"Face verification for '{subject.external_id}' is locked after "
                f"{self.settings.lockout_attempts} failed attempts. Unlock it with the subject's passcode.")
        # Past its term, the template is not used even before the retention job has destroyed it.
        expires = retain_until(subject, s.get(Purpose, (subject.tenant_id, subject.purpose)))
        if expires <= self.clock():
            raise FaceWardenError(
                f"The templates of '{subject.external_id}' expired on {expires.isoformat()}; "
                "re-enrol with fresh consent.", code="template_expired", status=410)

    def unlock(self, actor: Actor, external_id: str, passcode: str) -> None:
        with self._audited(actor, "unlock", roles.OPERATOR, roles.VERIFIER) as event:
            correct, left = self._unlock(actor, external_id, passcode, event)
        if not correct:
            raise Unauthorized(f"The passcode is wrong ({left} tries left).", code="wrong_passcode")

    def _unlock(self, actor: Actor, external_id: str, passcode: str, event: AuditEvent) -> tuple[bool, int]:
        with self.db.session() as s:
            subject = self._subject(s, actor, external_id, for_update=True)
            self._describe(event, subject)
            if subject.passcode_hash is None:
                raise Forbidden("This subject has no passcode; an administrator must set one after checking "
                                "the person's identity.", code="no_passcode")
            if subject.passcode_failures >= PASSCODE_ATTEMPTS:
                raise Locked(f"The passcode was wrong {PASSCODE_ATTEMPTS} times; an administrator must set a new "
                             "one after checking the person's identity.", code="passcode_locked")
            try:
                _hasher.verify(subject.passcode_hash, passcode)
                correct = True
            except VerificationError:
                correct = False
            if correct:
                if _hasher.check_needs_rehash(subject.passcode_hash):
                    subject.passcode_hash = _hasher.hash(passcode)
                subject.failed_attempts = 0
                subject.passcode_failures = 0
                subject.locked_at = None
            else:
                subject.passcode_failures += 1  # committed with this unit of work; the refusal follows it
            subject.updated_at = self.clock()
            left = max(0, PASSCODE_ATTEMPTS - subject.passcode_failures)
            event.outcome = "unlocked" if correct else "wrong_passcode"
            self.audit.append(s, event)  # the failure count and its entry commit together
        return correct, left

    def set_passcode(self, actor: Actor, external_id: str, passcode: str) -> None:
        with self._audited(actor, "passcode_set", roles.ADMIN) as event:
            if not 6 <= len(passcode) <= 128:
                raise InvalidInput("A passcode must be 6-128 characters.", code="invalid_passcode")
            with self.db.session() as s:
                subject = self._subject(s, actor, external_id, for_update=True)
                self._describe(event, subject)
                subject.passcode_hash = _hasher.hash(passcode)
                subject.passcode_failures = 0
                subject.updated_at = self.clock()
                self.audit.append(s, event)

    # -- identify (1:N) --------------------------------------------------------------------
    def refresh_gallery(self, *, force: bool = False) -> int:
        """Rebuild the in-memory gallery when another process enrolled or erased."""
        with self.db.session(readonly=True) as s:
            generation = s.scalar(select(ServiceState.gallery_generation).where(ServiceState.id == 1)) or 0
            if not force and generation == self.gallery.generation:
                return 0
            subjects = s.scalars(select(Subject)).all()
            purposes = {(p.tenant_id, p.name): p for p in s.scalars(select(Purpose))}
            entries, skipped = [], 0
            for subject in subjects:
                if retain_until(subject, purposes.get((subject.tenant_id, subject.purpose))) <= self.clock():
                    continue
                try:
                    for t, vec in self._decrypt_templates(subject):
                        if t.model_version != self.engine.model.version:
                            continue
                        entries.append(GalleryEntry(subject.tenant_id, subject.id, t.id, subject.purpose, vec))
                except FaceWardenError as exc:
                    skipped += 1
                    log.warning("subject %s left out of the gallery: %s", subject.id, exc.code)
        self.gallery.replace_all(entries, generation)
        return skipped

    def identify(self, actor: Actor, image: bytes, *, purpose: str, max_candidates: int = 5,
                 all_faces: bool = False) -> list[IdentifiedFace]:
        """1:N within the caller's tenant, over the templates enrolled for `purpose` only."""
        with self._audited(actor, "identify", roles.OPERATOR, purpose=purpose) as event:
            if not 1 <= max_candidates <= 50:
                raise InvalidInput("`max_candidates` must be 1-50.", code="invalid_max_candidates")
            if purpose == policy.LAW_ENFORCEMENT:
                raise Forbidden("Police searches run only under an approved request: see /v1/le/requests.",
                                code="grant_required")
            actor.check_purpose(purpose)
            with self.db.session(readonly=True) as s:
                self._purpose(s, actor.tenant_id, purpose)
            self._check_rate(actor, SEARCH_OPERATIONS, self.settings.person_search_limit_per_day, timedelta(days=1))
            rgb = decode_image(image, self.limits)
            faces = self.engine.faces(rgb) if all_faces else [self.engine.single_face(rgb)]
            self.refresh_gallery()
            return self._search(actor, faces, max_candidates, {purpose}, event)

    def _search(self, actor: Actor, faces: list[DetectedFace], max_candidates: int, purposes: set[str],
                event: AuditEvent) -> list[IdentifiedFace]:
        results = []
        with self.db.session() as s:
            for face in faces:
                found = self.gallery.search(actor.tenant_id, face.embedding,
                                            threshold=self.settings.match_threshold,
                                            max_candidates=max_candidates, purposes=purposes)
                names = self._matchable(s, actor.tenant_id, [c.subject_id for c in found], purposes)
                results.append(IdentifiedFace(face.box, [
                    Candidate(names[c.subject_id], c.subject_id, c.distance)
                    for c in found if c.subject_id in names]))
            disclosed = sorted({c.subject_id for f in results for c in f.candidates})
            event.outcome = "candidates" if disclosed else "no_candidates"
            event.details = {"faces": len(faces), "candidates": disclosed}  # whose data was disclosed, no scores
            self.audit.append(s, event)
        return results

    # -- data-subject rights ---------------------------------------------------------------
    def erase(self, actor: Actor, external_id: str | None) -> dict[str, Any]:
        """GDPR Art. 17: delete the records and destroy the data key (crypto-shredding). Operators erase in their
        tenant; a data subject erases their own record with their credential."""
        return self._erase(actor, external_id)

    def _erase(self, actor: Actor, external_id: str | None, *, dual_approved: bool = False) -> dict[str, Any]:
        with self._audited(actor, "erase", roles.OPERATOR, roles.SUBJECT) as event:
            if roles.OPERATOR in actor.roles and not (actor.is_local_admin or dual_approved):
                # Many erasures by one person need a second administrator, however they are split up.
                self._check_rate(actor, ("erase",), self.settings.bulk_erase_dual_control_threshold,
                                 timedelta(days=1), code="dual_control_required")
            with self.db.session() as s:
                subject = self._subject(s, actor, external_id, for_update=True)
                if actor.subject_id and subject.legal_basis not in {"consent", "contract"}:
                    raise Forbidden(f"This record is kept on the legal basis '{subject.legal_basis}'; ask the "
                                    "operator, who must check whether it may be erased.", code="erasure_needs_operator")
                return self._shred(s, subject, event, "erased")

    def withdraw_consent(self, actor: Actor, external_id: str | None) -> dict[str, Any]:
        """Withdrawal stops matching at once and erases the templates the consent covered."""
        with self._audited(actor, "consent_withdraw", roles.OPERATOR, roles.SUBJECT) as event, \
                self.db.session() as s:
            subject = self._subject(s, actor, external_id, for_update=True)
            if subject.legal_basis != "consent":
                raise Conflict(f"This record is held on the legal basis '{subject.legal_basis}', not consent; ask "
                               "the operator to erase it instead.", code="not_consent_based")
            return self._shred(s, subject, event, "consent_withdrawn")

    def _shred(self, s: Session, subject: Subject, event: AuditEvent, outcome: str) -> dict[str, Any]:
        """Delete a subject and destroy its data key, with its audit entry, in the caller's transaction."""
        self._describe(event, subject)
        tenant_id, subject_id, external_id, n = subject.tenant_id, subject.id, subject.external_id, \
            len(subject.templates)
        s.delete(subject)
        self._bump_generation(s)
        s.flush()
        # Liveness leftovers of the person go with them: sealed audit frames (their keys) and clip fingerprints.
        sessions = list(s.scalars(select(LivenessSession.id).where(LivenessSession.subject_id == subject_id)))
        if sessions:
            s.execute(delete(LivenessFrame).where(LivenessFrame.session_id.in_(sessions)))
            s.execute(update(LivenessSession).where(LivenessSession.id.in_(sessions)).values(fingerprint=None))
        event.outcome = outcome
        event.details = {"templates_destroyed": n, "data_key_destroyed": True, "liveness_sessions": len(sessions)}
        self.audit.append(s, event)
        # Destroy the key inside the transaction: if that fails, the records stay and the caller retries.
        self.vault.destroy(self._key_id(tenant_id, subject_id))
        for session_id in sessions:
            self.vault.destroy(f"liveness/{session_id}")
        s.info.setdefault("after_commit", []).append(lambda: self.gallery.remove_subject(tenant_id, subject_id))
        log.info("%s subject=%s tenant=%s", outcome, subject_id, tenant_id)
        return {"subject": external_id, outcome: True, "erased": True, "templates_destroyed": n,
                "data_key_destroyed": True}

    def export(self, actor: Actor, external_id: str | None) -> dict[str, Any]:
        """GDPR Art. 15/20: everything held on one subject, templates included, as JSON. There is no bulk
        export of templates, for anyone."""
        with self._audited(actor, "export", roles.OPERATOR, roles.SUBJECT) as event:
            # One subject at a time, and few per day: exports hold plaintext templates.
            self._check_rate(actor, ("export",), self.settings.person_export_limit_per_day, timedelta(days=1))
            return self._export(actor, external_id, event)

    def _export(self, actor: Actor, external_id: str | None, event: AuditEvent) -> dict[str, Any]:
        with self.db.session() as s:
            subject = self._subject(s, actor, external_id)
            self._describe(event, subject)
            templates = self._decrypt_templates(subject)
            event.details = {"templates": len(templates)}
            self.audit.append(s, event)

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
        with self._audited(actor, "list_subjects", roles.OPERATOR) as event, self.db.session() as s:
            if not (1 <= limit <= 1000 and 0 <= offset <= 2**31):
                raise InvalidInput("`limit` must be 1-1000 and `offset` 0 or more.", code="invalid_page")
            rows = s.scalars(select(Subject).where(Subject.tenant_id == actor.tenant_id)
                             .order_by(Subject.created_at).limit(limit).offset(offset)).all()
            event.details = {"count": len(rows), "offset": offset}
            self.audit.append(s, event)
            return [{"subject": r.external_id, "purpose": r.purpose, "legal_basis": r.legal_basis,
                     "templates": len(r.templates), "locked": r.locked_at is not None} for r in rows]

    # -- keys ------------------------------------------------------------------------------
    def rotate_keys(self, actor: Actor, *, retire_old: bool = False,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """New KEK version; every data key rewrapped under it. Over the API it takes two administrators
        (dual control): the first proposes, the second approves at /v1/approvals."""
        if not actor.is_local_admin:
            self._require_deployment_admin(actor, "key_rotate")
            with self._audited(actor, "key_rotate", roles.ADMIN) as event:
                event.outcome = "proposed"
                return self._propose(actor, "key_rotation", {"retire_old": retire_old}, event)
        return self._rotate_keys(actor, retire_old=retire_old, progress=progress)

    def _rotate_keys(self, actor: Actor, *, retire_old: bool = False,
                     progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """Templates are not touched. The keys live outside the main database, so the entry is written once the
        vault has committed."""
        with self._audited(actor, "key_rotate", roles.ADMIN) as event:
            kek = self.vault.kek
            new_version = kek.rotate()
            rewrapped = self.vault.rewrap_all(progress)
            event.details = {"kek_version": new_version, "data_keys_rewrapped": rewrapped, "provider": kek.name}
            self.audit.record(event)
        retired = self.retire_unused_keys(actor) if retire_old else []
        return {"current_version": new_version, "rewrapped": rewrapped, "retired": retired,
                "versions": kek.versions()}

    def retire_unused_keys(self, actor: Actor) -> list[int]:
        with self._audited(actor, "key_retire", roles.ADMIN) as event:
            kek = self.vault.kek
            in_use = self.vault.versions_in_use()
            retired = []
            for v in kek.versions():
                if v != kek.current_version() and in_use.get(v, 0) == 0:
                    kek.retire(v)
                    retired.append(v)
            event.details = {"kek_versions_retired": retired}
            self.audit.record(event)
        return retired

    # -- the audit log --------------------------------------------------------------------
    def _audit_scope(self, actor: Actor, q: AuditQuery) -> AuditQuery:
        """Auditors see their own tenant's entries; the local administrator (CLI) sees every tenant."""
        tenant = q.tenant_id if actor.principal == LOCAL_ADMIN_PRINCIPAL else actor.tenant_id
        return replace(q, tenant_id=tenant)

    def audit_query(self, actor: Actor, q: AuditQuery, *, subject: str | None = None) -> list[dict[str, Any]]:
        """Entries matching the filters. `subject` is the operator's reference, resolved to the subject id."""
        with self._audited(actor, "audit_query", roles.AUDITOR, roles.ADMIN) as event:
            q = self._audit_scope(actor, self._resolve_subject(actor, q, subject))
            rows = self.audit.query(q)
            event.details = {"filters": sorted(k for k, v in q.__dict__.items() if v not in (None, -1)),
                             "returned": len(rows)}
            self.audit.record(event)
            return rows

    def audit_export(self, actor: Actor, q: AuditQuery, *, subject: str | None = None) -> dict[str, Any]:
        with self._audited(actor, "audit_export", roles.AUDITOR, roles.ADMIN) as event:
            q = self._audit_scope(actor, self._resolve_subject(actor, q, subject))
            event.details = {"since": q.since, "until": q.until}
            self.audit.record(event)  # first, so the export's own entry is in its tree head
            return self.audit.export(q)

    def _resolve_subject(self, actor: Actor, q: AuditQuery, subject: str | None) -> AuditQuery:
        if subject is None:
            return q
        with self.db.session(readonly=True) as s:
            subject_id = s.scalar(select(Subject.id).where(Subject.tenant_id == actor.tenant_id,
                                                           Subject.external_id == subject))
        if subject_id is None:
            raise NotFound(f"No subject '{subject}' is enrolled now; after erasure, query by its subject_id.")
        return replace(q, subject_id=subject_id)

    # Proofs and tree heads hold hashes only, but they are still for auditors and administrators.
    def audit_latest_head(self, actor: Actor) -> dict[str, Any]:
        self._require(actor, "audit_proof", roles.AUDITOR, roles.ADMIN)
        return self.audit.latest_head().to_json(self.audit.signer.log_id)

    def audit_sign_head(self, actor: Actor) -> dict[str, Any]:
        """Sign a head for the current size now and hand it to the witnesses."""
        self._require(actor, "audit_proof", roles.AUDITOR, roles.ADMIN)
        head = self.audit.sign_head()
        return {**head.to_json(self.audit.signer.log_id), "witness_errors": self.audit.witness_errors}

    def audit_heads(self, actor: Actor) -> list[dict[str, Any]]:
        self._require(actor, "audit_proof", roles.AUDITOR, roles.ADMIN)
        return [h.to_json(self.audit.signer.log_id) for h in self.audit.stored_heads()]

    def audit_inclusion_proof(self, actor: Actor, seq: int, tree_size: int | None) -> dict[str, Any]:
        self._require(actor, "audit_proof", roles.AUDITOR, roles.ADMIN)
        return self.audit.inclusion_proof(seq, tree_size)

    def audit_consistency_proof(self, actor: Actor, first: int, second: int | None) -> dict[str, Any]:
        self._require(actor, "audit_proof", roles.AUDITOR, roles.ADMIN)
        return self.audit.consistency_proof(first, second)

    def _require(self, actor: Actor, operation: str, *allowed: str) -> None:
        """A role check for reads that are not logged when allowed: the refusal still is."""
        try:
            actor.require(*allowed)
        except Forbidden as exc:
            self.audit.record(AuditEvent(actor.tenant_id, actor.principal, operation, outcome=exc.code))
            raise

    def _require_deployment_admin(self, actor: Actor, operation: str) -> None:
        """Key-encryption keys serve every tenant: only the deployment's own administrators manage them."""
        self._require(actor, operation, roles.ADMIN)
        if actor.tenant_id != DEFAULT_TENANT:
            self.audit.record(AuditEvent(actor.tenant_id, actor.principal, operation, outcome="deployment_only"))
            raise Forbidden("Keys and the retention job serve every tenant; the deployment's administrators "
                            f"(tenant '{DEFAULT_TENANT}') run them.", code="deployment_only")

    def key_status(self, actor: Actor) -> dict[str, Any]:
        self._require_deployment_admin(actor, "key_status")
        kek = self.vault.kek
        return {"provider": kek.name, "current_version": kek.current_version(), "versions": kek.versions(),
                "data_keys_per_version": self.vault.versions_in_use()}




def make_kek_provider(settings: Settings, *, create: bool = False) -> KeyEncryptionKeyProvider:
    if settings.key_provider == "pkcs11":
        from facewarden.crypto.pkcs11 import Pkcs11KeyProvider

        if not settings.pkcs11_pin:
            raise FaceWardenError("Set FACEWARDEN_PKCS11_PIN (environment or env file) for the HSM token.",
                                  code="config", status=500)
        return Pkcs11KeyProvider(settings.pkcs11_module, settings.pkcs11_token_label, settings.pkcs11_pin,
                                 create=create)
    return LocalKeyFileProvider(settings.resolved_key_file, create=create)


def build_service(settings: Settings | None = None, *, create: bool = False,
                  engine_factory: Callable[[], FaceEngine] | None = None) -> FaceService:
    """Wire the service from settings. `create=True` (facewarden init) makes the home, keys and schema."""
    settings = settings or Settings()
    if create:
        settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(settings.home, 0o700)
    kek = make_kek_provider(settings, create=create)
    vault = DataKeyVault(make_vault_engine(settings.resolved_vault_url), kek)
    db = Database(settings.resolved_database_url)
    db.upgrade()
    verify = settings.audit_witness_ca or True
    audit = AuditLog(db, LogSigner.from_file(settings.resolved_audit_signing_key, create=create),
                     [make_witness(w, verify=verify) for w in settings.resolved_audit_witnesses])
    service = FaceService(settings, db, vault, audit, engine_factory)
    service.ensure_tenant()
    return service
