"""Tables of the main database. Face data appears only as AES-GCM ciphertext (`Template.ciphertext`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
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


class Subject(Base):
    __tablename__ = "subjects"
    __table_args__ = (UniqueConstraint("tenant_id", "external_id", name="uq_subject_external"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(200))  # the operator's reference for the person
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
