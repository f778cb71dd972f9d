"""The primitive layer: AES-256-GCM sealing with associated data that binds a ciphertext to where it belongs.

Use cases do not call this directly; they go through `KeyRing` (keyring.py), which picks the key and builds
the associated data. Layout of a sealed blob: version byte (1) | 12-byte random nonce | ciphertext+tag.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from facewarden.errors import IntegrityFailure

_VERSION = b"\x01"
NONCE_BYTES = 12


def length_prefixed(*parts: str) -> bytes:
    """Each part as a 4-byte big-endian length and its UTF-8 bytes, so no two part lists encode the same."""
    return b"".join(len(p.encode()).to_bytes(4, "big") + p.encode() for p in parts)


@dataclass(frozen=True)
class TemplateAAD:
    """What a template ciphertext is bound to; a blob moved to another row no longer opens."""

    tenant_id: str
    subject_id: str
    template_id: str
    model_version: str

    def encode(self) -> bytes:
        return length_prefixed("facewarden-template-v1", self.tenant_id, self.subject_id, self.template_id,
                               self.model_version)


@dataclass(frozen=True)
class ProbeAAD:
    """What a sealed police probe photo is bound to: a blob moved to another request no longer opens."""

    request_id: str
    administering_tenant: str
    requesting_tenant: str

    def encode(self) -> bytes:
        return length_prefixed("facewarden-le-probe-v1", self.request_id, self.administering_tenant,
                               self.requesting_tenant)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return _VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < 1 + NONCE_BYTES + 16 or blob[:1] != _VERSION:
        raise IntegrityFailure("A stored ciphertext is malformed; it was altered or truncated.")
    try:
        return AESGCM(key).decrypt(blob[1:1 + NONCE_BYTES], blob[1 + NONCE_BYTES:], aad)
    except InvalidTag:
        raise IntegrityFailure(
            "A stored ciphertext failed its integrity check: it was altered, moved to another record, "
            "or encrypted under another key. Re-enrol the subject; investigate the database.") from None
