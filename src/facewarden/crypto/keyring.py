"""The key recipe in front of the primitives (as pyca/cryptography's fernet is in front of hazmat).

Use cases ask the key ring to seal, open, shred or rewrap; they never hold a raw data key, a key id or associated
data. Each subject, police request and liveness session has its own data key (so shredding one destroys exactly
its data); the associated data binds every ciphertext to the record it belongs to. Key ids and associated data
are those the service used before this module existed, so stored blobs and key databases still open.

The key store commits apart from the main database, so creating and shredding go through the intent journal
(datakeys.py): `seal_*` leaves a `create` intent that the use case `confirm`s once its transaction committed (or
`settle`s after a failure); a shred is `begin_shred` before the main commit and `finish_shred` after it. `recover`
resolves what a crash left, asking the main database (the `resolver` the service installs) whether a key is used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from facewarden.config import Settings
from facewarden.crypto.datakeys import CREATE, DataKeyStore, Intent, make_datakey_engine
from facewarden.crypto.envelope import ProbeAAD, TemplateAAD, open_sealed, seal
from facewarden.crypto.intents import KeyRef, RecoveryReport, Resolver, owner_is_dead, process_token
from facewarden.crypto.kek import KeyEncryptionKeyProvider
from facewarden.crypto.providers import open_kek_provider
from facewarden.faults import crash_point

log = logging.getLogger("facewarden.keys")

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
        self.owner = process_token()
        self.resolver: Resolver | None = None  # installed by the service (build_service)

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
        key = self._store.create(_subject_key(tenant_id, subject_id), self.owner)
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

    def seal_more_templates(self, tenant_id: str, subject_id: str,
                            templates: Sequence[tuple[str, str, np.ndarray]]) -> list[bytes]:
        """Seal further templates under the subject's existing data key; never creates one (KeyUnavailable once
        the subject is shredded, so nothing can be added to an erased record)."""
        key = self._store.get(_subject_key(tenant_id, subject_id))
        return [seal(key, np.asarray(vec, dtype=EMBEDDING_DTYPE).tobytes(),
                     TemplateAAD(tenant_id, subject_id, template_id, model_version).encode())
                for template_id, model_version, vec in templates]

    def shred_subject(self, tenant_id: str, subject_id: str) -> bool:
        """Destroy the subject's data key: every copy of its templates becomes undecryptable."""
        return self._store.destroy(_subject_key(tenant_id, subject_id))

    # -- police probe photos -----------------------------------------------------------------
    def seal_probe(self, request_id: str, administering_tenant: str, requesting_tenant: str, image: bytes) -> bytes:
        """Create the request's data key and seal its probe photo."""
        key = self._store.create(_probe_key(request_id), self.owner)
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
        key = self._store.create(_liveness_key(session_id), self.owner)
        return [seal(key, frame, TemplateAAD(tenant_id, session_id, f"frame-{i}", LIVENESS_AUDIT_MODEL).encode())
                for i, frame in enumerate(frames)]

    def shred_liveness_frames(self, session_id: str) -> bool:
        return self._store.destroy(_liveness_key(session_id))

    # -- keeping the key store and the main database consistent ---------------------------------
    @staticmethod
    def subject_key(tenant_id: str, subject_id: str) -> KeyRef:
        return KeyRef(_subject_key(tenant_id, subject_id))

    @staticmethod
    def probe_key(request_id: str) -> KeyRef:
        return KeyRef(_probe_key(request_id))

    @staticmethod
    def liveness_key(session_id: str) -> KeyRef:
        return KeyRef(_liveness_key(session_id))

    @contextmanager
    def creating(self, operation: str) -> Iterator[list[KeyRef]]:
        """Around the main transaction that stores what new keys seal (outside it: `with keyring.creating(...) as
        new, db.session() as s:`); the use case appends each new key's ref before sealing. Once the transaction
        committed the keys are confirmed; if it raised, they are settled (kept if the commit happened after all,
        destroyed if not). A crash in between leaves the `create` intents to `recover`."""
        refs: list[KeyRef] = []
        try:
            yield refs
        except BaseException:
            if refs:
                self.settle(refs)
            raise
        crash_point(f"{operation}.committed")
        if refs:
            self.confirm(refs)

    def confirm(self, refs: Collection[KeyRef]) -> None:
        """After the main transaction that uses these new keys committed: clear their `create` intents. A failure
        here is logged only: recovery finds the key used and clears the intent itself."""
        try:
            self._store.clear_intents([r.key_id for r in refs])
        except Exception as exc:  # the enrolment has committed; do not turn it into an error
            log.warning("could not clear %d key intents (%s); recovery will", len(refs), type(exc).__name__)

    def settle(self, refs: Collection[KeyRef]) -> RecoveryReport:
        """After the main transaction failed, or may have (an error at commit): resolve these keys' intents now,
        asking the main database, instead of guessing. If that fails too, recovery resolves them later."""
        try:
            return self._resolve(self._store.intents([r.key_id for r in refs]))
        except Exception as exc:  # the caller is already reporting the first error
            log.warning("could not settle %d key intents (%s); recovery will", len(refs), type(exc).__name__)
            return RecoveryReport()

    def begin_shred(self, refs: Collection[KeyRef]) -> None:
        """Before the main transaction that deletes the records commits: durably record the coming shred."""
        self._store.intend_shred([r.key_id for r in refs], self.owner)

    def finish_shred(self, refs: Collection[KeyRef]) -> int:
        """After that commit: destroy the keys (crypto-shredding) and their intents; how many keys existed."""
        return self._store.destroy_many([r.key_id for r in refs])

    def recover(self, grace: timedelta, *, orphans: bool = False, purge_orphans: bool = False,
                now: datetime | None = None) -> RecoveryReport:
        """Resolve the intents a crash left: those of dead processes on this host at once, others once older than
        `grace` (so a live process's work in flight is left alone). With `orphans`, also count keys nothing uses
        and no intent explains; `purge_orphans` destroys them (only on request: a wrong main-database URL would
        make every key look unused)."""
        now = now or datetime.now(UTC)
        pending = self._store.intents()
        due = [i for i in pending if now - i.created_at >= grace or owner_is_dead(i.owner)]
        report = self._resolve(due)
        report.waiting = len(pending) - len(due)
        if orphans or purge_orphans:
            found = self.orphan_ids()
            report.orphans = len(found)
            if purge_orphans and found:
                report.orphans_purged = self._store.destroy_many(found)
        if report.resolved():
            log.info("key intents resolved: %s", report.as_dict())
        return report

    def orphan_ids(self) -> list[str]:
        """Key ids the main database does not use and no pending intent accounts for."""
        resolver = self._require_resolver()
        found: list[str] = []
        for batch in self._store.key_ids():
            used = resolver(batch)
            found += [k for k in batch if k not in used]
        explained = {i.key_id for i in self._store.intents()}
        return [k for k in found if k not in explained]

    def _require_resolver(self) -> Resolver:
        if self.resolver is None:
            raise RuntimeError("KeyRing.resolver is not installed; build the key ring with build_service")
        return self.resolver

    def _resolve(self, intents: list[Intent]) -> RecoveryReport:
        report = RecoveryReport()
        if not intents:
            return report
        used = self._require_resolver()([i.key_id for i in intents])
        for intent in intents:
            if intent.key_id in used:
                # create: the records committed, keep the key. shred: the erasure never committed, keep it too.
                if self._store.resolve(intent, destroy=False):
                    if intent.action == CREATE:
                        report.created_kept += 1
                    else:
                        report.shreds_undone += 1
            elif self._store.resolve(intent, destroy=True):
                if intent.action == CREATE:
                    report.created_discarded += 1
                else:
                    report.shreds_finished += 1
        return report

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
                "data_keys_per_version": self._store.versions_in_use(),
                "pending_intents": len(self._store.intents())}


def make_keyring(settings: Settings, *, create: bool = False) -> KeyRing:
    """The key ring the settings describe: the KEK provider by URI, the data-key store at `resolved_vault_url`."""
    kek = open_kek_provider(settings, create=create)
    try:
        return KeyRing(DataKeyStore(make_datakey_engine(settings.resolved_vault_url), kek))
    except BaseException:
        kek.close()
        raise
