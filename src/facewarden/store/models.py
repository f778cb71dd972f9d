"""Tables of the main database. Face data appears only as AES-GCM ciphertext (`Template.ciphertext`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # SHA-256 of a 256-bit random secret: a slow hash adds nothing for secrets of this entropy.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    roles: Mapped[str] = mapped_column(String(200))  # comma-separated
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    person_id: Mapped[str | None] = mapped_column(ForeignKey("persons.id", name="fk_api_keys_person_id"),
                                                  index=True)  # None: a device or app, not a person
    purposes: Mapped[str | None] = mapped_column(String(400))  # comma-separated; None: any of the tenant's


class Subject(Base):
    __tablename__ = "subjects"
    __table_args__ = (UniqueConstraint("tenant_id", "external_id", name="uq_subject_external"),
                      Index("ix_subjects_tenant_reference_key", "tenant_id", "reference_key"))
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(200))  # the operator's reference for the person
    # governance.identifiers.reference_key(external_id): how two references are compared (case, spacing, NFKC)
    reference_key: Mapped[str | None] = mapped_column(String(200))
    display_name: Mapped[str | None] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(64))
    legal_basis: Mapped[str] = mapped_column(String(32))
    consent_given_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    consent_method: Mapped[str | None] = mapped_column(String(200))
    consent_text: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    passcode_hash: Mapped[str | None] = mapped_column(String(200))  # Argon2id
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    passcode_failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The subject's own credential (SHA-256 of a 256-bit secret handed to them once at enrolment).
    subject_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    templates: Mapped[list[Template]] = relationship(
        back_populates="subject", cascade="all, delete-orphan", passive_deletes=True)


class Template(Base):
    __tablename__ = "templates"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(128))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    quality: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    subject: Mapped[Subject] = relationship(back_populates="templates")


class ServiceState(Base):
    """Single-row counters. `gallery_generation` changes on every enrol/erase so each process
    knows when its in-memory gallery is stale."""

    __tablename__ = "service_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gallery_generation: Mapped[int] = mapped_column(Integer, default=0)


class AuditEntry(Base):
    """One leaf of the audit Merkle log. Identifiers only: no image, embedding, score or external id.

    `leaf_hash` is the RFC 6962 leaf hash of the entry's canonical form; `receipt` is the log's Ed25519
    signature over (log id, seq, leaf hash), so a row rewritten without the signing key is named exactly.
    """

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_actor_operation_at", "actor", "operation", "at"),)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(32), index=True)  # ISO 8601 UTC, microseconds: sorts as text
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(200), index=True)
    operation: Mapped[str] = mapped_column(String(40), index=True)
    subject_id: Mapped[str | None] = mapped_column(String(36), index=True)
    case_id: Mapped[str | None] = mapped_column(String(64), index=True)
    purpose: Mapped[str | None] = mapped_column(String(64))
    legal_basis: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(64))
    details: Mapped[str] = mapped_column(Text)  # canonical JSON, identifiers and counts only
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    receipt: Mapped[bytes] = mapped_column(LargeBinary(64))


class AuditTreeHead(Base):
    """Signed tree heads (size, root, time). Copies also go to the witnesses, outside this database."""

    __tablename__ = "audit_tree_heads"
    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))


class AuditState(Base):
    """Single row: the log size and its compact range (roots of the perfect subtrees), updated with every
    append under a row lock, so appends serialise and the root of any size is O(log n) away."""

    __tablename__ = "audit_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    frontier: Mapped[bytes] = mapped_column(LargeBinary, default=b"")


class Person(Base):
    """Someone inside a tenant who acts on face data: their API keys carry (a subset of) their roles,
    and the audit log names them."""

    __tablename__ = "persons"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    roles: Mapped[str] = mapped_column(String(200))  # comma-separated
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Purpose(Base):
    """A tenant's purpose policy: which legal bases it accepts, how long templates are kept, and whether
    law enforcement may search them (a driver's-licence gallery under a state law, say)."""

    __tablename__ = "purposes"
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(Text)
    legal_bases: Mapped[str] = mapped_column(String(200))  # comma-separated
    retention_days: Mapped[int] = mapped_column(Integer)
    law_enforcement_searchable: Mapped[bool] = mapped_column(Boolean, default=False)
    liveness_required: Mapped[bool] = mapped_column(Boolean, default=False)  # verify needs a passed session
    light_challenge: Mapped[bool] = mapped_column(Boolean, default=False)  # sessions also flash screen colours
    subject_category: Mapped[str] = mapped_column(String(200))  # for the Art. 30 record: customers, drivers...
    target_fmr: Mapped[float] = mapped_column(Float, default=1e-3)  # the FMR it accepts; calibrations set the distance
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the purpose itself ends
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LawEnforcementPolicy(Base):
    """The administering agency's rules for police searches of its database."""

    __tablename__ = "le_policies"
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    allowed_uses: Mapped[str] = mapped_column(String(200))  # comma-separated authorised uses
    allow_own_agency_review: Mapped[bool] = mapped_column(Boolean, default=False)
    searches_per_grant: Mapped[int] = mapped_column(Integer, default=3)
    grant_days: Mapped[int] = mapped_column(Integer, default=14)
    max_candidates: Mapped[int] = mapped_column(Integer, default=10)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SearchRequest(Base):
    """A written request from an investigator to the agency that administers a face database."""

    __tablename__ = "le_requests"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    administering_tenant: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    requesting_tenant: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    requested_by: Mapped[str] = mapped_column(String(200))  # the investigator's principal
    case_number: Mapped[str] = mapped_column(String(100), index=True)
    offence: Mapped[str] = mapped_column(String(200))
    narrative: Mapped[str] = mapped_column(Text)
    authorised_use: Mapped[str] = mapped_column(String(40))
    basis_kind: Mapped[str] = mapped_column(String(20))  # court_order | emergency
    court_order_ref: Mapped[str | None] = mapped_column(String(200))
    emergency_facts: Mapped[str | None] = mapped_column(Text)
    max_candidates: Mapped[int] = mapped_column(Integer)
    probe: Mapped[bytes | None] = mapped_column(LargeBinary)  # AES-GCM under the request's own data key
    emergency_search_id: Mapped[str | None] = mapped_column(String(36))  # the emergency search it follows up
    status: Mapped[str] = mapped_column(String(20), index=True)  # pending | approved | denied
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class SearchGrant(Base):
    """What an approval allows: this case only, a number of searches, until an expiry."""

    __tablename__ = "le_grants"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("le_requests.id"), unique=True)
    case_number: Mapped[str] = mapped_column(String(100))
    searches_allowed: Mapped[int] = mapped_column(Integer)
    searches_used: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LeSearch(Base):
    """One search run for law enforcement, under a grant or as an emergency."""

    __tablename__ = "le_searches"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    administering_tenant: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    requesting_tenant: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    request_id: Mapped[str | None] = mapped_column(ForeignKey("le_requests.id"), index=True)
    run_by: Mapped[str] = mapped_column(String(200))
    case_number: Mapped[str] = mapped_column(String(100))
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    emergency_facts: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))  # leads | destroyed | flagged
    candidates_returned: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class LeCandidate(Base):
    """An investigative lead, not a positive identification, until two reviewers confirm it."""

    __tablename__ = "le_candidates"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    search_id: Mapped[str] = mapped_column(ForeignKey("le_searches.id", ondelete="CASCADE"), index=True)
    subject_id: Mapped[str] = mapped_column(String(36))
    rank: Mapped[int] = mapped_column(Integer)
    first_confirmed_by: Mapped[str | None] = mapped_column(String(200))
    second_confirmed_by: Mapped[str | None] = mapped_column(String(200))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PendingAction(Base):
    """Dual control: an action one administrator proposed that a second one must approve."""

    __tablename__ = "pending_actions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))  # key_rotation | bulk_erase | purpose_policy
    params: Mapped[str] = mapped_column(Text)  # JSON, identifiers only
    requested_by: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))  # pending | executed | rejected
    approved_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LivenessSession(Base):
    """A single-use liveness challenge bound to a device and either an enrolled subject (for a verification) or,
    for a comparison of two photos, the reference photo the live face was checked against (by its SHA-256 only,
    cleared once the comparison used it). The check scores stay here, on the server, for audit; clients only
    ever learn pass or fail."""

    __tablename__ = "liveness_sessions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    # no FK: the session outlives an erasure; None: a session for a comparison
    subject_id: Mapped[str | None] = mapped_column(String(36), index=True, nullable=True)
    reference_digest: Mapped[str | None] = mapped_column(String(64), index=True)  # SHA-256 of the reference photo
    device: Mapped[str] = mapped_column(String(200), index=True)  # the principal that asked for it
    purpose: Mapped[str] = mapped_column(String(64))
    actions: Mapped[str] = mapped_column(String(200))  # comma-separated challenge actions
    nonce: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), index=True)  # issued | passed | failed | used
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reasons: Mapped[str | None] = mapped_column(String(400))
    scores: Mapped[str | None] = mapped_column(Text)  # JSON: every check's score, for audit only
    fingerprint: Mapped[str | None] = mapped_column(Text)  # JSON: the accepted clip's perceptual hashes (replays)
    light: Mapped[str | None] = mapped_column(Text)  # JSON: the colour sequence of the light challenge, if asked
    capture_token: Mapped[str | None] = mapped_column(String(64))  # SHA-256 of the capture page's token


class LivenessFrame(Base):
    """Up to four frames of a session kept for audit, sealed under the session's own data key, short-lived."""

    __tablename__ = "liveness_frames"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("liveness_sessions.id", ondelete="CASCADE"), index=True)
    idx: Mapped[int] = mapped_column(Integer)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)  # AES-GCM of a JPEG, AAD = tenant/session/index
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Calibration(Base):
    """One operating point measured by `facewarden calibrate`: the distance threshold that holds a target FMR for
    one model version on one labelled set, with 95 % bootstrap intervals. Deployment-wide: a property of the model
    and the data, not of a tenant. Counts and digests only; no face data."""

    __tablename__ = "calibrations"
    __table_args__ = (Index("ix_calibrations_model_target", "model_version", "target_fmr", "created_at"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(36), index=True)  # the calibration run (one row per target)
    model_id: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(128))
    target_fmr: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    threshold_ci_low: Mapped[float | None] = mapped_column(Float)
    threshold_ci_high: Mapped[float | None] = mapped_column(Float)
    extrapolated: Mapped[bool] = mapped_column(Boolean, default=False)  # target below 1 / impostor pairs
    fmr: Mapped[float] = mapped_column(Float)  # observed at the threshold, on the calibration set
    fnmr: Mapped[float] = mapped_column(Float)
    fnmr_ci_low: Mapped[float | None] = mapped_column(Float)
    fnmr_ci_high: Mapped[float | None] = mapped_column(Float)
    end_to_end_fnmr: Mapped[float] = mapped_column(Float)  # failures to enrol counted as false non-matches
    dataset: Mapped[str] = mapped_column(String(200))  # the folder name and the part used (split)
    dataset_digest: Mapped[str] = mapped_column(String(64))  # SHA-256 over the photos used, by label and bytes
    identities: Mapped[int] = mapped_column(Integer)
    images: Mapped[int] = mapped_column(Integer)
    failed_to_enrol: Mapped[int] = mapped_column(Integer)
    genuine_pairs: Mapped[int] = mapped_column(BigInteger)
    impostor_pairs: Mapped[int] = mapped_column(BigInteger)
    bootstrap_draws: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))
