"""Enrolment and matching: enrol (one or many), verify (1:1), unlock, passcodes, identify (1:N)."""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy.orm import Session

from facewarden.audit import AuditEvent
from facewarden.errors import Conflict, FaceWardenError, Forbidden, InvalidInput, Locked, Unauthorized
from facewarden.faults import crash_point
from facewarden.gallery import GalleryEntry
from facewarden.governance import policy, roles
from facewarden.governance.actors import SUBJECT_TOKEN_PREFIX, Actor
from facewarden.governance.identifiers import canonical_reference, reference_key
from facewarden.service.calibration import threshold_for
from facewarden.service.common import aware, describe, iso, retain_until
from facewarden.service.context import ServiceContext
from facewarden.service.liveness import Liveness
from facewarden.service.subjects import (
    check_usable,
    current_model_templates,
    matchable,
    purpose_of,
    refresh_gallery,
    resolve_reference,
    subject_of,
)
from facewarden.store import Subject, Template, repositories
from facewarden.vision import DetectedFace

log = logging.getLogger("facewarden.service")

PASSCODE_ATTEMPTS = 10  # wrong passcodes before only an administrator can reset it
MAX_TEMPLATES_PER_SUBJECT = 20  # more photos add little accuracy and widen the record an attacker could poison
_hasher = PasswordHasher()  # Argon2id with argon2-cffi's RFC 9106 low-memory profile


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
    box: tuple[int, int, int, int] | None = None  # the face used: left, top, right, bottom
    threshold_source: str = "configured"  # calibration, calibration_extrapolated or configured
    quality: float | None = None  # the probe's quality (vision/quality.py): operators only, like the distance


@dataclass(frozen=True)
class Candidate:
    subject: str
    subject_id: str
    distance: float


@dataclass(frozen=True)
class IdentifiedFace:
    box: tuple[int, int, int, int]
    candidates: list[Candidate] = field(default_factory=list)


class Matching:
    def __init__(self, ctx: ServiceContext, liveness: Liveness) -> None:
        self.ctx = ctx
        self.liveness = liveness

    # -- enrol -----------------------------------------------------------------------------
    def enrol(self, actor: Actor, req: EnrolRequest) -> dict[str, Any]:
        return self._enrol(actor, req, None)

    def _enrol(self, actor: Actor, req: EnrolRequest, faces: list[DetectedFace] | None) -> dict[str, Any]:
        with self.ctx.audited(actor, "enrol", roles.OPERATOR, purpose=req.purpose or None,
                              legal_basis=req.legal_basis or None) as event:
            self._validate_enrolment(req, len(faces) if faces is not None else len(req.images))
            if faces is None:
                faces = [self.ctx.probe(img) for img in req.images]
            return self._store_enrolment(actor, req, faces, event)

    def enrol_many(self, actor: Actor, photos_by_subject: dict[str, list[Path]], template: EnrolRequest, *,
                   workers: int | None = None,
                   progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
        """Bulk enrolment from photo files: embeddings on every core, then one audited enrolment per subject.
        `progress(stage, done, total)` reports the "embedding" and "enrolling" stages."""
        from facewarden.vision.batch import EngineOptions, embed_files

        self.ctx.require(actor, "enrol", roles.OPERATOR)  # a refusal is audited like any other
        paths = [p for ps in photos_by_subject.values() for p in ps]
        faces: dict[Path, DetectedFace] = {}
        failed: list[dict[str, str]] = []
        opts = EngineOptions.from_settings(self.ctx.settings)
        for done, res in enumerate(embed_files(paths, opts, workers=workers or self.ctx.settings.workers), start=1):
            if res.face is None:
                failed.append({"photo": str(res.path), "code": res.error_code or "", "error": res.error or ""})
            else:
                faces[res.path] = res.face
            if progress:
                progress("embedding", done, len(paths))
        enrolled, skipped = [], []
        for done, (name, ps) in enumerate(photos_by_subject.items(), start=1):
            good = [faces[p] for p in ps if p in faces]
            if not good:
                skipped.append({"subject": name, "reason": "no usable photo"})
            else:
                try:
                    enrolled.append(self._enrol(actor, replace(template, external_id=name, images=[]), good))
                except FaceWardenError as exc:
                    skipped.append({"subject": name, "reason": exc.message})
            if progress:
                progress("enrolling", done, len(photos_by_subject))
        return {"enrolled": enrolled, "skipped": skipped, "failed_photos": failed}

    def _store_enrolment(self, actor: Actor, req: EnrolRequest, faces: list[DetectedFace],
                         event: AuditEvent) -> dict[str, Any]:
        ctx = self.ctx
        now = ctx.clock()
        # The key store commits first; `creating` confirms the new key once this transaction committed, or settles
        # it (destroys it unless the commit happened after all) if it raised.
        with ctx.keyring.creating("enrol") as new_keys, ctx.db.session() as s:
            purpose = purpose_of(s, actor.tenant_id, req.purpose)
            policy.check_enrolment_basis(purpose.name, frozenset(purpose.legal_bases.split(",")),
                                         aware(purpose.ends_at), req.legal_basis, now)
            expires = aware(req.expires_at)  # the consent term, if one was given
            if resolve_reference(s, actor.tenant_id, req.external_id):  # `OBAMA` when `obama` is enrolled
                raise Conflict(f"Subject '{req.external_id}' is already enrolled. Erase it first to re-enrol.",
                               code="already_enrolled")
            credential = SUBJECT_TOKEN_PREFIX + secrets.token_urlsafe(32)
            subject = Subject(
                id=str(uuid.uuid4()), tenant_id=actor.tenant_id, external_id=req.external_id,
                reference_key=reference_key(req.external_id), display_name=req.display_name, purpose=req.purpose,
                legal_basis=req.legal_basis,
                consent_given_at=req.consent_given_at, consent_method=req.consent_method,
                consent_text=req.consent_text, expires_at=expires,
                passcode_hash=_hasher.hash(req.passcode) if req.passcode else None,
                failed_attempts=0, passcode_failures=0, created_at=now, updated_at=now,
                subject_token_hash=hashlib.sha256(credential.encode()).hexdigest())
            s.add(subject)
            model = ctx.embedder.model
            ids = [str(uuid.uuid4()) for _ in faces]
            new_keys.append(ctx.keyring.subject_key(actor.tenant_id, subject.id))
            sealed = ctx.keyring.seal_templates(actor.tenant_id, subject.id,
                                                [(tid, model.version, f.embedding) for tid, f in zip(ids, faces,
                                                                                                    strict=True)])
            for tid, face, blob in zip(ids, faces, sealed, strict=True):
                s.add(Template(id=tid, tenant_id=actor.tenant_id, subject_id=subject.id, model_id=model.model_id,
                               model_version=model.version, ciphertext=blob, quality=face.quality, created_at=now))
            entries = [GalleryEntry(actor.tenant_id, subject.id, tid, req.purpose, f.embedding)
                       for tid, f in zip(ids, faces, strict=True)]
            repositories.bump_gallery_generation(s)
            event.subject_id = subject.id
            event.outcome = "enrolled"
            event.details = {"templates": len(faces), "model": model.version,
                             "consent_recorded": req.consent_method is not None, "expires_at": iso(expires),
                             "passcode": req.passcode is not None,
                             "other_faces_ignored": sum(f.faces_in_photo - 1 for f in faces)}
            s.flush()
            ctx.audit.append(s, event)
            crash_point("enrol.key_created")
        ctx.gallery.add(entries)
        log.info("enrolled subject=%s templates=%d tenant=%s", subject.id, len(faces), actor.tenant_id)
        return {"subject": req.external_id, "subject_id": subject.id, "templates": len(faces),
                "model": model.label, "purpose": req.purpose, "legal_basis": req.legal_basis,
                "photo_quality": [f.quality for f in faces],  # per photo, in the order sent (operators enrol)
                **faces_used(faces),
                "expires_at": iso(expires), "retain_until": retain_until(subject, purpose).isoformat(),
                # Handed to the person once: with it they export, withdraw consent or erase their own record.
                "subject_credential": credential}

    def _validate_enrolment(self, req: EnrolRequest, photos: int) -> None:
        req.external_id = canonical_reference(req.external_id)  # stored canonical: NFKC, stripped, rules checked
        if not req.purpose or len(req.purpose) > 64:
            raise InvalidInput("`purpose` is required (for example device-unlock, payment, login).",
                               code="invalid_purpose")
        if req.legal_basis not in policy.LEGAL_BASES:
            raise InvalidInput(f"`legal_basis` must be one of {sorted(policy.LEGAL_BASES)}.",
                               code="invalid_legal_basis")
        if req.legal_basis == "consent" and (req.consent_given_at is None or not req.consent_method):
            raise InvalidInput("Enrolment on consent needs `consent_given_at` and `consent_method` "
                               "(when and how the person agreed).", code="consent_missing")
        if req.expires_at is not None and aware(req.expires_at) <= self.ctx.clock():  # type: ignore[operator]
            raise InvalidInput("`expires_at` is in the past.", code="invalid_expiry")
        if req.passcode is not None and not (6 <= len(req.passcode) <= 128):
            raise InvalidInput("A passcode must be 6-128 characters.", code="invalid_passcode")
        if not 1 <= photos <= self.ctx.settings.max_images_per_enrolment:
            raise InvalidInput(f"Send 1 to {self.ctx.settings.max_images_per_enrolment} photos per enrolment.",
                               code="image_count")

    # -- verify (1:1) ----------------------------------------------------------------------
    def verify(self, actor: Actor, external_id: str, image: bytes, *, purpose: str,
               liveness_session: str | None = None) -> VerifyResult:
        """1:1, for the purpose the caller states; a template matches only for the purpose it was enrolled for.
        Where the purpose requires it, a passed liveness session of this subject and device is consumed."""
        ctx = self.ctx
        with ctx.audited(actor, "verify", roles.OPERATOR, roles.VERIFIER, purpose=purpose) as event:
            actor.check_purpose(purpose)
            ctx.check_rate(actor, ("verify",), ctx.settings.person_verify_limit_per_hour, timedelta(hours=1))
            return self._verify(actor, external_id, image, purpose, liveness_session, event)

    def _verify(self, actor: Actor, external_id: str, image: bytes, purpose: str, liveness_session: str | None,
                event: AuditEvent) -> VerifyResult:
        ctx, settings = self.ctx, self.ctx.settings
        with ctx.db.session(readonly=True) as s:
            subject = subject_of(s, actor, external_id)
            describe(event, subject)
            policy.check_match_purpose(subject.purpose, purpose)
            check_usable(ctx, s, subject)
            needs_liveness = self.liveness.required(s, subject)
            if needs_liveness and not liveness_session:
                self.liveness.consume(s, actor, subject, None)  # refuses, before any face work
        probe = ctx.probe_for(image, purpose)  # a bad photo is an input error, not a failed attempt
        with ctx.db.session() as s:
            subject = subject_of(s, actor, external_id, for_update=True)
            check_usable(ctx, s, subject)
            if needs_liveness:
                self.liveness.consume(s, actor, subject, liveness_session)  # single use, with this attempt
            stored = current_model_templates(ctx, subject)
            if not stored:
                raise Conflict(f"The templates of '{external_id}' were made by another face model; re-enrol the "
                               "subject with the current model.", code="model_mismatch")
            distance = min(ctx.embedder.distance(vec, probe.embedding) for vec in stored)
            threshold = threshold_for(ctx, s, actor.tenant_id, purpose)  # the purpose's operating point
            match = distance <= threshold.value
            if match:
                subject.failed_attempts = 0
                subject.last_verified_at = ctx.clock()
            else:
                subject.failed_attempts += 1
                if subject.failed_attempts >= settings.lockout_attempts:
                    subject.locked_at = ctx.clock()
            subject.updated_at = ctx.clock()
            left = max(0, settings.lockout_attempts - subject.failed_attempts)
            locked = subject.locked_at is not None
            event.outcome = "match" if match else "no_match"
            event.details = {"attempts_left": left, "locked": locked,  # never the distance
                             "threshold_source": threshold.source}
            ctx.audit.append(s, event)
        shown = distance if roles.OPERATOR in actor.roles else None
        return VerifyResult(external_id, match, shown, threshold.value, left, locked, probe.box, threshold.source,
                            probe.quality if shown is not None else None)

    # -- passcodes -------------------------------------------------------------------------
    def unlock(self, actor: Actor, external_id: str, passcode: str) -> None:
        with self.ctx.audited(actor, "unlock", roles.OPERATOR, roles.VERIFIER) as event:
            correct, left = self._unlock(actor, external_id, passcode, event)
        if not correct:
            raise Unauthorized(f"The passcode is wrong ({left} tries left).", code="wrong_passcode")

    def _unlock(self, actor: Actor, external_id: str, passcode: str, event: AuditEvent) -> tuple[bool, int]:
        with self.ctx.db.session() as s:
            subject = subject_of(s, actor, external_id, for_update=True)
            describe(event, subject)
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
            subject.updated_at = self.ctx.clock()
            left = max(0, PASSCODE_ATTEMPTS - subject.passcode_failures)
            event.outcome = "unlocked" if correct else "wrong_passcode"
            self.ctx.audit.append(s, event)  # the failure count and its entry commit together
        return correct, left

    def set_passcode(self, actor: Actor, external_id: str, passcode: str) -> None:
        with self.ctx.audited(actor, "passcode_set", roles.ADMIN) as event:
            if not 6 <= len(passcode) <= 128:
                raise InvalidInput("A passcode must be 6-128 characters.", code="invalid_passcode")
            with self.ctx.db.session() as s:
                subject = subject_of(s, actor, external_id, for_update=True)
                describe(event, subject)
                subject.passcode_hash = _hasher.hash(passcode)
                subject.passcode_failures = 0
                subject.updated_at = self.ctx.clock()
                self.ctx.audit.append(s, event)

    # -- identify (1:N) --------------------------------------------------------------------
    def refresh_gallery(self, *, force: bool = False) -> int:
        """Reload the gallery cache when another process enrolled or erased."""
        return refresh_gallery(self.ctx, force=force)

    def identify(self, actor: Actor, image: bytes, *, purpose: str, max_candidates: int = 5,
                 all_faces: bool = False) -> list[IdentifiedFace]:
        """1:N within the caller's tenant, over the templates enrolled for `purpose` only."""
        ctx = self.ctx
        with ctx.audited(actor, "identify", roles.OPERATOR, purpose=purpose) as event:
            if not 1 <= max_candidates <= 50:
                raise InvalidInput("`max_candidates` must be 1-50.", code="invalid_max_candidates")
            if purpose == policy.LAW_ENFORCEMENT:
                raise Forbidden("Police searches run only under an approved written request.", code="grant_required")
            actor.check_purpose(purpose)
            with ctx.db.session(readonly=True) as s:
                purpose_of(s, actor.tenant_id, purpose)
            ctx.check_search_rate(actor)
            rgb = ctx.decode(image)
            faces = ctx.embedder.faces(rgb) if all_faces else [ctx.probe_for(rgb, purpose)]
            refresh_gallery(ctx)
            results = []
            with ctx.db.session() as s:
                threshold = threshold_for(ctx, s, actor.tenant_id, purpose).value
                for face in faces:
                    found = ctx.gallery.search(actor.tenant_id, face.embedding, threshold=threshold,
                                               max_candidates=max_candidates, purposes={purpose})
                    names = matchable(ctx, s, actor.tenant_id, [c.subject_id for c in found], {purpose})
                    results.append(IdentifiedFace(face.box, [Candidate(names[c.subject_id], c.subject_id, c.distance)
                                                             for c in found if c.subject_id in names]))
                disclosed = sorted({c.subject_id for f in results for c in f.candidates})
                event.outcome = "candidates" if disclosed else "no_candidates"
                event.details = {"faces": len(faces), "candidates": disclosed}  # whose data was disclosed, no scores
                ctx.audit.append(s, event)
            return results


    # -- more photos for an enrolled subject -------------------------------------------------
    def add_photos(self, actor: Actor, external_id: str, images: list[bytes]) -> dict[str, Any]:
        """Add templates to an enrolled subject, under its existing data key. Each new face must match the
        enrolled ones: slipping someone else's face into a record would let them verify as that person."""
        ctx = self.ctx
        with ctx.audited(actor, "add_photos", roles.OPERATOR) as event:
            limit = ctx.settings.max_images_per_enrolment
            if not 1 <= len(images) <= limit:
                raise InvalidInput(f"Send 1 to {limit} photos at once.", code="image_count")
            with ctx.db.session(readonly=True) as s:  # refuse before any face work
                self._check_addable(actor, s, subject_of(s, actor, external_id), len(images), event)
            faces = [ctx.probe(img) for img in images]
            with ctx.db.session() as s:
                subject = subject_of(s, actor, external_id, for_update=True)
                self._check_addable(actor, s, subject, len(faces), event)
                stored = current_model_templates(ctx, subject)
                if not stored:
                    raise Conflict(f"The templates of '{external_id}' were made by another face model; re-enrol "
                                   "the subject with the current model.", code="model_mismatch")
                threshold = threshold_for(ctx, s, subject.tenant_id, subject.purpose).value
                for n, face in enumerate(faces, start=1):
                    if min(ctx.embedder.distance(vec, face.embedding) for vec in stored) > threshold:
                        raise Conflict(f"Photo {n} does not match the face enrolled as '{external_id}'; only photos "
                                       "of the same person can be added.", code="different_person")
                model, now = ctx.embedder.model, ctx.clock()
                total = len(subject.templates) + len(faces)
                ids = [str(uuid.uuid4()) for _ in faces]
                sealed = ctx.keyring.seal_more_templates(subject.tenant_id, subject.id,
                                                         [(tid, model.version, f.embedding)
                                                          for tid, f in zip(ids, faces, strict=True)])
                for tid, face, blob in zip(ids, faces, sealed, strict=True):
                    s.add(Template(id=tid, tenant_id=subject.tenant_id, subject_id=subject.id,
                                   model_id=model.model_id, model_version=model.version, ciphertext=blob,
                                   quality=face.quality, created_at=now))
                subject.updated_at = now
                repositories.bump_gallery_generation(s)
                event.outcome = "photos_added"
                event.details = {"templates": len(faces), "total": total, "model": model.version,
                                 "other_faces_ignored": sum(f.faces_in_photo - 1 for f in faces)}
                s.flush()
                ctx.audit.append(s, event)  # no new key was made, so a failure here leaves nothing behind
                entries = [GalleryEntry(subject.tenant_id, subject.id, tid, subject.purpose, f.embedding)
                           for tid, f in zip(ids, faces, strict=True)]
                result = {"subject": subject.external_id, "subject_id": subject.id, "templates_added": len(faces),
                          "templates": total, "model": model.label, "purpose": subject.purpose,
                          **faces_used(faces)}
        ctx.gallery.add(entries)
        log.info("added templates subject=%s templates=%d tenant=%s", result["subject_id"], len(faces),
                 actor.tenant_id)
        return result

    def _check_addable(self, actor: Actor, s: Session, subject: Subject, adding: int, event: AuditEvent) -> None:
        """Same tenant (subject_of), a key allowed this purpose, a usable record, a purpose still running."""
        describe(event, subject)
        actor.check_purpose(subject.purpose)
        check_usable(self.ctx, s, subject)
        purpose = purpose_of(s, subject.tenant_id, subject.purpose)
        policy.check_enrolment_basis(purpose.name, frozenset(purpose.legal_bases.split(",")),
                                     aware(purpose.ends_at), subject.legal_basis, self.ctx.clock())
        most = MAX_TEMPLATES_PER_SUBJECT
        if len(subject.templates) + adding > most:
            raise Conflict(f"'{subject.external_id}' holds {len(subject.templates)} templates; at most {most} are "
                           "kept per subject. Erase and re-enrol with the best photos.", code="too_many_templates")


def faces_used(faces: list[DetectedFace]) -> dict[str, list[Any]]:
    """Which face of each photo made the template, and how many the photo showed: an operator who sent a photo
    with several faces sees which one was taken (selection.py) and can erase the record if it was the wrong one."""
    return {"face_boxes": [list(f.box) for f in faces], "faces_in_photo": [f.faces_in_photo for f in faces]}
