"""What an audit entry holds and its canonical byte form (the Merkle leaf)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from facewarden.errors import InternalError

# The columns that make up an entry, in the order of the stored row; `seq` is the leaf's position.
ENTRY_FIELDS = ("at", "tenant_id", "actor", "operation", "subject_id", "case_id", "purpose", "legal_basis",
                "outcome", "details")
MAX_DETAILS_BYTES = 4096
FORMAT_VERSION = 1


class AuditDetailError(InternalError):
    code = "audit_detail"


def utc_timestamp(when: datetime | None = None) -> str:
    """Fixed-width ISO 8601 in UTC with microseconds, so text order is time order."""
    return (when or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


MAX_DETAIL_TEXT = 200  # identifiers are short; a longer string is cut rather than refused (no 500 on bad input)
# Column widths of the entry (store/models.py AuditEntry): request values are cut to fit, never rejected.
_WIDTHS = {"tenant_id": 64, "actor": 200, "operation": 40, "subject_id": 36, "case_id": 64, "purpose": 64,
           "legal_basis": 32, "outcome": 64}


def _check_detail(value: Any, path: str) -> Any:
    # Floats and bytes are refused outright: that is where a score or an embedding would slip in.
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return value[:MAX_DETAIL_TEXT]
    if isinstance(value, list | tuple):
        return [_check_detail(item, f"{path}[{i}]") for i, item in enumerate(value[:100])]
    if isinstance(value, dict):
        return {str(k)[:64]: _check_detail(item, f"{path}.{k}") for k, item in value.items()}
    raise AuditDetailError(f"Audit detail {path} is a {type(value).__name__}; only identifiers, counts and "
                           "flags may be logged (no scores, embeddings or images).")


def canonical_details(details: Mapping[str, Any]) -> str:
    cleaned = _check_detail(dict(details), "details")
    text = json.dumps(cleaned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
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
        fields = {"tenant_id": self.tenant_id, "actor": self.actor, "operation": self.operation,
                  "subject_id": self.subject_id, "case_id": self.case_id, "purpose": self.purpose,
                  "legal_basis": self.legal_basis, "outcome": self.outcome}
        cut = {k: v[:_WIDTHS[k]] if isinstance(v, str) else v for k, v in fields.items()}
        return {"at": at or utc_timestamp(), **cut, "details": canonical_details(self.details)}
