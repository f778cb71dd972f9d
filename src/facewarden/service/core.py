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
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import numpy as np
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from facewarden.audit import AuditEvent, AuditLog, AuditQuery, LogSigner, make_witness
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
from facewarden.imaging import ImageLimits, decode_image
from facewarden.service import roles
from facewarden.store import ApiKey, Database, ServiceState, Subject, Template, Tenant
from facewarden.vision import DetectedFace, FaceEngine
from facewarden.vision.batch import EngineOptions

log = logging.getLogger("facewarden.service")

LEGAL_BASES = frozenset({"consent", "contract", "law", "vital-interest", "public-task"})
DEFAULT_TENANT = "default"
PASSCODE_ATTEMPTS = 10  # wrong passcodes before only an administrator can reset it
_hasher = PasswordHasher()  # Argon2id with argon2-cffi's RFC 9106 low-memory profile


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything here is UTC."""
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def _embedding_bytes(vec: np.ndarray) -> bytes:
    return np.asarray(vec, dtype="<f4").tobytes()


def _embedding_from(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype="<f4").copy()


@dataclass(frozen=True)
class Actor:
    """Who is asking: resolved from an API key (HTTP) or the local operator (CLI)."""

    tenant_id: str
    principal: str
    roles: frozenset[str]

    def require(self, *allowed: str) -> None:
        if not self.roles & set(allowed):
            raise Forbidden(
                f"This action needs one of the roles {sorted(allowed)}; your key has {sorted(self.roles)}. "
                "Ask an administrator for a key with the right role.")


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


class FaceService:
    def __init__(self, settings: Settings, db: Database, vault: DataKeyVault, audit: AuditLog,
                 engine_factory: Callable[[], FaceEngine] | None = None) -> None:
        self.settings = settings
        self.db = db
        self.vault = vault
        self.audit = audit
        self.gallery = InMemoryGallery()
        self._engine_factory = engine_factory or EngineOptions.from_settings(settings).engine
        self.limits = ImageLimits(settings.max_upload_bytes, settings.max_image_pixels)

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
        with self.db.session() as s:
            if s.get(Tenant, tenant_id) is None:
                s.add(Tenant(id=tenant_id, name=name or tenant_id, created_at=_now()))

    def create_api_key(self, actor: Actor, *, name: str, key_roles: set[str],
                       tenant_id: str | None = None) -> tuple[str, str]:
        """Return (key id, secret). The secret is shown once; only its SHA-256 is stored."""
        with self._audited(actor, "api_key_create", roles.ADMIN) as event:
            unknown = key_roles - roles.ALL_ROLES
            if unknown or not key_roles:
                raise InvalidInput(f"Unknown or missing roles {sorted(unknown)}; use {sorted(roles.ALL_ROLES)}.")
            tenant = tenant_id or actor.tenant_id
            if tenant != actor.tenant_id and actor.principal != "local-admin":
                raise Forbidden("An API key can only be created for your own tenant.")
            self.ensure_tenant(tenant)
            key_id = str(uuid.uuid4())
            secret = "fw_" + secrets.token_urlsafe(32)
            event.details = {"key_id": key_id, "roles": sorted(key_roles), "for_tenant": tenant}
            with self.db.session() as s:
                s.add(ApiKey(id=key_id, tenant_id=tenant, name=name, roles=",".join(sorted(key_roles)),
                             key_hash=hashlib.sha256(secret.encode()).hexdigest(), created_at=_now()))
                self.audit.append(s, event)
        return key_id, secret

    def revoke_api_key(self, actor: Actor, key_id: str) -> None:
        with self._audited(actor, "api_key_revoke", roles.ADMIN, details={"key_id": key_id}) as event, \
                self.db.session() as s:
            key = s.get(ApiKey, key_id)
            if key is None or key.tenant_id != actor.tenant_id:
                raise NotFound("No such API key in your tenant.")
            key.revoked_at = _now()
            self.audit.append(s, event)

    def authenticate(self, secret: str | None) -> Actor:
        if not secret:
            raise Unauthorized("Send your API key in the Authorization header: `Bearer fw_...`.")
        digest = hashlib.sha256(secret.encode()).hexdigest()
        with self.db.session(readonly=True) as s:
            key = s.scalars(select(ApiKey).where(ApiKey.key_hash == digest)).first()
            if key is None or key.revoked_at is not None:
                raise Unauthorized("The API key is unknown or revoked. Ask an administrator for a new one.")
            return Actor(key.tenant_id, f"apikey:{key.id}", frozenset(key.roles.split(",")))

    # -- helpers ---------------------------------------------------------------------------
    def _subject(self, s: Session, actor: Actor, external_id: str, *, for_update: bool = False) -> Subject:
        q = select(Subject).where(Subject.tenant_id == actor.tenant_id, Subject.external_id == external_id)
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
        now = _now()
        with self.db.session() as s:
            exists = s.scalars(select(Subject.id).where(
                Subject.tenant_id == actor.tenant_id, Subject.external_id == req.external_id)).first()
            if exists:
                raise Conflict(f"Subject '{req.external_id}' is already enrolled. Erase it first to re-enrol.",
                               code="already_enrolled")
            subject = Subject(
                id=str(uuid.uuid4()), tenant_id=actor.tenant_id, external_id=req.external_id,
                display_name=req.display_name, purpose=req.purpose, legal_basis=req.legal_basis,
                consent_given_at=req.consent_given_at, consent_method=req.consent_method,
                consent_text=req.consent_text, expires_at=req.expires_at,
                passcode_hash=_hasher.hash(req.passcode) if req.passcode else None,
                failed_attempts=0, passcode_failures=0, created_at=now, updated_at=now)
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
                             "consent_method": req.consent_method, "expires_at": req.expires_at.isoformat()
                             if req.expires_at else None, "passcode": req.passcode is not None}
            try:
                s.flush()
                self.audit.append(s, event)
            except Exception:
                self.vault.destroy(self._key_id(actor.tenant_id, subject.id))
                raise
        self.gallery.add(entries)
        log.info("enrolled subject=%s templates=%d tenant=%s", subject.id, len(faces), actor.tenant_id)
        return {"subject": req.external_id, "subject_id": subject.id, "templates": len(faces),
                "model": self.engine.model.label, "purpose": req.purpose, "legal_basis": req.legal_basis}

    def _validate_enrolment(self, req: EnrolRequest, faces: list[DetectedFace] | None) -> None:
        if not req.external_id or len(req.external_id) > 200 or not req.external_id.isprintable():
            raise InvalidInput("`subject` must be 1-200 printable characters.", code="invalid_subject")
        if not req.purpose or len(req.purpose) > 64:
            raise InvalidInput("`purpose` is required (for example device-unlock, payment, login).",
                               code="invalid_purpose")
        if req.legal_basis not in LEGAL_BASES:
            raise InvalidInput(f"`legal_basis` must be one of {sorted(LEGAL_BASES)}.", code="invalid_legal_basis")
        if req.legal_basis == "consent" and (req.consent_given_at is None or not req.consent_method):
            raise InvalidInput("Enrolment on consent needs `consent_given_at` and `consent_method` "
                               "(when and how the person agreed).", code="consent_missing")
        if req.expires_at is not None and _aware(req.expires_at) <= _now():  # type: ignore[operator]
            raise InvalidInput("`expires_at` is in the past.", code="invalid_expiry")
        if req.passcode is not None and not (6 <= len(req.passcode) <= 128):
            raise InvalidInput("A passcode must be 6-128 characters.", code="invalid_passcode")
        n = len(faces) if faces is not None else len(req.images)
        if not 1 <= n <= self.settings.max_images_per_enrolment:
            raise InvalidInput(f"Send 1 to {self.settings.max_images_per_enrolment} photos per enrolment.",
                               code="image_count")

    # -- verify (1:1) ----------------------------------------------------------------------
    def verify(self, actor: Actor, external_id: str, image: bytes) -> VerifyResult:
        with self._audited(actor, "verify", roles.OPERATOR, roles.VERIFIER) as event:
            return self._verify(actor, external_id, image, event)

    def _verify(self, actor: Actor, external_id: str, image: bytes, event: AuditEvent) -> VerifyResult:
        with self.db.session(readonly=True) as s:
            subject = self._subject(s, actor, external_id)
            self._describe(event, subject)
            self._check_usable(subject)
        probe = self._probe(image)  # a bad photo is an input error, not a failed attempt
        with self.db.session() as s:
            subject = self._subject(s, actor, external_id, for_update=True)
            self._check_usable(subject)
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
                subject.last_verified_at = _now()
            else:
                subject.failed_attempts += 1
                if subject.failed_attempts >= self.settings.lockout_attempts:
                    subject.locked_at = _now()
            subject.updated_at = _now()
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

    def _check_usable(self, subject: Subject) -> None:
        if subject.locked_at is not None:
            raise Locked(
                f"Face verification for '{subject.external_id}' is locked after "
                f"{self.settings.lockout_attempts} failed attempts. Unlock it with the subject's passcode.")
        expires = _aware(subject.expires_at)
        if expires is not None and expires <= _now():
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
            subject.updated_at = _now()
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
                subject.updated_at = _now()
                self.audit.append(s, event)

    # -- identify (1:N) --------------------------------------------------------------------
    def refresh_gallery(self, *, force: bool = False) -> int:
        """Rebuild the in-memory gallery when another process enrolled or erased."""
        with self.db.session(readonly=True) as s:
            generation = s.scalar(select(ServiceState.gallery_generation).where(ServiceState.id == 1)) or 0
            if not force and generation == self.gallery.generation:
                return 0
            subjects = s.scalars(select(Subject)).all()
            entries, skipped = [], 0
            for subject in subjects:
                expires = _aware(subject.expires_at)
                if expires is not None and expires <= _now():
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

    def identify(self, actor: Actor, image: bytes, *, max_candidates: int = 5,
                 all_faces: bool = False) -> list[IdentifiedFace]:
        with self._audited(actor, "identify", roles.OPERATOR) as event:
            if not 1 <= max_candidates <= 50:
                raise InvalidInput("`max_candidates` must be 1-50.", code="invalid_max_candidates")
            rgb = decode_image(image, self.limits)
            faces = self.engine.faces(rgb) if all_faces else [self.engine.single_face(rgb)]
            self.refresh_gallery()
            return self._search(actor, faces, max_candidates, event)

    def _search(self, actor: Actor, faces: list[DetectedFace], max_candidates: int,
                event: AuditEvent) -> list[IdentifiedFace]:
        results = []
        with self.db.session() as s:
            for face in faces:
                found = self.gallery.search(actor.tenant_id, face.embedding,
                                            threshold=self.settings.match_threshold,
                                            max_candidates=max_candidates)
                names = dict(s.execute(select(Subject.id, Subject.external_id).where(
                    Subject.id.in_([c.subject_id for c in found]))).all()) if found else {}
                results.append(IdentifiedFace(face.box, [
                    Candidate(names[c.subject_id], c.subject_id, c.distance)
                    for c in found if c.subject_id in names]))
            disclosed = sorted({c.subject_id for f in results for c in f.candidates})
            event.outcome = "candidates" if disclosed else "no_candidates"
            event.details = {"faces": len(faces), "candidates": disclosed}  # whose data was disclosed, no scores
            self.audit.append(s, event)
        return results

    # -- data-subject rights ---------------------------------------------------------------
    def erase(self, actor: Actor, external_id: str) -> dict[str, Any]:
        """GDPR Art. 17: delete the records and destroy the data key (crypto-shredding)."""
        with self._audited(actor, "erase", roles.OPERATOR) as event, self.db.session() as s:
            subject = self._subject(s, actor, external_id, for_update=True)
            self._describe(event, subject)
            subject_id, n = subject.id, len(subject.templates)
            s.delete(subject)
            self._bump_generation(s)
            s.flush()
            event.outcome = "erased"
            event.details = {"templates_destroyed": n, "data_key_destroyed": True}
            self.audit.append(s, event)
            # Destroy the key inside the transaction: if that fails, the records stay and the caller retries.
            self.vault.destroy(self._key_id(actor.tenant_id, subject_id))
        self.gallery.remove_subject(actor.tenant_id, subject_id)
        log.info("erased subject=%s tenant=%s", subject_id, actor.tenant_id)
        return {"subject": external_id, "erased": True, "templates_destroyed": n, "data_key_destroyed": True}

    def export(self, actor: Actor, external_id: str) -> dict[str, Any]:
        """GDPR Art. 15/20: everything held on the subject, templates included, as JSON."""
        with self._audited(actor, "export", roles.OPERATOR) as event, self.db.session() as s:
            subject = self._subject(s, actor, external_id)
            self._describe(event, subject)
            templates = self._decrypt_templates(subject)
            event.details = {"templates": len(templates)}
            self.audit.append(s, event)

            def iso(dt: datetime | None) -> str | None:
                dt = _aware(dt)
                return dt.isoformat() if dt else None

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
            rows = s.scalars(select(Subject).where(Subject.tenant_id == actor.tenant_id)
                             .order_by(Subject.created_at).limit(min(limit, 1000)).offset(offset)).all()
            event.details = {"count": len(rows), "offset": offset}
            self.audit.append(s, event)
            return [{"subject": r.external_id, "purpose": r.purpose, "legal_basis": r.legal_basis,
                     "templates": len(r.templates), "locked": r.locked_at is not None} for r in rows]

    # -- keys ------------------------------------------------------------------------------
    def rotate_keys(self, actor: Actor, *, retire_old: bool = False,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """New KEK version; every data key rewrapped under it. Templates are not touched.
        The keys live outside the main database, so the entry is written once the vault has committed."""
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
        tenant = q.tenant_id if actor.principal == LOCAL_ADMIN.principal else actor.tenant_id
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

    def audit_proofs_allowed(self, actor: Actor) -> None:
        """Proofs and tree heads hold hashes only, but they are still for auditors and administrators."""
        actor.require(roles.AUDITOR, roles.ADMIN)

    def key_status(self, actor: Actor) -> dict[str, Any]:
        actor.require(roles.ADMIN)
        kek = self.vault.kek
        return {"provider": kek.name, "current_version": kek.current_version(), "versions": kek.versions(),
                "data_keys_per_version": self.vault.versions_in_use()}


LOCAL_ADMIN = Actor(DEFAULT_TENANT, "local-admin", frozenset(roles.ALL_ROLES))


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
