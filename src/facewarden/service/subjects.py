"""Reading subjects the way every use case must: inside the caller's tenant, still matchable, decrypted only
through the key ring."""

from __future__ import annotations

import logging
from collections.abc import Collection

import numpy as np
from sqlalchemy.orm import Session

from facewarden.errors import (
    FaceWardenError,
    Forbidden,
    Gone,
    IntegrityFailure,
    InvalidInput,
    KeyUnavailable,
    Locked,
    NotFound,
)
from facewarden.gallery import GalleryEntry
from facewarden.governance.actors import Actor
from facewarden.governance.identifiers import canonical_reference, reference_key
from facewarden.service.common import retain_until
from facewarden.service.context import ServiceContext
from facewarden.store import Purpose, Subject, Template, repositories

log = logging.getLogger("facewarden.service")


def subject_of(s: Session, actor: Actor, external_id: str | None, *, for_update: bool = False) -> Subject:
    """The subject in the caller's tenant; a data subject only ever reaches their own record. The reference is
    compared by its canonical key (see `governance.identifiers`), so `OBAMA` and ` obama` reach `obama`."""
    if actor.subject_id and external_id is not None:  # a person's credential never acts on a name it is given
        raise Forbidden("A subject credential reaches only your own record, through the self-service "
                        "operations (see, withdraw consent, erase), never a record named by reference.",
                        code="self_service_only")
    if actor.subject_id or external_id is None:
        subject = repositories.find_subject(s, actor.tenant_id, external_id=external_id,
                                            subject_id=actor.subject_id, for_update=for_update)
    else:
        found = resolve_reference(s, actor.tenant_id, external_id)
        subject = (repositories.find_subject(s, actor.tenant_id, subject_id=found, for_update=for_update)
                   if found else None)
    if subject is None:
        raise NotFound(f"No subject '{external_id}' is enrolled in your tenant.")
    return subject


def resolve_reference(s: Session, tenant_id: str, raw: str) -> str | None:
    """The id of the tenant's subject a reference names, or None; InvalidInput for a reference that breaks the
    rules and names no record stored before them.

    Order: the canonical form exactly (every enrolment since the rules), the text exactly as sent (a record
    stored before), then the indexed comparison key of the tenant's references (a case or spacing variant, or a
    variant of a record stored before the rules)."""
    try:
        ref: str | None = canonical_reference(raw)
    except InvalidInput:
        ref = None
        if not isinstance(raw, str) or "\x00" in raw:
            raise
    for exact in dict.fromkeys(r for r in (ref, raw) if r):
        found = repositories.subject_id_for(s, tenant_id, exact)
        if found:
            return found
    matches = repositories.subject_ids_by_key(s, tenant_id, reference_key(raw)[:200])
    if not matches and ref is None:
        canonical_reference(raw)  # names no record: say which rule it breaks
    return matches[0] if matches else None


def purpose_of(s: Session, tenant_id: str, name: str) -> Purpose:
    purpose = s.get(Purpose, (tenant_id, name))
    if purpose is None:
        raise NotFound(f"Purpose '{name}' is not defined in your tenant; list the purposes defined there.",
                       code="unknown_purpose")
    return purpose


def open_templates(ctx: ServiceContext, subject: Subject) -> list[tuple[Template, np.ndarray]]:
    templates = list(subject.templates)
    vectors = ctx.keyring.open_templates(subject.tenant_id, subject.id,
                                         [(t.id, t.model_version, t.ciphertext) for t in templates])
    return list(zip(templates, vectors, strict=True))


def current_model_templates(ctx: ServiceContext, subject: Subject) -> list[np.ndarray]:
    """Embeddings of different models are not comparable: only the current model's templates count."""
    version = ctx.embedder.model.version
    return [vec for t, vec in open_templates(ctx, subject) if t.model_version == version]


def matchable(ctx: ServiceContext, s: Session, tenant_id: str, subject_ids: list[str], purposes: Collection[str], *,
              legal_bases: Collection[str] | None = None) -> dict[str, str]:
    """Subject id -> reference, for the candidates the database still allows to match: right tenant and
    purpose (the in-memory gallery is only a cache), not past their retention, the legal basis if asked."""
    if not subject_ids:
        return {}
    rows = repositories.subjects_among(s, tenant_id, subject_ids, purposes, legal_bases=legal_bases)
    policies = repositories.tenant_purposes(s, tenant_id, purposes)
    now = ctx.clock()
    return {r.id: r.external_id for r in rows if retain_until(r, policies.get(r.purpose)) > now}


def check_usable(ctx: ServiceContext, s: Session, subject: Subject) -> None:
    if subject.locked_at is not None:
        raise Locked(
            f"Face verification for '{subject.external_id}' is locked after "
            f"{ctx.settings.lockout_attempts} failed attempts. Unlock it with the subject's passcode.")
    # Past its term, the template is not used even before the retention job has destroyed it.
    expires = retain_until(subject, s.get(Purpose, (subject.tenant_id, subject.purpose)))
    if expires <= ctx.clock():
        raise Gone(f"The templates of '{subject.external_id}' expired on {expires.isoformat()}; "
                   "re-enrol with fresh consent.", code="template_expired")


def refresh_gallery(ctx: ServiceContext, *, force: bool = False) -> int:
    """Reload the gallery cache from the encrypted store when the generation moved; returns how many subjects
    were left out (their key or ciphertext failed)."""
    with ctx.db.session(readonly=True) as s:
        generation = repositories.gallery_generation(s)
        if not force and generation == ctx.gallery.generation:
            return 0
        purposes = repositories.all_purposes(s)
        version = ctx.embedder.model.version
        entries, skipped, transient = [], 0, 0
        for subject in repositories.all_subjects(s):
            if retain_until(subject, purposes.get((subject.tenant_id, subject.purpose))) <= ctx.clock():
                continue
            try:
                entries += [GalleryEntry(subject.tenant_id, subject.id, t.id, subject.purpose, vec)
                            for t, vec in open_templates(ctx, subject) if t.model_version == version]
            except FaceWardenError as exc:
                skipped += 1
                # A destroyed key or a tampered blob is final; anything else (the KEK file unreadable for a
                # moment) must not drop subjects: keep the gallery as it was and try again at the next refresh.
                transient += not isinstance(exc, (KeyUnavailable, IntegrityFailure))
                log.warning("subject %s left out of the gallery: %s", subject.id, exc.code)
    if transient and ctx.gallery.generation != -1:
        log.warning("gallery refresh postponed: %d subjects could not be opened for now", transient)
        return skipped
    ctx.gallery.replace_all(entries, -1 if transient else generation)  # -1: the next refresh tries again
    return skipped
