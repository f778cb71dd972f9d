"""AES-256-GCM sealing with associated data that binds a ciphertext to where it belongs.

Layout of a sealed blob: version byte (1) | 12-byte random nonce | ciphertext+tag.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from facewarden.errors import IntegrityFailure

_VERSION = b"\x01"
NONCE_BYTES = 12


@dataclass(frozen=True)
class TemplateAAD:
    """What a template ciphertext is bound to; a blob moved to another row no longer opens."""

    tenant_id: str
    subject_id: str
    template_id: str
    model_version: str

    def encode(self) -> bytes:
        parts = ("facewarden-template-v1", self.tenant_id, self.subject_id, self.template_id,
                 self.model_version)
        # Length-prefixed so no two field combinations encode the same.
        return b"".join(len(p.encode()).to_bytes(4, "big") + p.encode() for p in parts)


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
