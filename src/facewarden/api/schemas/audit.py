"""Audit entries, exports, signed tree heads and RFC 9162 proofs (hashes and signatures in base64)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from facewarden.api.schemas.common import ResponseModel


class AuditEntry(ResponseModel):
    seq: int
    at: str
    tenant_id: str
    actor: str
    operation: str
    subject_id: str | None
    case_id: str | None
    purpose: str | None
    legal_basis: str | None
    outcome: str
    details: str = Field(description="Canonical JSON: identifiers and counts only")
    leaf_hash: str
    receipt: str


class AuditEntries(ResponseModel):
    entries: list[AuditEntry]


class TreeHead(ResponseModel):
    log_id: str
    tree_size: int
    timestamp_ms: int
    root_hash: str
    signature: str


class SignedHead(TreeHead):
    witness_errors: dict[str, str] = Field(description="Witness name -> why it did not take the head")


class TreeHeads(ResponseModel):
    heads: list[TreeHead]


class ExportedEntry(AuditEntry):
    audit_path: list[str] = Field(description="Inclusion proof against the export's tree head")


class AuditExport(ResponseModel):
    format: str
    log_id: str
    public_key: str
    tree_head: TreeHead
    query: dict[str, Any]
    entries: list[ExportedEntry]


class InclusionProof(ResponseModel):
    seq: int
    leaf_hash: str
    tree_head: TreeHead
    audit_path: list[str]


class ConsistencyProof(ResponseModel):
    first: TreeHead
    second: TreeHead
    consistency_path: list[str]
