"""Liveness use cases: single-use challenge sessions bound to a device and a subject (or, for a comparison of two
photos, a reference photo), the fused check of the clip the client captured, and the passed session a verification
or comparison consumes when its purpose demands one.

Clients learn pass or fail only; every check's score stays in the session row.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import io
import json
import logging
import secrets
import threading
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
from sqlalchemy.orm import Session

from facewarden.audit import AuditEvent
from facewarden.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound, RateLimited, Unavailable
from facewarden.governance import policy, roles
from facewarden.governance.actors import Actor
from facewarden.imaging.video import VideoLimits, decode_frames, decode_video
from facewarden.service.calibration import threshold_for
from facewarden.service.common import aware, describe
from facewarden.service.context import ServiceContext
from facewarden.service.subjects import current_model_templates, purpose_of, subject_of
from facewarden.store import ApiKey, LivenessFrame, LivenessSession, Person, Purpose, Subject, repositories

if TYPE_CHECKING:
    from facewarden.liveness.decision import LivenessChecker

log = logging.getLogger("facewarden.liveness")

MAX_AUDIT_FRAMES = 4
FINGERPRINT_MEMORY = timedelta(days=90)  # accepted clips are remembered this long to refuse their replay
COMPARISON_FINGERPRINTS = 500  # a comparison clip is checked against the tenant's latest accepted ones
# Clear movements, then back: the checks read turns of 15 degrees and look-ups of 12 from the first moments, and
# a movement only just past that is where compression and landmark noise refuse real people (bench_field).
INSTRUCTIONS = {"turn_left": "Turn your head well to your left, then back",
                "turn_right": "Turn your head well to your right, then back",
                "blink": "Blink slowly", "look_up": "Look up at the ceiling, then back"}


class LivenessUnavailable(Unavailable):
    code = "liveness_unavailable"


class Liveness:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._checker: LivenessChecker | None = None

    def checker(self) -> LivenessChecker:
        """The checker, loaded on first use (its PAD models come from a configured folder)."""
        settings = self.ctx.settings
        with self._lock:
            if self._checker is None:
                if settings.pad_model_dir is None:
                    raise LivenessUnavailable("Liveness checks need the presentation-attack models: set "
                                              "FACEWARDEN_PAD_MODEL_DIR to the folder that holds them.")
                from facewarden.liveness.decision import LivenessChecker
                from facewarden.liveness.landmarks import LandmarkDetector
                from facewarden.liveness.pad import PadScorer

                self._checker = LivenessChecker(self.ctx.embedder, PadScorer(settings.pad_model_dir),  # type: ignore[arg-type]
                                                LandmarkDetector(settings.liveness_landmarks),
                                                match_threshold=settings.match_threshold)
            return self._checker

    def _video_limits(self) -> VideoLimits:
        return VideoLimits(max_bytes=self.ctx.settings.liveness_max_video_bytes,
                           max_duration_s=self.ctx.settings.liveness_max_seconds)

    # -- sessions ------------------------------------------------------------------------------
    def start(self, actor: Actor, external_id: str | None, *, purpose: str) -> dict[str, Any]:
        """Issue a random 2-3 action challenge with a nonce, for this subject (None: for a comparison of two
        photos, whose reference photo comes with the clip) on this device, for minutes."""
        ctx = self.ctx
        with ctx.audited(actor, "liveness_start", roles.OPERATOR, roles.VERIFIER, purpose=purpose) as event, \
                ctx.db.session() as s:
            actor.check_purpose(purpose)
            subject_id = None
            if external_id is None:
                if purpose == policy.LAW_ENFORCEMENT:
                    raise Forbidden("Police comparisons run only under an approved written request.",
                                    code="grant_required")
                purpose_of(s, actor.tenant_id, purpose)  # a comparison's purpose must exist in this tenant
            else:
                subject = subject_of(s, actor, external_id)
                describe(event, subject)
                policy.check_match_purpose(subject.purpose, purpose)
                subject_id = subject.id
            now = ctx.clock()
            failures = repositories.failed_liveness_sessions(s, subject_id, actor.principal, now - timedelta(hours=1))
            if failures >= ctx.settings.liveness_max_failures_per_hour:
                whose = "of this subject" if subject_id else "for comparisons"
                raise RateLimited(f"{failures} liveness checks {whose} failed on this device in the last "
                                  "hour; try again later or verify another way.", code="liveness_rate_limited")
            from facewarden.liveness.challenge import new_challenge
            from facewarden.liveness.light import light_start_s, new_light_challenge

            challenge = new_challenge()
            row = s.get(Purpose, (actor.tenant_id, purpose))
            light = new_light_challenge(start_s=light_start_s(len(challenge.actions))) \
                if row is not None and row.light_challenge else None
            token = secrets.token_urlsafe(32)  # lets the capture page read this challenge and send one clip
            session = LivenessSession(
                id=str(uuid.uuid4()), tenant_id=actor.tenant_id, subject_id=subject_id, device=actor.principal,
                purpose=purpose, actions=",".join(a.value for a in challenge.actions), nonce=challenge.nonce,
                status="issued", created_at=now, light=json.dumps(light.to_json()) if light else None,
                capture_token=hashlib.sha256(token.encode()).hexdigest(),
                expires_at=now + timedelta(seconds=ctx.settings.liveness_session_ttl_s))
            s.add(session)
            event.details = {"session": session.id, "actions": len(challenge.actions),
                             "for": "verification" if subject_id else "comparison", "light": light is not None}
            ctx.audit.append(s, event)
            reference = "" if subject_id else (" With it, send `reference`: the photo the live face must match "
                                               "(the identity document), the same file you will compare.")
            flashes = (" While filming, show the colours of `light` full-screen, in order, from `start_ms` after "
                       "the recording starts (the capture page does this).") if light else ""
            return {"session_id": session.id, "nonce": challenge.nonce,
                    "actions": [a.value for a in challenge.actions],
                    "instructions": [INSTRUCTIONS[a.value] for a in challenge.actions],
                    "expires_at": session.expires_at.isoformat(),
                    "light": light.to_json() if light else None,
                    "capture_token": token,
                    "capture": "Look at the camera for one second, then do the actions in this order; send the "
                               f"clip (mp4/webm, at most {ctx.settings.liveness_max_seconds:.0f} s) or its frames."
                               + flashes + reference}

    def submit(self, actor: Actor, session_id: str, *, video: bytes | None = None,
               frames: Sequence[tuple[bytes, float]] | None = None, reference: bytes | None = None,
               via: str = "api") -> dict[str, Any]:
        """Check the captured clip against the session's challenge, and the live face against the subject's
        templates or, for a comparison, against the `reference` photo (kept only as its SHA-256, which the
        comparison must then present). Answers pass or fail only."""
        ctx = self.ctx
        with ctx.audited(actor, "liveness_check", roles.OPERATOR, roles.VERIFIER) as event:
            event.details = {"session": session_id, "via": via}  # a refusal is recorded with where it came from
            with ctx.db.session(readonly=True) as s:
                session = self._open_session(s, actor, session_id)
                if via == "capture_page" and session.subject_id is None:
                    raise InvalidInput("A comparison's session needs the reference photo with the clip: send "
                                       "both through the API, the photo as `reference`.",
                                       code="liveness_reference_required")
                event.subject_id = session.subject_id
                event.purpose = session.purpose
                digest = _reference_digest(session, reference)
                enrolled: list[np.ndarray] = []
                if session.subject_id is not None:
                    subject = s.get(Subject, session.subject_id)
                    if subject is None:
                        raise NotFound("The subject of this session is no longer enrolled.")
                    enrolled = current_model_templates(ctx, subject)
                    # A replay claims the same person (another face fails continuity), so their sessions suffice.
                    remembered = repositories.liveness_fingerprints(s, subject.id, ctx.clock() - FINGERPRINT_MEMORY)
                else:  # a replayed comparison clip may come with any re-encoding of the document
                    remembered = repositories.comparison_fingerprints(s, actor.tenant_id,
                                                                      ctx.clock() - FINGERPRINT_MEMORY,
                                                                      COMPARISON_FINGERPRINTS)
                earlier = [json.loads(f) for f in remembered]
                actions, nonce = session.actions.split(","), session.nonce
                light = json.loads(session.light) if session.light else None
                threshold = threshold_for(ctx, s, actor.tenant_id, session.purpose).value  # the purpose's own
            if (video is None) == (frames is None):
                raise InvalidInput("Send either a video or a list of frames.", code="invalid_liveness_media")
            if reference is not None:  # the document's face, embedded for this check and then dropped
                enrolled = [ctx.probe_for(reference, session.purpose).embedding]
            clip = decode_video(video, self._video_limits()) if video is not None \
                else decode_frames(frames or [], self._video_limits())
            from facewarden.liveness.challenge import Action, Challenge
            from facewarden.liveness.light import LightChallenge

            checker = copy.copy(self.checker())  # shares the models; only the identity threshold is this purpose's
            checker.match_threshold = threshold
            decision = checker.assess(clip, Challenge(tuple(Action(a) for a in actions), nonce),
                                      enrolled=enrolled, earlier_fingerprints=earlier,
                                      light=LightChallenge.from_json(light) if light else None)
            return self._record(actor, session_id, clip, decision, event, digest, via)

    # -- the capture page: one session's challenge and one clip, with the session's own token --------------------
    def _capture_actor(self, session_id: str, token: str, operation: str) -> tuple[Actor, LivenessSession]:
        """The device that started the session, acting through the capture page: only with the session's token
        (compared by SHA-256 in constant time), only while the session is open."""
        device_ok = False
        with self.ctx.db.session(readonly=True) as s:
            session = s.get(LivenessSession, session_id)
            if session is not None:
                s.expunge(session)
                device_ok = _principal_active(s, session.device)
        good = session is not None and session.capture_token is not None and hmac.compare_digest(
            session.capture_token, hashlib.sha256(token.encode()).hexdigest())
        if session is None or not good:
            if session is not None:  # a wrong token for a real session: worth an audit entry
                self.ctx.audit.record(AuditEvent(session.tenant_id, "capture-page", operation,
                                                 outcome="capture_token_invalid", details={"session": session_id}))
            raise NotFound("No such liveness session, or the capture link is wrong; start a new session.",
                           code="liveness_session_not_found")
        if not device_ok:  # the key or person that started the session was revoked since
            raise NotFound("The device that started this session is no longer allowed; start a new session.",
                           code="liveness_session_not_found")
        actor = Actor(session.tenant_id, session.device, frozenset({roles.VERIFIER}))
        return actor, session

    def capture_challenge(self, session_id: str, token: str) -> dict[str, Any]:
        """What the capture page shows: the actions, their instructions and the colours (no scores, no subject)."""
        _, session = self._capture_actor(session_id, token, "liveness_capture_open")
        self._still_open(session)
        from facewarden.liveness.light import BASELINE_MS, PROMPT_MS

        actions = session.actions.split(",")
        return {"session_id": session.id, "actions": actions, "instructions": [INSTRUCTIONS[a] for a in actions],
                "baseline_ms": BASELINE_MS, "prompt_ms": PROMPT_MS,
                "light": json.loads(session.light) if session.light else None,
                "expires_at": aware(session.expires_at).isoformat(),  # type: ignore[union-attr]
                "max_seconds": self.ctx.settings.liveness_max_seconds,
                "needs_reference": session.subject_id is None}

    def submit_capture(self, session_id: str, token: str, video: bytes) -> dict[str, Any]:
        """The capture page's clip, checked as the device's own submission (audited as coming via the page)."""
        actor, _ = self._capture_actor(session_id, token, "liveness_check")
        return self.submit(actor, session_id, video=video, via="capture_page")

    def _open_session(self, s: Session, actor: Actor, session_id: str, *, for_update: bool = False) -> LivenessSession:
        session = s.get(LivenessSession, session_id, with_for_update=for_update)
        if session is None or session.tenant_id != actor.tenant_id or session.device != actor.principal:
            raise NotFound("No such liveness session for this device; start a new one.",
                           code="liveness_session_not_found")
        return self._still_open(session)

    def _still_open(self, session: LivenessSession) -> LivenessSession:
        """The session can still be answered: not yet decided, not expired."""
        if session.status != "issued":
            raise Conflict(f"This liveness session is already {session.status}; sessions are single-use.",
                           code="liveness_session_used")
        if aware(session.expires_at) <= self.ctx.clock():  # type: ignore[operator]
            raise Gone("This liveness session expired; start a new one.", code="liveness_expired")
        return session

    def _record(self, actor: Actor, session_id: str, clip: Sequence[Any], decision: Any,
                event: AuditEvent, reference_digest: str | None, via: str) -> dict[str, Any]:
        ctx = self.ctx
        # The audit frames' key (if any) is confirmed once this commits, destroyed if it never did.
        with ctx.keyring.creating("liveness") as new_keys, ctx.db.session() as s:
            session = self._open_session(s, actor, session_id, for_update=True)  # one answer per session
            session.status = "passed" if decision.passed else "failed"
            session.decided_at = ctx.clock()
            session.reasons = ",".join(decision.reasons)[:400] or None
            session.scores = json.dumps(decision.scores, default=_jsonable)
            if decision.passed:
                session.fingerprint = json.dumps(decision.fingerprint, default=_jsonable)
                session.reference_digest = reference_digest
            new_keys.append(ctx.keyring.liveness_key(session.id))
            kept = self._seal_audit_frames(s, session, [clip[i] for i in decision.audit_frames[:MAX_AUDIT_FRAMES]])
            event.outcome = session.status
            event.details = {"session": session_id, "frames": len(clip), "reasons": list(decision.reasons),
                             "audit_frames": kept, "via": via}
            ctx.audit.append(s, event)
        log.info("liveness session=%s %s reasons=%s", session_id, session.status, session.reasons)
        return {"session_id": session_id, "passed": decision.passed}

    def _seal_audit_frames(self, s: Session, session: LivenessSession, frames: Sequence[Any]) -> int:
        """Keep a few frames for a later review, sealed under the session's own key, destroyed on expiry."""
        if not frames:
            return 0
        jpegs = []
        for frame in frames:
            buf = io.BytesIO()
            Image.fromarray(np.asarray(frame.rgb)).save(buf, format="JPEG", quality=85)
            jpegs.append(buf.getvalue())
        expires = self.ctx.clock() + timedelta(days=self.ctx.settings.liveness_audit_frames_days)
        sealed = self.ctx.keyring.seal_liveness_frames(session.tenant_id, session.id, jpegs)
        for i, blob in enumerate(sealed):
            s.add(LivenessFrame(id=str(uuid.uuid4()), session_id=session.id, idx=i, ciphertext=blob,
                                expires_at=expires))
        return len(frames)

    # -- what verification and retention ask of liveness ------------------------------------------
    def required(self, s: Session, subject: Subject) -> bool:
        purpose = s.get(Purpose, (subject.tenant_id, subject.purpose))
        return bool(purpose and purpose.liveness_required)

    def consume(self, s: Session, actor: Actor, subject: Subject, session_id: str | None) -> None:
        """Inside the verification's transaction: a passed, unused session of this subject, device and purpose."""
        self.claim(s, actor, subject.purpose, session_id, subject=subject)

    def claim(self, s: Session, actor: Actor, purpose: str, session_id: str | None, *,
              subject: Subject | None = None, photos: Sequence[bytes] = (), use: bool = True) -> LivenessSession:
        """A passed, fresh, unused session of this tenant, device and purpose, and of `subject` for a
        verification; for a comparison (no subject), a session started without one whose live face was checked
        against one of `photos` (by SHA-256; none given: not checked yet). `use=False` only checks, before any
        face work; `use=True` spends it, inside the transaction of the comparison it vouches for."""
        now = self.ctx.clock()
        if not session_id:
            raise Forbidden(f"Purpose '{purpose}' requires a passed liveness session: start one and send "
                            "its id as `liveness_session`.", code="liveness_required")
        session = s.get(LivenessSession, session_id, with_for_update=True)
        if (session is None or session.tenant_id != actor.tenant_id or session.device != actor.principal
                or session.subject_id != (subject.id if subject is not None else None)
                or session.purpose != purpose):
            raise Forbidden("That liveness session was not issued for this subject, purpose and device (a "
                            "comparison needs a session started without a subject).", code="liveness_invalid")
        valid_until = (aware(session.decided_at) or now) + timedelta(seconds=self.ctx.settings.liveness_pass_valid_s)
        if session.status != "passed" or valid_until <= now:
            raise Forbidden(f"That liveness session is {session.status if session.status != 'passed' else 'stale'}; "
                            "a comparison needs a freshly passed one.", code="liveness_invalid")
        if photos and session.reference_digest not in {hashlib.sha256(p).hexdigest() for p in photos}:
            raise Forbidden("That liveness session checked the live face against another photo: compare the "
                            "same reference photo that was sent with the clip.", code="liveness_invalid")
        if use:
            session.status, session.used_at = "used", now
            session.reference_digest = None  # it has served: no identifier of the document is kept
        return session

    def expire_frames(self) -> int:
        """Retention: sealed audit frames past their date are deleted and their session keys destroyed; clip
        fingerprints and reference digests older than the replay memory are cleared."""
        keyring = self.ctx.keyring
        with self.ctx.db.session() as s:
            repositories.forget_old_fingerprints(s, self.ctx.clock() - FINGERPRINT_MEMORY)
            sessions = repositories.delete_expired_liveness_frames(s, self.ctx.clock())
            keys = [keyring.liveness_key(sid) for sid in sessions]
            keyring.begin_shred(keys)  # journalled before the deletion commits; destroyed once it has
            s.info.setdefault("after_commit", []).append(lambda: keyring.finish_shred(keys))
        return len(sessions)


def _principal_active(s: Session, principal: str) -> bool:
    """Whether the API key or person named by an actor's principal is still allowed in."""
    kind, _, ident = principal.partition(":")
    if kind == "apikey":
        key = s.get(ApiKey, ident)
        return key is not None and key.revoked_at is None
    if kind == "person":
        person = s.get(Person, ident)
        return person is not None and person.disabled_at is None
    return True  # the local administrator (CLI)


def _reference_digest(session: LivenessSession, reference: bytes | None) -> str | None:
    """The reference photo's SHA-256: required for a comparison's session, refused for a subject's."""
    if session.subject_id is not None:
        if reference is not None:
            raise InvalidInput("This session is for verifying an enrolled subject: the enrolled templates are the "
                               "reference, so send no `reference` photo.", code="invalid_liveness_media")
        return None
    if not reference:
        raise InvalidInput("This session is for a comparison: send `reference`, the photo the live face must "
                           "match (the identity document), with the clip.", code="liveness_reference_required")
    return hashlib.sha256(reference).hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
