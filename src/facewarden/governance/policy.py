"""The rules: purposes and legal bases, consent terms, retention, police-search requests. Pure functions the
service layer asks before it acts, so every adapter gets the same answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from facewarden.errors import Forbidden, InvalidInput

LEGAL_BASES = frozenset({"consent", "contract", "law", "vital-interest", "public-task"})
# BIPA 740 ILCS 14/15(a): destroy at the latest 3 years after the individual's last interaction.
MAX_RETENTION_DAYS = 3 * 365
LAW_ENFORCEMENT = "law-enforcement"  # the purpose police searches run under; never an enrolment purpose
EMERGENCY_FOLLOW_UP = timedelta(hours=48)
# Operating points: each purpose states the false match rate it accepts; `facewarden calibrate` turns it into a
# distance threshold measured on labelled faces. Police searches return leads for people to review, among many
# more comparisons (1:N): the strictest target.
DEFAULT_TARGET_FMR = 1e-3
LAW_ENFORCEMENT_TARGET_FMR = 1e-5
MIN_TARGET_FMR, MAX_TARGET_FMR = 1e-7, 1e-1

# Authorised uses a police request may claim (Utah Code 77-23e-103, Mass. G.L. c.6 §220).
AUTHORISED_USES = frozenset({"serious-crime", "threat-to-life", "deceased-or-incapacitated", "missing-person"})
BASIS_KINDS = frozenset({"court-order", "emergency"})


@dataclass(frozen=True)
class PurposeSpec:
    name: str
    description: str
    legal_bases: frozenset[str]
    retention_days: int
    subject_category: str
    law_enforcement_searchable: bool = False
    liveness_required: bool = False  # verification needs a passed liveness session (payment, login)
    target_fmr: float = DEFAULT_TARGET_FMR  # the false match rate this purpose accepts per comparison
    # liveness sessions also flash random screen colours the face must reflect; None: wherever liveness is required
    light_challenge: bool | None = None


# Seeded into every new tenant; administrators change them under dual control.
DEFAULT_PURPOSES = (
    PurposeSpec("login", "Signing in to the operator's service with one's face", frozenset({"consent", "contract"}),
                MAX_RETENTION_DAYS, "customers", target_fmr=1e-3),
    PurposeSpec("payment", "Approving payments with one's face", frozenset({"consent", "contract"}),
                MAX_RETENTION_DAYS, "customers", target_fmr=1e-4),
    PurposeSpec("device-unlock", "Unlocking a device or door", frozenset({"consent"}), MAX_RETENTION_DAYS,
                "device users", target_fmr=1e-3),
)


def default_target_fmr(name: str) -> float:
    """The target FMR of a default purpose, or the general default."""
    return next((p.target_fmr for p in DEFAULT_PURPOSES if p.name == name), DEFAULT_TARGET_FMR)


def validate_purpose(spec: PurposeSpec) -> None:
    if not spec.name or len(spec.name) > 64 or not spec.name.replace("-", "").replace("_", "").isalnum():
        raise InvalidInput("A purpose name is 1-64 letters, digits, '-' or '_'.", code="invalid_purpose")
    if spec.name == LAW_ENFORCEMENT:
        raise InvalidInput(f"'{LAW_ENFORCEMENT}' is not an enrolment purpose: police searches reach only the "
                           "purposes marked law_enforcement_searchable.", code="invalid_purpose")
    if not spec.legal_bases or not spec.legal_bases <= LEGAL_BASES:
        raise InvalidInput(f"legal_bases must be a non-empty subset of {sorted(LEGAL_BASES)}.",
                           code="invalid_legal_basis")
    if not 1 <= spec.retention_days <= MAX_RETENTION_DAYS:
        raise InvalidInput(f"retention_days must be 1-{MAX_RETENTION_DAYS} (BIPA: at the latest 3 years after the "
                           "last interaction).", code="invalid_retention")
    if not MIN_TARGET_FMR <= spec.target_fmr <= MAX_TARGET_FMR:
        raise InvalidInput(f"target_fmr must be {MIN_TARGET_FMR:g}-{MAX_TARGET_FMR:g}: the share of comparisons "
                           "between two different people this purpose may accept (1e-3: one in a thousand).",
                           code="invalid_target_fmr")
    if spec.law_enforcement_searchable and not spec.legal_bases <= {"law", "public-task"}:
        raise InvalidInput("Only a purpose whose templates are held under a law (legal basis 'law' or "
                           "'public-task'), such as a driver's-licence gallery under a state statute, can be "
                           "searchable by law enforcement.", code="invalid_purpose")


def check_enrolment_basis(purpose_name: str, legal_bases: frozenset[str], ends_at: datetime | None,
                          legal_basis: str, now: datetime, *, doing: str = "nobody can be enrolled for it") -> None:
    """The purpose accepts this legal basis and has not ended (`doing` says what an ended purpose forbids)."""
    if legal_basis not in legal_bases:
        raise Forbidden(f"Purpose '{purpose_name}' accepts the legal bases {sorted(legal_bases)}, not "
                        f"'{legal_basis}'.", code="legal_basis_not_allowed")
    if ends_at is not None and ends_at <= now:
        raise Forbidden(f"Purpose '{purpose_name}' ended on {ends_at.isoformat()}; {doing}.",
                        code="purpose_ended")


def retention_deadline(*, created_at: datetime, last_interaction: datetime | None, retention_days: int,
                       consent_term: datetime | None, purpose_ends: datetime | None) -> datetime:
    """When a template must be destroyed: its consent term, its purpose's end or its retention period after the
    last interaction, whichever comes first."""
    since = max(created_at, last_interaction) if last_interaction else created_at
    deadline = since + timedelta(days=min(retention_days, MAX_RETENTION_DAYS))
    for other in (consent_term, purpose_ends):
        if other is not None and other < deadline:
            deadline = other
    return deadline


def check_match_purpose(subject_purpose: str, requested: str) -> None:
    if requested != subject_purpose:
        # The enrolled purpose is not named: the answer must not teach a caller which purpose to claim.
        raise Forbidden(f"This template cannot be matched for '{requested}': templates match only for the purpose "
                        "they were enrolled for.", code="purpose_mismatch")


@dataclass(frozen=True)
class RequestFields:
    case_number: str
    offence: str
    narrative: str
    authorised_use: str
    basis_kind: str
    court_order_ref: str | None
    emergency_facts: str | None
    max_candidates: int


def missing_request_fields(req: RequestFields) -> list[str]:
    """Every field a written police request must have before anyone may approve it."""
    missing = [name for name in ("case_number", "offence", "narrative", "authorised_use", "basis_kind")
               if not (getattr(req, name) or "").strip()]
    if req.basis_kind == "court-order" and not (req.court_order_ref or "").strip():
        missing.append("court_order_ref")
    if req.basis_kind == "emergency" and not (req.emergency_facts or "").strip():
        missing.append("emergency_facts")
    return missing


def check_request(req: RequestFields, allowed_uses: frozenset[str], max_candidates: int) -> None:
    if req.authorised_use not in AUTHORISED_USES:
        raise InvalidInput(f"authorised_use must be one of {sorted(AUTHORISED_USES)}.", code="invalid_request")
    if req.basis_kind not in BASIS_KINDS:
        raise InvalidInput(f"basis_kind must be one of {sorted(BASIS_KINDS)}.", code="invalid_request")
    if missing := missing_request_fields(req):
        raise InvalidInput(f"The request lacks required fields: {', '.join(missing)}.", code="request_incomplete")
    if req.authorised_use not in allowed_uses:
        raise Forbidden(f"This database's policy allows searches only for {sorted(allowed_uses)}, not "
                        f"'{req.authorised_use}'.", code="use_not_allowed")
    if not 1 <= req.max_candidates <= max_candidates:
        raise InvalidInput(f"max_candidates must be 1-{max_candidates} under this database's policy.",
                           code="invalid_request")
