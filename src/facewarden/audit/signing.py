"""The log's Ed25519 key, kept in its own file apart from the database, and the signed tree head format."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from facewarden.errors import FaceWardenError, InternalError

# Domain separation: an entry receipt can never be replayed as a tree head or the other way round.
_ENTRY_CONTEXT = b"facewarden/audit/entry/v1\x00"
_HEAD_CONTEXT = b"facewarden/audit/tree-head/v1\x00"


class AuditKeyError(InternalError):
    code = "audit_key"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


@dataclass(frozen=True)
class SignedTreeHead:
    """What the log commits to: its first `tree_size` entries hash to `root_hash`, as of `timestamp_ms`."""

    tree_size: int
    timestamp_ms: int
    root_hash: bytes
    signature: bytes

    def to_json(self, log_id: str) -> dict[str, Any]:
        return {"log_id": log_id, "tree_size": self.tree_size, "timestamp_ms": self.timestamp_ms,
                "root_hash": _b64(self.root_hash), "signature": _b64(self.signature)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> SignedTreeHead:
        try:
            return cls(int(doc["tree_size"]), int(doc["timestamp_ms"]), _unb64(doc["root_hash"]),
                       _unb64(doc["signature"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise FaceWardenError(f"Malformed tree head ({exc}).", code="malformed_tree_head") from exc


def entry_message(log_id: bytes, seq: int, leaf_hash: bytes) -> bytes:
    return _ENTRY_CONTEXT + log_id + struct.pack(">Q", seq) + leaf_hash


def head_message(log_id: bytes, tree_size: int, timestamp_ms: int, root_hash: bytes) -> bytes:
    return _HEAD_CONTEXT + log_id + struct.pack(">QQ", timestamp_ms, tree_size) + root_hash


class LogPublicKey:
    """Verifies receipts and tree heads. All an outside auditor needs besides the exported data."""

    def __init__(self, key: Ed25519PublicKey) -> None:
        self.key = key
        self.raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.log_id_bytes = hashlib.sha256(self.raw).digest()  # as in CT: the log id is the key's hash
        self.log_id = self.log_id_bytes.hex()

    @classmethod
    def from_pem(cls, pem: bytes) -> LogPublicKey:
        try:
            key = serialization.load_pem_public_key(pem)
        except ValueError as exc:
            raise AuditKeyError("The audit public key is not a PEM public key.") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise AuditKeyError("The audit public key is not an Ed25519 key.")
        return cls(key)

    def pem(self) -> str:
        return self.key.public_bytes(serialization.Encoding.PEM,
                                     serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def _ok(self, signature: bytes, message: bytes) -> bool:
        try:
            self.key.verify(signature, message)
            return True
        except (InvalidSignature, ValueError, TypeError):
            return False

    def verify_receipt(self, seq: int, leaf_hash: bytes, receipt: bytes) -> bool:
        return self._ok(receipt, entry_message(self.log_id_bytes, seq, leaf_hash))

    def verify_head(self, head: SignedTreeHead) -> bool:
        return self._ok(head.signature, head_message(self.log_id_bytes, head.tree_size, head.timestamp_ms,
                                                     head.root_hash))


class LogSigner(LogPublicKey):
    """The private key, from a PEM file (0600) that lives apart from the database."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        super().__init__(private.public_key())
        self._private = private

    @classmethod
    def from_file(cls, path: Path, *, create: bool = False) -> LogSigner:
        path = Path(path)
        if not path.exists():
            if not create:
                raise AuditKeyError(f"The audit signing key {path} does not exist. Run `facewarden init` first.")
            private = Ed25519PrivateKey.generate()
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
            return cls(private)
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise AuditKeyError(f"The audit signing key {path} is readable by other users "
                                f"(mode {oct(mode & 0o777)}). Run `chmod 600 {path}`.")
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise AuditKeyError(f"{path} does not hold an Ed25519 private key.")
        return cls(private)

    def public(self) -> LogPublicKey:
        return LogPublicKey(self.key)

    def sign_receipt(self, seq: int, leaf_hash: bytes) -> bytes:
        return self._private.sign(entry_message(self.log_id_bytes, seq, leaf_hash))

    def sign_head(self, tree_size: int, timestamp_ms: int, root_hash: bytes) -> SignedTreeHead:
        sig = self._private.sign(head_message(self.log_id_bytes, tree_size, timestamp_ms, root_hash))
        return SignedTreeHead(tree_size, timestamp_ms, root_hash, sig)
