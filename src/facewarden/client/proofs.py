"""Checking the audit log's answers on the client side: an Ed25519-signed tree head and an RFC 9162 inclusion
proof, so a client trusts the log's public key, not the server that relays the proof. The checks are the log's
own (`facewarden.audit.merkle` and `.signing`, which import no server code)."""

from __future__ import annotations

import base64

from facewarden.audit.merkle import verify_inclusion
from facewarden.audit.signing import LogPublicKey, SignedTreeHead
from facewarden.errors import FaceWardenError


def head_signature_ok(public_key_pem: str, log_id: str, tree_size: int, timestamp_ms: int, root_hash: str,
                      signature: str) -> bool:
    """The head is signed by the log's key, and `log_id` is that key's SHA-256 (as in Certificate Transparency)."""
    try:
        key = LogPublicKey.from_pem(public_key_pem.encode())
        head = SignedTreeHead.from_json({"tree_size": tree_size, "timestamp_ms": timestamp_ms,
                                         "root_hash": root_hash, "signature": signature})
    except FaceWardenError:
        return False
    return key.log_id == log_id and key.verify_head(head)


def inclusion_ok(leaf_hash: str, seq: int, tree_size: int, audit_path: list[str], root_hash: str) -> bool:
    """Whether the base64 `audit_path` leads from entry `seq`'s leaf hash to the head's root."""
    try:
        return verify_inclusion(base64.b64decode(leaf_hash), seq, tree_size,
                                [base64.b64decode(p) for p in audit_path], base64.b64decode(root_hash))
    except ValueError:
        return False
