"""The tamper-evident audit log: RFC 6962 Merkle tree, signed tree heads, witnesses, proofs, verifier.

The names below are loaded on first use, so `facewarden.audit.merkle` and `facewarden.audit.signing` (pure
hashing and Ed25519) import without the database layer: the Python client checks proofs with them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from facewarden.audit.entries import AuditEvent
    from facewarden.audit.log import AuditLog, AuditQuery
    from facewarden.audit.signing import LogPublicKey, LogSigner, SignedTreeHead
    from facewarden.audit.verify import VerifyReport, verify_export, verify_log
    from facewarden.audit.witness import make_witness

_HOME = {"AuditEvent": "entries", "AuditLog": "log", "AuditQuery": "log", "LogPublicKey": "signing",
         "LogSigner": "signing", "SignedTreeHead": "signing", "VerifyReport": "verify", "verify_export": "verify",
         "verify_log": "verify", "make_witness": "witness"}

__all__ = ["AuditEvent", "AuditLog", "AuditQuery", "LogPublicKey", "LogSigner", "SignedTreeHead", "VerifyReport",
           "make_witness", "verify_export", "verify_log"]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'facewarden.audit' has no attribute {name!r}")
    return getattr(import_module(f"facewarden.audit.{_HOME[name]}"), name)
