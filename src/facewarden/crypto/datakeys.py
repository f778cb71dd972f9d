"""The data-key store: one AES-256 data key per subject (or police request, or liveness session), wrapped by
the KEK, stored apart from the main database. Destroying an entry here is crypto-shredding: every copy of what
it sealed, backups of the main database included, becomes undecryptable.

This hands out raw data keys; only `KeyRing` (keyring.py) should call it. The table, key ids and associated
data are those of the former `crypto/vault.py`, so existing key databases still open.
"""

from __future__ import annotations

import os
from collections.abc import Callable
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
from sqlalchemy.engine import Engine

from facewarden.crypto.kek import KeyEncryptionKeyProvider, WrappedKey
from facewarden.errors import KeyUnavailable
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

    def create(self, key_id: str) -> bytes:
        dek = os.urandom(DATA_KEY_BYTES)
        wrapped = self.kek.wrap(dek, _aad(key_id))
        with self.engine.begin() as conn:
            conn.execute(insert(data_keys).values(
                key_id=key_id, kek_provider=self.kek.name, kek_version=wrapped.kek_version,
                wrapped=wrapped.blob, created_at=datetime.now(UTC)))
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
        with self.engine.begin() as conn:
            return conn.execute(delete(data_keys).where(data_keys.c.key_id == key_id)).rowcount > 0

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
            if progress:
                progress(done, len(ids))
        return done
