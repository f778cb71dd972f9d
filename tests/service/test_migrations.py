"""Schema upgrades on a database that already holds records, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from facewarden.service.subjects import resolve_reference
from facewarden.store.db import Database


def _database(tmp_path: Path, backend: str | None) -> Database:
    return Database(backend or f"sqlite:///{tmp_path / 'facewarden.db'}")


def _at(db: Database, revision: str) -> datetime:
    """The schema at `revision`, with tenant t1 in it; the time it was made."""
    db.upgrade(revision)
    now = datetime.now(UTC)
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, name, created_at) VALUES ('t1', 't1', :now)"), {"now": now})
    return now


def test_upgrading_fills_the_reference_key_of_records_stored_before_the_rules(tmp_path: Path,
                                                                               backend: str | None) -> None:
    """Records enrolled before subject references were compared case-insensitively keep their text and become
    reachable by any case or spacing variant, through the index rather than a scan of the tenant."""
    db = _database(tmp_path, backend)
    try:
        now = _at(db, "0005")
        with db.engine.begin() as conn:
            for sid, ref in (("s-1", " Ada LOVELACE"), ("s-2", "grace")):
                conn.execute(text(
                    "INSERT INTO subjects (id, tenant_id, external_id, purpose, legal_basis, failed_attempts, "
                    "passcode_failures, created_at, updated_at) VALUES (:id, 't1', :ref, 'login', 'consent', 0, 0, "
                    ":now, :now)"), {"id": sid, "ref": ref, "now": now})
        db.upgrade()
        with db.engine.connect() as conn:
            keys = dict(conn.execute(text("SELECT external_id, reference_key FROM subjects")).all())
        assert keys == {" Ada LOVELACE": "ada lovelace", "grace": "grace"}
        with db.session() as s:
            assert resolve_reference(s, "t1", "ada lovelace") == "s-1"
            assert resolve_reference(s, "t1", "GRACE ") == "s-2"
            assert resolve_reference(s, "t1", "nobody") is None
    finally:
        db.engine.dispose()


def test_comparison_liveness_sessions_survive_an_upgrade_and_go_on_a_downgrade(tmp_path: Path,
                                                                               backend: str | None) -> None:
    """0008: subject-less sessions and reference digests; the sessions of enrolled subjects stay either way."""
    db = _database(tmp_path, backend)
    try:
        now = _at(db, "0007")
        insert = ("INSERT INTO liveness_sessions (id, tenant_id, subject_id, device, purpose, actions, nonce, status, "
                  "created_at, expires_at{extra}) VALUES (:id, 't1', :subject, 'dev', 'payment', 'blink', 'n', "
                  "'issued', :now, :now{values})")
        with db.engine.begin() as conn:
            conn.execute(text(insert.format(extra="", values="")), {"id": "with-subject", "subject": "s-1", "now": now})
        db.upgrade()
        with db.engine.begin() as conn:
            conn.execute(text(insert.format(extra=", reference_digest", values=", :digest")),
                         {"id": "comparison", "subject": None, "now": now, "digest": "ab" * 32})
        db.downgrade("0007")
        with db.engine.connect() as conn:
            assert [r[0] for r in conn.execute(text("SELECT id FROM liveness_sessions"))] == ["with-subject"]
        db.upgrade()
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT subject_id, reference_digest FROM liveness_sessions")).all() == \
                [("s-1", None)]
    finally:
        db.engine.dispose()


def test_the_light_challenge_columns_come_with_0009_and_go_without_losing_sessions(tmp_path: Path,
                                                                                  backend: str | None) -> None:
    """0009: a purpose's light-challenge setting (off for every purpose that existed), each session's colours and
    capture-token digest; a downgrade drops them and keeps the sessions and purposes."""
    db = _database(tmp_path, backend)
    try:
        now = _at(db, "0008")
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO purposes (tenant_id, name, description, legal_bases, retention_days, "
                              "law_enforcement_searchable, liveness_required, subject_category, target_fmr, "
                              "created_at, updated_at) VALUES ('t1', 'login', 'd', 'consent', 30, false, true, "
                              "'customers', 0.001, :now, :now)"), {"now": now})
            conn.execute(text("INSERT INTO liveness_sessions (id, tenant_id, subject_id, device, purpose, actions, "
                              "nonce, status, created_at, expires_at) VALUES ('s1', 't1', 'x', 'dev', 'login', "
                              "'blink', 'n', 'issued', :now, :now)"), {"now": now})
        db.upgrade()
        with db.engine.begin() as conn:
            assert conn.execute(text("SELECT light_challenge FROM purposes")).scalar() in (False, 0)
            assert conn.execute(text("SELECT light, capture_token FROM liveness_sessions")).one() == (None, None)
            conn.execute(text("UPDATE liveness_sessions SET light = '{}', capture_token = :t"), {"t": "ab" * 32})
        db.downgrade("0008")
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT id, status FROM liveness_sessions")).one() == ("s1", "issued")
            assert conn.execute(text("SELECT name FROM purposes")).scalar() == "login"
    finally:
        db.engine.dispose()
