"""The key recipe in front of the primitives (as pyca/cryptography's fernet is in front of hazmat).

Use cases ask the key ring to seal, open, shred or rewrap; they never hold a raw data key, a key id or associated
data. Each subject, police request and liveness session has its own data key (so shredding one destroys exactly
its data); the associated data binds every ciphertext to the record it belongs to. Key ids and associated data
are those the service used before this module existed, so stored blobs and key databases still open.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from facewarden.config import Settings
from facewarden.crypto.datakeys import DataKeyStore, make_datakey_engine
from facewarden.crypto.envelope import ProbeAAD, TemplateAAD, open_sealed, seal
from facewarden.crypto.kek import KeyEncryptionKeyProvider
from facewarden.crypto.providers import open_kek_provider

EMBEDDING_DTYPE = "<f4"  # templates are stored as little-endian float32
LIVENESS_AUDIT_MODEL = "liveness-audit"  # the model-version slot of a liveness frame's associated data


def _subject_key(tenant_id: str, subject_id: str) -> str:
    return f"{tenant_id}/{subject_id}"


def _probe_key(request_id: str) -> str:
    return f"le-request/{request_id}"


def _liveness_key(session_id: str) -> str:
    return f"liveness/{session_id}"


class KeyRing:
    """Sealing, opening and shredding of everything FaceWarden keeps encrypted, and the KEK's life cycle."""

    def __init__(self, store: DataKeyStore) -> None:
        self._store = store

    @property
    def store(self) -> DataKeyStore:
        return self._store

    @property
    def kek(self) -> KeyEncryptionKeyProvider:
        return self._store.kek

    def close(self) -> None:
        """Release the KEK provider's resources (an HSM session) and the key database's connections."""
        self._store.engine.dispose()
        self.kek.close()

    # -- templates ---------------------------------------------------------------------------
    def seal_templates(self, tenant_id: str, subject_id: str,
                       templates: Sequence[tuple[str, str, np.ndarray]]) -> list[bytes]:
        """Create the subject's data key and seal each (template_id, model_version, embedding)."""
        key = self._store.create(_subject_key(tenant_id, subject_id))
        return [seal(key, np.asarray(vec, dtype=EMBEDDING_DTYPE).tobytes(),
                     TemplateAAD(tenant_id, subject_id, template_id, model_version).encode())
                for template_id, model_version, vec in templates]

    def open_templates(self, tenant_id: str, subject_id: str,
                       sealed: Sequence[tuple[str, str, bytes]]) -> list[np.ndarray]:
        """The embeddings of (template_id, model_version, ciphertext); KeyUnavailable once the subject is
        shredded, IntegrityFailure for a blob altered or moved from another record."""
        key = self._store.get(_subject_key(tenant_id, subject_id))
        return [np.frombuffer(open_sealed(key, blob, TemplateAAD(tenant_id, subject_id, template_id,
                                                                 model_version).encode()),
                              dtype=EMBEDDING_DTYPE).copy()
                for template_id, model_version, blob in sealed]

    def shred_subject(self, tenant_id: str, subject_id: str) -> bool:
        """Destroy the subject's data key: every copy of its templates becomes undecryptable."""
        return self._store.destroy(_subject_key(tenant_id, subject_id))

    # -- police probe photos -----------------------------------------------------------------
    def seal_probe(self, request_id: str, administering_tenant: str, requesting_tenant: str, image: bytes) -> bytes:
        """Create the request's data key and seal its probe photo."""
        key = self._store.create(_probe_key(request_id))
        return seal(key, image, ProbeAAD(request_id, administering_tenant, requesting_tenant).encode())

    def open_probe(self, request_id: str, administering_tenant: str, requesting_tenant: str, blob: bytes) -> bytes:
        key = self._store.get(_probe_key(request_id))
        return open_sealed(key, blob, ProbeAAD(request_id, administering_tenant, requesting_tenant).encode())

    def shred_probe(self, request_id: str) -> bool:
        return self._store.destroy(_probe_key(request_id))

    # -- liveness audit frames ---------------------------------------------------------------
    def seal_liveness_frames(self, tenant_id: str, session_id: str, frames: Sequence[bytes]) -> list[bytes]:
        """Seal a session's audit frames (encoded images) under the session's own new key; none, no key."""
        if not frames:
            return []
        key = self._store.create(_liveness_key(session_id))
        return [seal(key, frame, TemplateAAD(tenant_id, session_id, f"frame-{i}", LIVENESS_AUDIT_MODEL).encode())
                for i, frame in enumerate(frames)]

    def shred_liveness_frames(self, session_id: str) -> bool:
        return self._store.destroy(_liveness_key(session_id))

    # -- the key-encryption key --------------------------------------------------------------
    def rotate(self) -> int:
        """A new KEK version, current from now on; returns its number. Call `rewrap_all` next."""
        return self.kek.rotate()

    def rewrap_all(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Rewrap every data key not under the current KEK version; ciphertexts are untouched."""
        return self._store.rewrap_all(progress)

    def versions_in_use(self) -> dict[int, int]:
        """KEK version -> how many data keys it wraps."""
        return self._store.versions_in_use()

    def retire_unused(self) -> list[int]:
        """Destroy every KEK version but the current one that no data key uses any more."""
        kek = self.kek
        current = kek.current_version()
        in_use = self._store.versions_in_use()
        retired = []
        for version in kek.versions():
            if version != current and in_use.get(version, 0) == 0:
                kek.retire(version)
                retired.append(version)
        return retired

    def status(self) -> dict[str, Any]:
        kek = self.kek
        return {"provider": kek.name, "current_version": kek.current_version(), "versions": kek.versions(),
                "data_keys_per_version": self._store.versions_in_use()}


def make_keyring(settings: Settings, *, create: bool = False) -> KeyRing:
    """The key ring the settings describe: the KEK provider by URI, the data-key store at `resolved_vault_url`."""
    kek = open_kek_provider(settings, create=create)
    try:
        return KeyRing(DataKeyStore(make_datakey_engine(settings.resolved_vault_url), kek))
    except BaseException:
        kek.close()
        raise
