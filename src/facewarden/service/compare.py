"""Compare two photos (a selfie against an identity document, say) and store nothing: no subject, no template, no
photo. One audit entry records who compared, for which purpose and legal basis, and the decision: never an
embedding, an image or a distance. (Where the purpose requires liveness, the liveness session it consumes keeps
what every session keeps: its clip fingerprint and sealed audit frames, for a limited time.)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from facewarden.errors import Forbidden, InvalidInput
from facewarden.governance import policy, roles
from facewarden.governance.actors import Actor
from facewarden.service.calibration import threshold_for
from facewarden.service.common import aware
from facewarden.service.context import ServiceContext
from facewarden.service.liveness import Liveness
from facewarden.service.subjects import purpose_of
from facewarden.vision import DetectedFace


@dataclass(frozen=True)
class ComparedPhoto:
    box: tuple[int, int, int, int]  # the face used: left, top, right, bottom in pixels of that photo
    sharpness: float | None  # operators only, like every score
    detector_score: float | None
    quality: float | None


@dataclass(frozen=True)
class CompareResult:
    match: bool
    distance: float | None  # operators only
    threshold: float | None  # operators only
    a: ComparedPhoto
    b: ComparedPhoto
    purpose: str
    legal_basis: str

    def as_dict(self) -> dict[str, Any]:
        """The answer, with the keys withheld from this caller left out (not null)."""
        def photo(p: ComparedPhoto) -> dict[str, Any]:
            out: dict[str, Any] = {"box": list(p.box)}
            if p.sharpness is not None:
                out.update(sharpness=round(p.sharpness, 1), detector_score=round(p.detector_score or 0.0, 3))
                if p.quality is not None:
                    out["quality"] = round(p.quality, 3)
            return out

        body: dict[str, Any] = {"match": self.match, "purpose": self.purpose, "legal_basis": self.legal_basis,
                                "a": photo(self.a), "b": photo(self.b), "stored": False}
        if self.distance is not None:
            body.update(distance=round(self.distance, 4), threshold=self.threshold)
        return body


class Comparing:
    def __init__(self, ctx: ServiceContext, liveness: Liveness) -> None:
        self.ctx = ctx
        self.liveness = liveness

    def compare(self, actor: Actor, a: bytes, b: bytes, *, purpose: str, legal_basis: str,
                liveness_session: str | None = None) -> CompareResult:
        """1:1 between two photos. Where the purpose requires liveness, a passed comparison session of this
        device and purpose is consumed with it: one started without a subject, whose clip's live face was checked
        against one of these two photos (its reference, the identity document), so the person in front of the
        camera is the person in the photos."""
        ctx = self.ctx
        with ctx.audited(actor, "compare", roles.OPERATOR, roles.VERIFIER, purpose=purpose or None,
                         legal_basis=legal_basis or None) as event:
            actor.check_purpose(purpose)
            if purpose == policy.LAW_ENFORCEMENT:
                raise Forbidden("Police comparisons run only under an approved written request.",
                                code="grant_required")
            ctx.check_rate(actor, ("compare",), ctx.settings.person_verify_limit_per_hour, timedelta(hours=1))
            with ctx.db.session(readonly=True) as s:
                needs_liveness = self._check_purpose(s, actor, purpose, legal_basis)
                if needs_liveness:  # before any face work
                    self.liveness.claim(s, actor, purpose, liveness_session, photos=(a, b), use=False)
                threshold = threshold_for(ctx, s, actor.tenant_id, purpose).value  # the purpose's operating point
            faces = [ctx.probe_for(img, purpose) for img in (a, b)]
            distance = ctx.embedder.distance(faces[0].embedding, faces[1].embedding)
            match = distance <= threshold
            with ctx.db.session() as s:
                if needs_liveness:  # single use, with this comparison
                    self.liveness.claim(s, actor, purpose, liveness_session, photos=(a, b))
                event.outcome = "match" if match else "no_match"
                event.details = {"liveness": needs_liveness}  # no embedding, no image, no distance
                ctx.audit.append(s, event)
        operator = roles.OPERATOR in actor.roles
        return CompareResult(match, distance if operator else None, threshold if operator else None,
                             _photo(faces[0], operator), _photo(faces[1], operator), purpose, legal_basis)

    def _check_purpose(self, s: Session, actor: Actor, purpose: str, legal_basis: str) -> bool:
        """The purpose is defined in the caller's tenant, running, and accepts the legal basis; returns whether
        it requires liveness."""
        if not purpose or len(purpose) > 64:
            raise InvalidInput("`purpose` is required (for example kyc, login, border).", code="invalid_purpose")
        if legal_basis not in policy.LEGAL_BASES:
            raise InvalidInput(f"`legal_basis` must be one of {sorted(policy.LEGAL_BASES)}.",
                               code="invalid_legal_basis")
        spec = purpose_of(s, actor.tenant_id, purpose)
        policy.check_enrolment_basis(purpose, frozenset(spec.legal_bases.split(",")), aware(spec.ends_at),
                                     legal_basis, self.ctx.clock(), doing="no comparison runs for it")
        return bool(spec.liveness_required)


def _photo(face: DetectedFace, operator: bool) -> ComparedPhoto:
    if not operator:
        return ComparedPhoto(face.box, None, None, None)
    quality = getattr(face, "quality", None)
    return ComparedPhoto(face.box, face.sharpness, face.detector_score,
                         float(quality) if quality is not None else None)
