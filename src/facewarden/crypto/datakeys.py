"""The data-key store: one AES-256 data key per subject (or police request, or liveness session), wrapped by
the KEK, stored apart from the main database. Destroying an entry here is crypto-shredding: every copy of what
it sealed, backups of the main database included, becomes undecryptable.

This hands out raw data keys; only `KeyRing` (keyring.py) should call it. The table, key ids and associated
data are those of the former `crypto/vault.py`, so existing key databases still open.

The key store and the main database cannot commit together, so every change that must match a main-database
transaction is journalled in `key_intents`, committed in the key store first: a key is created together with a
`create` intent (cleared once the main transaction committed), and a `shred` intent is written before the main
transaction that deletes the records commits (the key and intent go together afterwards). Whatever a crash
interrupts, the intent says what to finish or undo (`KeyRing.recover`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine

from facewarden.crypto.kek import KeyEncryptionKeyProvider, WrappedKey
from facewarden.errors import KeyUnavailable
from facewarden.faults import crash_point
from facewarden.store.db import make_sqlite_engine

DATA_KEY_BYTES = 32

datakey_metadata = MetaData()
data_keys = Table(
    "data_keys",
    datakey_metadata,
    Column("key_id", String(200), primary_key=True),
    Column("kek_provider", String(32), nullable=False),
    Column("kek_version", Integer, nullable=False, index=True),
    Column("wrapped", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("rewrapped_at", DateTime(timezone=True)),
)
# Added after data_keys: `create_all` adds it to existing key databases and leaves data_keys as it is.
key_intents = Table(
    "key_intents",
    datakey_metadata,
    Column("key_id", String(200), primary_key=True),
    Column("action", String(8), nullable=False),  # "create" or "shred"
    Column("owner", String(200), nullable=False),  # the process that wrote it (see intents.process_token)
    Column("created_at", DateTime(timezone=True), nullable=False),
)
CREATE, SHRED = "create", "shred"


@dataclass(frozen=True)
class Intent:
    key_id: str
    action: str
    owner: str
    created_at: datetime


_CHUNK = 500  # ids per IN (...) list


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i:i + _CHUNK]


def _put_intents(conn: Connection, key_ids: list[str], action: str, owner: str, now: datetime) -> None:
    """Replace any intent of these keys (a shred supersedes a create left by a crash)."""
    for chunk in _chunks(key_ids):
        conn.execute(delete(key_intents).where(key_intents.c.key_id.in_(chunk)))
    conn.execute(insert(key_intents), [{"key_id": k, "action": action, "owner": owner[:200], "created_at": now}
                                       for k in key_ids])


def _aad(key_id: str) -> bytes:
    return b"facewarden-data-key-v1|" + key_id.encode()


def make_datakey_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        # Overwrite deleted key material on disk; no WAL, so no stale copy lingers in a side file.
        engine = make_sqlite_engine(url, ["secure_delete=ON", "journal_mode=DELETE", "busy_timeout=5000"])
    else:
        engine = create_engine(url, pool_pre_ping=True)
    datakey_metadata.create_all(engine)
    return engine


class DataKeyStore:
    def __init__(self, engine: Engine, kek: KeyEncryptionKeyProvider) -> None:
        self.engine = engine
        self.kek = kek

    def create(self, key_id: str, owner: str = "") -> bytes:
        """A new data key, committed with its `create` intent (cleared by `clear_intents` once the main
        transaction that uses it has committed)."""
        dek = os.urandom(DATA_KEY_BYTES)
        wrapped = self.kek.wrap(dek, _aad(key_id))
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(insert(data_keys).values(
                key_id=key_id, kek_provider=self.kek.name, kek_version=wrapped.kek_version,
                wrapped=wrapped.blob, created_at=now))
            _put_intents(conn, [key_id], CREATE, owner, now)
        if wrapped.kek_version not in self.kek.versions():
            # Another process rotated and retired the version between our wrap and our insert (its rewrap
            # could not see this row): wrap again under the current version while the plaintext is at hand.
            new = self.kek.wrap(dek, _aad(key_id))
            with self.engine.begin() as conn:
                conn.execute(update(data_keys).where(data_keys.c.key_id == key_id).values(
                    kek_version=new.kek_version, wrapped=new.blob, rewrapped_at=datetime.now(UTC)))
        return dek

    def get(self, key_id: str) -> bytes:
        with self.engine.connect() as conn:
            row = conn.execute(select(data_keys.c.kek_version, data_keys.c.wrapped)
                               .where(data_keys.c.key_id == key_id)).first()
        if row is None:
            raise KeyUnavailable(
                "This subject's data key has been destroyed (the subject was erased), so its face data "
                "can no longer be decrypted. Enrol the person again if they consent.")
        return self.kek.unwrap(WrappedKey(row.kek_version, row.wrapped), _aad(key_id))

    def destroy(self, key_id: str) -> bool:
        return self.destroy_many([key_id]) > 0

    def destroy_many(self, key_ids: Collection[str]) -> int:
        """Delete the keys and their intents in one key-store transaction; how many keys existed."""
        if not key_ids:
            return 0
        with self.engine.begin() as conn:
            n = 0
            for chunk in _chunks(list(key_ids)):
                n += conn.execute(delete(data_keys).where(data_keys.c.key_id.in_(chunk))).rowcount
                conn.execute(delete(key_intents).where(key_intents.c.key_id.in_(chunk)))
        return n

    # -- the intent journal ------------------------------------------------------------------------
    def intend_shred(self, key_ids: Collection[str], owner: str) -> None:
        """Record, durably, that these keys are to be destroyed once the main transaction commits."""
        if key_ids:
            with self.engine.begin() as conn:
                _put_intents(conn, list(key_ids), SHRED, owner, datetime.now(UTC))

    def clear_intents(self, key_ids: Collection[str]) -> None:
        if key_ids:
            with self.engine.begin() as conn:
                for chunk in _chunks(list(key_ids)):
                    conn.execute(delete(key_intents).where(key_intents.c.key_id.in_(chunk)))

    def resolve(self, intent: Intent, *, destroy: bool) -> bool:
        """Drop the intent, and with `destroy` its key, only if the intent is still the one read (its owner may
        have finished it, or replaced a create by a shred, meanwhile). True if this call resolved it."""
        with self.engine.begin() as conn:
            gone = conn.execute(delete(key_intents).where(
                key_intents.c.key_id == intent.key_id, key_intents.c.action == intent.action,
                key_intents.c.owner == intent.owner)).rowcount
            if gone and destroy:
                conn.execute(delete(data_keys).where(data_keys.c.key_id == intent.key_id))
        return gone > 0

    def intents(self, key_ids: Collection[str] | None = None) -> list[Intent]:
        query = select(key_intents).order_by(key_intents.c.created_at)
        if key_ids is not None:
            if not key_ids:
                return []
            query = query.where(key_intents.c.key_id.in_(list(key_ids)))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [Intent(r.key_id, r.action, r.owner, r.created_at if r.created_at.tzinfo
                       else r.created_at.replace(tzinfo=UTC)) for r in rows]

    def key_ids(self) -> Iterator[list[str]]:
        """Every key id, in batches (the orphan scan)."""
        with self.engine.connect() as conn:
            result = conn.execute(select(data_keys.c.key_id).order_by(data_keys.c.key_id))
            while batch := result.fetchmany(_CHUNK):
                yield [r[0] for r in batch]

    def versions_in_use(self) -> dict[int, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(data_keys.c.kek_version, func.count())
                                .group_by(data_keys.c.kek_version)).all()
        return {int(v): int(n) for v, n in rows}

    def rewrap_all(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Rewrap every data key not under the current KEK version. Templates are untouched."""
        current = self.kek.current_version()
        with self.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(select(data_keys.c.key_id)
                                              .where(data_keys.c.kek_version != current))]
        done = 0
        for key_id in ids:
            with self.engine.begin() as conn:
                row = conn.execute(select(data_keys.c.kek_version, data_keys.c.wrapped)
                                   .where(data_keys.c.key_id == key_id)).first()
                if row is None or row.kek_version == current:
                    continue
                dek = self.kek.unwrap(WrappedKey(row.kek_version, row.wrapped), _aad(key_id))
                new = self.kek.wrap(dek, _aad(key_id))
                conn.execute(update(data_keys).where(data_keys.c.key_id == key_id).values(
                    kek_version=new.kek_version, wrapped=new.blob, kek_provider=self.kek.name,
                    rewrapped_at=datetime.now(UTC)))
            done += 1
            crash_point("rotate.rewrapped")
            if progress:
                progress(done, len(ids))
        return done
