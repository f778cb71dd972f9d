"""Engine and session set-up; schema upgrades through Alembic."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from facewarden.errors import InvalidInput

MIGRATIONS = Path(__file__).parent / "migrations"


def make_sqlite_engine(url: str, pragmas: list[str], *, begin: str | None = None) -> Engine:
    """A SQLite engine whose file is created owner-only (0600, folder 0700), with pragmas on every connection.

    `begin="IMMEDIATE"` takes the write lock when a transaction starts: a deferred transaction that reads
    and then writes fails at once under WAL when another writer got in between, instead of waiting.
    A connection run with the execution option `sqlite_begin` overrides it (read-only units of work)."""
    path = url.removeprefix("sqlite:///")
    if path and path != ":memory:":
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
        if not os.path.exists(path):
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        cur = dbapi_conn.cursor()
        for pragma in pragmas:
            cur.execute(f"PRAGMA {pragma}")
        cur.close()
        if begin:
            dbapi_conn.isolation_level = None  # SQLAlchemy's begin hook below issues BEGIN itself

    if begin:
        @event.listens_for(engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get('sqlite_begin', begin)}")

    return engine


NUL_MESSAGE = ("A text field or path parameter contains a NUL (0x00) character, which text fields may not "
               "contain. Remove it and send the request again.")


def has_nul(value: object) -> bool:
    """Whether text anywhere in `value` (nested dicts, lists, tuples; keys included) holds NUL."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False  # bytes (ciphertext, hashes) may hold any byte


def refuse_nul_text(engine: Engine) -> None:
    """Refuse any statement whose text parameters hold NUL, before the driver sees it, on every backend alike.

    PostgreSQL cannot store NUL in text (psycopg raises a bare error, a 500) while SQLite stores it; one check
    here covers every field and query of every use case, and the unit of work rolls back as for any error."""

    @event.listens_for(engine, "before_cursor_execute")
    def _no_nul(_conn, _cursor, _statement, parameters, _context, _executemany):  # type: ignore[no-untyped-def]
        if has_nul(parameters):
            raise InvalidInput(NUL_MESSAGE, code="nul_byte_in_text")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        # secure_delete: deleted rows (erased subjects' ciphertext) are overwritten, not left in free pages.
        engine = make_sqlite_engine(url, ["journal_mode=WAL", "foreign_keys=ON", "secure_delete=ON",
                                          "busy_timeout=30000"], begin="IMMEDIATE")
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    refuse_nul_text(engine)
    return engine


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.engine.execution_options(sqlite_begin="DEFERRED"),
                                           expire_on_commit=False)

    def upgrade(self, revision: str = "head") -> None:
        self._migrate(command.upgrade, revision)

    def downgrade(self, revision: str) -> None:
        """Back to an older schema (operators undoing an upgrade; the migrations' round trip is tested)."""
        self._migrate(command.downgrade, revision)

    def _migrate(self, step: Callable[[Config, str], None], revision: str) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection_url"] = self.url
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            step(cfg, revision)

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any error. Callables put in
        `s.info["after_commit"]` run once the commit has succeeded. `readonly` units of work do not take
        SQLite's write lock up front (they must not write)."""
        with (self._read_sessions if readonly else self._sessions)() as s:
            with s.begin():
                yield s
            for callback in s.info.pop("after_commit", []):
                callback()

    def dispose(self) -> None:
        self.engine.dispose()
