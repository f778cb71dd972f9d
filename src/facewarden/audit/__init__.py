"""The tamper-evident audit log: RFC 6962 Merkle tree, signed tree heads, witnesses, proofs, verifier."""

from facewarden.audit.entries import AuditEvent
from facewarden.audit.log import AuditLog, AuditQuery
from facewarden.audit.signing import LogPublicKey, LogSigner, SignedTreeHead
from facewarden.audit.verify import VerifyReport, verify_export, verify_log
from facewarden.audit.witness import make_witness

__all__ = ["AuditEvent", "AuditLog", "AuditQuery", "LogPublicKey", "LogSigner", "SignedTreeHead", "VerifyReport",
           "make_witness", "verify_export", "verify_log"]
