"""Typed errors without transport details: a stable code, a kind, and a message that says what to do.

No HTTP status and no URL lives here or in the service: the adapters (`api/errors.py`) turn a kind into a
status, the CLI into an exit message. Every code a use case raises is listed in `CATALOGUE` with what it
means, so clients and the README can rely on it (a unit test checks the source against the catalogue).
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    """What sort of failure, independent of how an adapter reports it."""

    INVALID = "invalid"  # the request itself is wrong
    UNAUTHORIZED = "unauthorized"  # who is asking is unknown
    FORBIDDEN = "forbidden"  # known, but not allowed
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"  # the state does not allow it now
    GONE = "gone"  # it existed and has expired or been destroyed
    TOO_LARGE = "too_large"  # bytes, pixels, frames or seconds over a limit
    UNSUPPORTED = "unsupported"  # a media type or codec that is not accepted
    UNPROCESSABLE = "unprocessable"  # well-formed, but no usable face in it
    LOCKED = "locked"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"  # the client sent its request too slowly
    UNAVAILABLE = "unavailable"  # a part of the deployment is missing or down (retry later, or configure it)
    UPSTREAM = "upstream"  # another service we depend on answered badly
    INTERNAL = "internal"  # the deployment is misconfigured or broken


class FaceWardenError(Exception):
    """Base error. `code` is stable for clients; `message` explains what went wrong and what to do."""

    kind = ErrorKind.INVALID
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, kind: ErrorKind | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if kind is not None:
            self.kind = kind


class InvalidInput(FaceWardenError):
    kind = ErrorKind.INVALID
    code = "invalid_input"


class NotFound(FaceWardenError):
    kind = ErrorKind.NOT_FOUND
    code = "not_found"


class Conflict(FaceWardenError):
    kind = ErrorKind.CONFLICT
    code = "conflict"


class Forbidden(FaceWardenError):
    kind = ErrorKind.FORBIDDEN
    code = "forbidden"


class Unauthorized(FaceWardenError):
    kind = ErrorKind.UNAUTHORIZED
    code = "unauthorized"


class Locked(FaceWardenError):
    kind = ErrorKind.LOCKED
    code = "verification_locked"


class Gone(FaceWardenError):
    kind = ErrorKind.GONE
    code = "gone"


class TooLarge(FaceWardenError):
    kind = ErrorKind.TOO_LARGE
    code = "too_large"


class Unsupported(FaceWardenError):
    kind = ErrorKind.UNSUPPORTED
    code = "unsupported_media"


class Unprocessable(FaceWardenError):
    kind = ErrorKind.UNPROCESSABLE
    code = "unprocessable"


class RateLimited(FaceWardenError):
    kind = ErrorKind.RATE_LIMITED
    code = "rate_limited"


class Unavailable(FaceWardenError):
    kind = ErrorKind.UNAVAILABLE
    code = "unavailable"


class UpstreamFailure(FaceWardenError):
    kind = ErrorKind.UPSTREAM
    code = "upstream"


class InternalError(FaceWardenError):
    kind = ErrorKind.INTERNAL
    code = "internal"


class IntegrityFailure(Conflict):
    """Stored ciphertext failed authentication: it was altered, moved or its key is gone."""

    code = "template_integrity"


class KeyUnavailable(Gone):
    code = "key_destroyed"


# Every code a client can receive, what it means and what to do; grouped by kind. The kind of a raised error is
# its class's; this catalogue documents the codes and lets a test hold the source to it.
CATALOGUE: dict[str, tuple[ErrorKind, str]] = {
    # the request itself is wrong
    "bad_request": (ErrorKind.INVALID, "The request is malformed."),
    "invalid_input": (ErrorKind.INVALID, "A value is out of its allowed range or format."),
    "file_unreadable": (ErrorKind.INVALID, "A file named on the command line is missing or unreadable."),
    "invalid_request": (ErrorKind.INVALID, "A field is missing, too long or of the wrong type."),
    "invalid_subject": (ErrorKind.INVALID, "A subject reference is 1-200 characters (after NFKC and trimming), "
                                           "without control characters or / and \\, and not only dots."),
    "invalid_subjects": (ErrorKind.INVALID, "A batch needs 1-10000 subject references."),
    "invalid_purpose": (ErrorKind.INVALID, "A purpose is required and at most 64 characters."),
    "invalid_legal_basis": (ErrorKind.INVALID, "The legal basis is not one of the known ones."),
    "consent_missing": (ErrorKind.INVALID, "Enrolment on consent needs when and how the person agreed."),
    "invalid_expiry": (ErrorKind.INVALID, "An expiry lies in the past."),
    "invalid_passcode": (ErrorKind.INVALID, "A passcode must be 6-128 characters."),
    "image_count": (ErrorKind.INVALID, "Too few or too many photos for one enrolment."),
    "invalid_max_candidates": (ErrorKind.INVALID, "max_candidates must be 1-50."),
    "invalid_page": (ErrorKind.INVALID, "Paging limits are out of range."),
    "invalid_roles": (ErrorKind.INVALID, "Unknown or missing roles."),
    "invalid_name": (ErrorKind.INVALID, "A person's name must be 1-200 characters."),
    "invalid_policy": (ErrorKind.INVALID, "A police-search policy value is out of range."),
    "invalid_target_fmr": (ErrorKind.INVALID, "A purpose's target FMR is outside 1e-7 to 1e-1."),
    "invalid_retention": (ErrorKind.INVALID, "A retention period is out of the allowed range (at most 3 years)."),
    "invalid_period": (ErrorKind.INVALID, "A report period is empty, reversed or too long."),
    "invalid_limit": (ErrorKind.INVALID, "An audit query limit is out of range."),
    "invalid_timestamps": (ErrorKind.INVALID, "Frame timestamps must increase."),
    "invalid_liveness_media": (ErrorKind.INVALID, "Send either a video or frames, not both or neither."),
    "liveness_reference_required": (ErrorKind.INVALID, "A comparison's liveness session needs the reference photo "
                                    "(the identity document) with the clip."),
    "legal_basis_not_allowed": (ErrorKind.FORBIDDEN, "The purpose does not accept this legal basis."),
    "purpose_ended": (ErrorKind.FORBIDDEN, "The purpose has ended; nothing more is enrolled for it."),
    "person_required": (ErrorKind.INVALID, "Keys with deciding roles must belong to a named person."),
    "reason_required": (ErrorKind.INVALID, "A decision needs its written reason."),
    "request_incomplete": (ErrorKind.INVALID, "A police request misses required fields."),
    "bad_range": (ErrorKind.INVALID, "A proof was asked for a range the log does not have."),
    "bad_dataset": (ErrorKind.INVALID, "The evaluation folder is not laid out as expected."),
    "corrupt_image": (ErrorKind.INVALID, "The photo could not be decoded."),
    "empty_image": (ErrorKind.INVALID, "The photo is empty."),
    "corrupt_video": (ErrorKind.INVALID, "The clip could not be decoded."),
    "empty_video": (ErrorKind.INVALID, "The clip has no frames."),
    "frame_size_changed": (ErrorKind.INVALID, "The frames of a clip must all have the same size."),
    "nul_byte_in_text": (ErrorKind.INVALID, "Text fields and path parameters may not contain NUL (0x00) characters."),
    # who is asking
    "unauthorized": (ErrorKind.UNAUTHORIZED, "The API key or credential is missing, unknown or revoked."),
    "wrong_passcode": (ErrorKind.UNAUTHORIZED, "The passcode is wrong; the answer says how many tries are left."),
    # not allowed
    "forbidden": (ErrorKind.FORBIDDEN, "Your roles do not allow this; ask an administrator."),
    "wrong_tenant": (ErrorKind.FORBIDDEN, "Only the local administrator acts on another tenant."),
    "deployment_only": (ErrorKind.FORBIDDEN, "Keys and retention are run by the deployment's own administrators."),
    "dual_control_required": (ErrorKind.FORBIDDEN, "A second administrator must approve this."),
    "same_person": (ErrorKind.FORBIDDEN, "Nobody approves or reviews their own proposal or request."),
    "role_not_held": (ErrorKind.FORBIDDEN, "A key can carry only its person's roles."),
    "purpose_not_allowed_for_key": (ErrorKind.FORBIDDEN, "This key is bound to other purposes."),
    "purpose_mismatch": (ErrorKind.FORBIDDEN, "The template does not match for this purpose."),
    "no_passcode": (ErrorKind.FORBIDDEN, "The subject has no passcode; an administrator must set one."),
    "erasure_needs_operator": (ErrorKind.FORBIDDEN, "Records held under a law are erased by the operator."),
    "liveness_required": (ErrorKind.FORBIDDEN, "This purpose needs a passed liveness session."),
    "liveness_invalid": (ErrorKind.FORBIDDEN, "The liveness session is not a fresh pass for this subject (or this "
                         "comparison's reference photo) and device."),
    "grant_required": (ErrorKind.FORBIDDEN, "Police searches run only under an approved request's grant."),
    "grant_expired": (ErrorKind.FORBIDDEN, "The search grant has expired; file a new request."),
    "grant_used_up": (ErrorKind.FORBIDDEN, "The search grant's searches are used up; file a new request."),
    "own_agency_review": (ErrorKind.FORBIDDEN, "The policy wants a reviewer of another agency."),
    "use_not_allowed": (ErrorKind.FORBIDDEN, "The database's policy does not allow this use."),
    "local_only": (ErrorKind.FORBIDDEN, "Only the local administrator (CLI on the server) runs this."),
    "self_service_only": (ErrorKind.FORBIDDEN, "A subject credential reaches only its own record (the me endpoints)."),
    # not found
    "not_found": (ErrorKind.NOT_FOUND, "No such record in your tenant."),
    "unknown_purpose": (ErrorKind.NOT_FOUND, "The purpose is not defined in your tenant."),
    "person_not_found": (ErrorKind.NOT_FOUND, "No such active person in that tenant."),
    "unknown_agency": (ErrorKind.NOT_FOUND, "No agency of that name accepts search requests here."),
    "request_not_found": (ErrorKind.NOT_FOUND, "No such police request for your agency."),
    "search_not_found": (ErrorKind.NOT_FOUND, "No such police search for your agency."),
    "candidate_not_found": (ErrorKind.NOT_FOUND, "No such candidate in a search of your agency's database."),
    "emergency_search_not_found": (ErrorKind.NOT_FOUND, "No emergency search of your agency has that id."),
    "liveness_session_not_found": (ErrorKind.NOT_FOUND, "No such liveness session for this device."),
    "unknown_log": (ErrorKind.NOT_FOUND, "This witness does not follow that log."),
    "not_in_tree": (ErrorKind.INVALID, "The entry is not in the tree of that size."),
    # the state does not allow it now
    "conflict": (ErrorKind.CONFLICT, "The record's state does not allow this now."),
    "already_enrolled": (ErrorKind.CONFLICT, "The subject is enrolled already; erase it first to re-enrol."),
    "model_mismatch": (ErrorKind.CONFLICT, "The templates were made by another face model; re-enrol."),
    "different_person": (ErrorKind.CONFLICT, "A photo added to a subject does not match its enrolled face."),
    "too_many_templates": (ErrorKind.CONFLICT, "The subject holds the most templates allowed; erase and re-enrol."),
    "not_consent_based": (ErrorKind.CONFLICT, "The record is not held on consent; ask the operator to erase it."),
    "template_integrity": (ErrorKind.CONFLICT, "A stored ciphertext failed its integrity check."),
    "searchable_needs_law": (ErrorKind.CONFLICT, "Templates enrolled on consent or contract are never searchable."),
    "action_decided": (ErrorKind.CONFLICT, "The pending action was decided already."),
    "action_expired": (ErrorKind.CONFLICT, "The proposal is older than 7 days; propose it again."),
    "request_decided": (ErrorKind.CONFLICT, "The police request was decided already."),
    "already_confirmed": (ErrorKind.CONFLICT, "Two reviewers have confirmed this lead already."),
    "same_reviewer": (ErrorKind.CONFLICT, "A second, different reviewer must confirm the lead."),
    "follow_up_mismatch": (ErrorKind.CONFLICT, "A follow-up must be for the emergency's own case and database."),
    "follow_up_too_late": (ErrorKind.CONFLICT, "The written request came after the 48-hour deadline."),
    "follow_up_exists": (ErrorKind.CONFLICT, "A written request already follows up this emergency search."),
    "liveness_session_used": (ErrorKind.CONFLICT, "Liveness sessions are single-use."),
    "inconsistent_head": (ErrorKind.CONFLICT, "A tree head contradicts one seen before: the log was rewritten."),
    "witness_refused": (ErrorKind.UPSTREAM, "A witness refused the tree head."),
    # existed and is gone
    "gone": (ErrorKind.GONE, "It existed and has expired or been destroyed."),
    "key_destroyed": (ErrorKind.GONE, "The data key was destroyed (the subject was erased)."),
    "template_expired": (ErrorKind.GONE, "The templates are past their retention date; re-enrol with fresh consent."),
    "liveness_expired": (ErrorKind.GONE, "The liveness session expired; start a new one."),
    "search_closed": (ErrorKind.GONE, "The search was closed; its candidates can no longer be confirmed."),
    # over a limit
    "too_large": (ErrorKind.TOO_LARGE, "Over a size limit."),
    "request_too_large": (ErrorKind.TOO_LARGE, "The request body is over the limit."),
    "image_too_large": (ErrorKind.TOO_LARGE, "The photo is over the byte limit."),
    "too_many_pixels": (ErrorKind.TOO_LARGE, "The photo or frame has too many pixels."),
    "video_too_large": (ErrorKind.TOO_LARGE, "The clip is over the byte limit."),
    "video_too_long": (ErrorKind.TOO_LARGE, "The clip is longer than allowed."),
    "too_many_frames": (ErrorKind.TOO_LARGE, "The clip has too many frames."),
    # media not accepted
    "unsupported_media": (ErrorKind.UNSUPPORTED, "The media type is not accepted."),
    "unsupported_image": (ErrorKind.UNSUPPORTED, "Send JPEG, PNG, WebP, GIF or PGM photos."),
    "unsupported_video": (ErrorKind.UNSUPPORTED, "Send an MP4 or WebM clip."),
    # no usable face
    "unprocessable": (ErrorKind.UNPROCESSABLE, "The input holds no usable face."),
    "no_face": (ErrorKind.UNPROCESSABLE, "No face was found in the photo."),
    "multiple_faces": (ErrorKind.UNPROCESSABLE, "Several faces and none clearly the main one (the largest by "
                       "far, or the one at the centre); send a photo of one person."),
    "face_too_small": (ErrorKind.UNPROCESSABLE, "The face is too small; move closer."),
    "face_blurred": (ErrorKind.UNPROCESSABLE, "The face is too blurred; take a sharper photo."),
    "face_low_quality": (ErrorKind.UNPROCESSABLE, "The face is unlikely to be recognised (turned away, badly lit "
                         "or unclear); retake a frontal, well-lit photo."),
    "image_too_small": (ErrorKind.UNPROCESSABLE, "The photo is too narrow or too short to hold a face."),
    "video_too_small": (ErrorKind.UNPROCESSABLE, "The clip's frames are too narrow or too short to hold a face."),
    # locked
    "verification_locked": (ErrorKind.LOCKED, "Too many failed verifications; unlock with the passcode."),
    "passcode_locked": (ErrorKind.LOCKED, "Too many wrong passcodes; an administrator must set a new one."),
    # rate limits
    "rate_limited": (ErrorKind.RATE_LIMITED, "Too many requests; retry after the time given."),
    "person_rate_limited": (ErrorKind.RATE_LIMITED, "Your per-person limit for this operation is used up."),
    "liveness_rate_limited": (ErrorKind.RATE_LIMITED, "Too many failed liveness checks; try later."),
    # too slow
    "request_timeout": (ErrorKind.TIMEOUT, "The request body stalled or took too long; the connection is closed."),
    # the deployment
    "unavailable": (ErrorKind.UNAVAILABLE, "A part of the deployment is not available; retry or configure it."),
    "database_unavailable": (ErrorKind.UNAVAILABLE, "The database is missing or unreachable; the message says "
                             "which and what to do."),
    "storage_full": (ErrorKind.UNAVAILABLE, "The server's disk is full; nothing is written or audited until the "
                     "operator frees space (reads that need an audit entry are refused too)."),
    "server_busy": (ErrorKind.UNAVAILABLE, "Too many uploads are being processed; retry after the time given."),
    "liveness_unavailable": (ErrorKind.UNAVAILABLE, "Liveness needs the PAD models (FACEWARDEN_PAD_MODEL_DIR)."),
    "pad_model_unavailable": (ErrorKind.UNAVAILABLE, "The PAD model files are missing or do not match their hashes."),
    "witness_unavailable": (ErrorKind.UPSTREAM, "A witness could not be reached or answered badly."),
    "upstream": (ErrorKind.UPSTREAM, "A service we depend on answered badly."),
    "internal": (ErrorKind.INTERNAL, "The deployment is misconfigured or broken."),
    "internal_error": (ErrorKind.INTERNAL, "An unexpected error; the server logged it (without the request)."),
    "config": (ErrorKind.INTERNAL, "The configuration is missing or wrong; the message says which setting."),
    "key_file": (ErrorKind.INTERNAL, "The key file is missing, unreadable or too open."),
    "hsm": (ErrorKind.INTERNAL, "The HSM (PKCS#11) failed; the message says how."),
    "audit_key": (ErrorKind.INTERNAL, "The audit signing key is missing or unreadable."),
    "audit_detail": (ErrorKind.INTERNAL, "An audit entry's details could not be recorded."),
    "audit_gap": (ErrorKind.CONFLICT, "The audit log has a gap."),
    "audit_inconsistent": (ErrorKind.CONFLICT, "The audit log's stored state is inconsistent."),
    "audit_truncated": (ErrorKind.CONFLICT, "The audit log is shorter than a signed head says."),
    "log_truncated": (ErrorKind.CONFLICT, "The log is shorter than a head it signed."),
    "malformed_tree_head": (ErrorKind.INVALID, "A tree head is malformed."),
    "bad_proof": (ErrorKind.INVALID, "A proof does not verify."),
    "bad_signature": (ErrorKind.INVALID, "A signature does not verify."),
}
