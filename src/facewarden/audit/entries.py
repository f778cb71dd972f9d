"""What an audit entry holds and its canonical byte form (the Merkle leaf)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from facewarden.errors import FaceWardenError

# The columns that make up an entry, in the order of the stored row; `seq` is the leaf's position.
ENTRY_FIELDS = ("at", "tenant_id", "actor", "operation", "subject_id", "case_id", "purpose", "legal_basis",
                "outcome", "details")
MAX_DETAILS_BYTES = 4096
FORMAT_VERSION = 1


class AuditDetailError(FaceWardenError):
    status = 500
    code = "audit_detail"


def utc_timestamp(when: datetime | None = None) -> str:
    """Fixed-width ISO 8601 in UTC with microseconds, so text order is time order."""
    return (when or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check_detail(value: Any, path: str) -> None:
    # Floats and bytes are refused outright: that is where a score or an embedding would slip in.
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_detail(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for k, item in value.items():
            _check_detail(item, f"{path}.{k}")
        return
    raise AuditDetailError(f"Audit detail {path} is a {type(value).__name__}; only identifiers, counts and "
                           "flags may be logged (no scores, embeddings or images).")


def canonical_details(details: Mapping[str, Any]) -> str:
    _check_detail(dict(details), "details")
    text = json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if len(text.encode()) > MAX_DETAILS_BYTES:
        raise AuditDetailError(f"Audit details exceed {MAX_DETAILS_BYTES} bytes.")
    return text


def canonical_entry(values: Mapping[str, Any]) -> bytes:
    """The bytes that are hashed into the leaf: every field of ENTRY_FIELDS, as sorted compact JSON."""
    doc = {"v": FORMAT_VERSION, **{name: values[name] for name in ENTRY_FIELDS}}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class AuditEvent:
    """One operation on face data or its governance, as the service layer describes it."""

    tenant_id: str
    actor: str
    operation: str
    subject_id: str | None = None
    case_id: str | None = None
    purpose: str | None = None
    legal_basis: str | None = None
    outcome: str = "ok"
    details: dict[str, Any] = field(default_factory=dict)
    committed: bool = False  # set once the entry's transaction has committed

    def values(self, at: str | None = None) -> dict[str, Any]:
        return {"at": at or utc_timestamp(), "tenant_id": self.tenant_id, "actor": self.actor,
                "operation": self.operation, "subject_id": self.subject_id, "case_id": self.case_id,
                "purpose": self.purpose, "legal_basis": self.legal_basis, "outcome": self.outcome,
                "details": canonical_details(self.details)}
