"""An insider with SQL access tampers with the audit log; `audit verify` must notice and name it.

Every test runs on SQLite and on PostgreSQL. The insider first drops the append-only triggers, as someone with
DDL rights would, then edits rows directly in SQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from facewarden.audit import AuditEvent, LogSigner
from facewarden.audit.entries import ENTRY_FIELDS, canonical_entry
from facewarden.audit.merkle import MerkleTree, compact_range_append, leaf_hash
from facewarden.service import FaceService, build_service
from tests.conftest import make_settings

ENTRIES = 40
SIGNED_AT = (10, 20, 30)  # heads signed and sent to the witness at these sizes; 30-39 are covered by receipts only


def _build_log(svc: FaceService) -> None:
    for i in range(ENTRIES):
        svc.audit.record(AuditEvent("bank", f"apikey:{i % 3}", "verify" if i % 2 else "enrol",
                                    subject_id=f"00000000-0000-0000-0000-{i:012d}", purpose="login",
                                    legal_basis="consent", outcome="match" if i % 2 else "enrolled",
                                    details={"attempts_left": 5}))
        if i + 1 in SIGNED_AT:
            svc.audit.sign_head()


@pytest.fixture
def logged(tmp_path: Path, backend: str | None) -> Iterator[FaceService]:
    svc = build_service(make_settings(tmp_path / "home", backend), create=True)
    _build_log(svc)
    yield svc
    svc.db.dispose()
    svc.keyring.store.engine.dispose()


def _sql(svc: FaceService, statement: str, **params: object) -> None:
    with svc.db.engine.begin() as conn:
        conn.execute(text(statement), params)


def _drop_guards(svc: FaceService) -> None:
    if svc.db.engine.dialect.name == "postgresql":
        _sql(svc, "DROP TRIGGER audit_entries_append_only ON audit_entries")
    else:
        _sql(svc, "DROP TRIGGER audit_entries_no_update")
        _sql(svc, "DROP TRIGGER audit_entries_no_delete")


def _row(svc: FaceService, seq: int) -> dict[str, object]:
    with svc.db.engine.connect() as conn:
        return dict(conn.execute(text("SELECT * FROM audit_entries WHERE seq = :s"), {"s": seq}).mappings().one())


def _move(svc: FaceService, where: str, delta: int) -> None:
    """Renumber rows in two steps, as an insider must with a primary key on seq."""
    _sql(svc, f"UPDATE audit_entries SET seq = seq + 1000000 WHERE {where}")
    _sql(svc, f"UPDATE audit_entries SET seq = seq - 1000000 + {delta} WHERE seq >= 1000000")


def _verify(svc: FaceService) -> tuple[set[str], list[int | None]]:
    report = svc.audit.verify()
    return report.kinds(), [f.seq for f in report.findings]


def test_untouched_log_verifies(logged: FaceService) -> None:
    report = logged.audit.verify()
    assert report.ok, report.to_json()
    assert report.entries == ENTRIES and report.heads_checked == 3 and report.witness_heads_checked == 3


def test_database_refuses_updates_and_deletes_of_entries(logged: FaceService) -> None:
    for statement in ("UPDATE audit_entries SET outcome = 'x' WHERE seq = 1", "DELETE FROM audit_entries WHERE seq = 1"):
        with pytest.raises(Exception, match="append-only"):
            _sql(logged, statement)
    assert logged.audit.verify().ok


def test_changed_entry_is_named(logged: FaceService) -> None:
    _drop_guards(logged)
    _sql(logged, "UPDATE audit_entries SET outcome = 'no_match' WHERE seq = 12")
    assert _verify(logged) == ({"entry_changed"}, [12])


def test_changed_entry_with_recomputed_hash_is_named(logged: FaceService) -> None:
    _drop_guards(logged)
    row = _row(logged, 12)
    row["actor"] = "apikey:somebody-else"
    new_leaf = leaf_hash(canonical_entry({k: row[k] for k in ENTRY_FIELDS}))
    _sql(logged, "UPDATE audit_entries SET actor = :a, leaf_hash = :h WHERE seq = 12", a=row["actor"], h=new_leaf)
    assert _verify(logged) == ({"entry_changed"}, [12])


def test_changed_entry_after_the_last_head_is_named(logged: FaceService) -> None:
    _drop_guards(logged)
    row = _row(logged, 35)
    row["subject_id"] = None
    new_leaf = leaf_hash(canonical_entry({k: row[k] for k in ENTRY_FIELDS}))
    _sql(logged, "UPDATE audit_entries SET subject_id = NULL, leaf_hash = :h WHERE seq = 35", h=new_leaf)
    assert _verify(logged) == ({"entry_changed"}, [35])


def test_deleted_entry_is_named(logged: FaceService) -> None:
    _drop_guards(logged)
    _sql(logged, "DELETE FROM audit_entries WHERE seq = 15")
    assert _verify(logged) == ({"entry_deleted"}, [15])


def test_deleted_entry_hidden_by_renumbering_is_named(logged: FaceService) -> None:
    _drop_guards(logged)
    _sql(logged, "DELETE FROM audit_entries WHERE seq = 15")
    _move(logged, "seq > 15", -1)
    assert _verify(logged) == ({"entry_deleted"}, [15])


def test_inserted_entry_is_named(logged: FaceService) -> None:
    _drop_guards(logged)
    fake = _row(logged, 15)
    fake["outcome"] = "no_match"
    fake["leaf_hash"] = leaf_hash(canonical_entry({k: fake[k] for k in ENTRY_FIELDS}))
    fake["receipt"] = os.urandom(64)
    _move(logged, "seq >= 15", +1)
    fake["seq"] = 15
    cols = ", ".join(fake)
    _sql(logged, f"INSERT INTO audit_entries ({cols}) VALUES ({', '.join(':' + c for c in fake)})", **fake)
    kinds, seqs = _verify(logged)
    assert kinds == {"entry_inserted"} and seqs == [15]


def test_entry_appended_without_the_key_is_named(logged: FaceService) -> None:
    fake = _row(logged, 39)
    fake["seq"] = ENTRIES
    fake["receipt"] = os.urandom(64)
    _sql(logged, f"INSERT INTO audit_entries ({', '.join(fake)}) VALUES ({', '.join(':' + c for c in fake)})",
         **fake)  # an INSERT needs no dropped trigger
    assert _verify(logged) == ({"entry_inserted"}, [ENTRIES])


@pytest.mark.parametrize(("a", "b"), [(12, 17), (22, 23), (33, 36)])
def test_reordered_entries_are_named(logged: FaceService, a: int, b: int) -> None:
    _drop_guards(logged)
    _sql(logged, "UPDATE audit_entries SET seq = -1 WHERE seq = :a", a=a)
    _sql(logged, "UPDATE audit_entries SET seq = :a WHERE seq = :b", a=a, b=b)
    _sql(logged, "UPDATE audit_entries SET seq = :b WHERE seq = -1", b=b)
    assert _verify(logged) == ({"entries_reordered"}, [a])


def test_truncated_log_is_named_even_when_the_insider_covers_tracks(logged: FaceService) -> None:
    _drop_guards(logged)
    _sql(logged, "DELETE FROM audit_entries WHERE seq >= 25")
    _sql(logged, "DELETE FROM audit_tree_heads WHERE tree_size > 25")
    tree = MerkleTree(bytes(_row(logged, i)["leaf_hash"]) for i in range(25))  # type: ignore[arg-type]
    frontier: list[bytes] = []
    for i in range(25):
        frontier = compact_range_append(frontier, i, tree.leaf(i))
    _sql(logged, "UPDATE audit_state SET size = 25, frontier = :f", f=b"".join(frontier))
    kinds, seqs = _verify(logged)
    assert kinds == {"log_truncated"} and seqs == [25]  # the witness still holds the head of size 30


def test_forged_tree_head_is_named(logged: FaceService) -> None:
    _sql(logged, "INSERT INTO audit_tree_heads (tree_size, timestamp_ms, root_hash, signature) "
                 "VALUES (45, 1, :r, :s)", r=os.urandom(32), s=os.urandom(64))
    assert _verify(logged)[0] == {"tree_head_forged"}


def test_altered_tree_head_is_named(logged: FaceService) -> None:
    _sql(logged, "UPDATE audit_tree_heads SET root_hash = :r WHERE tree_size = 20", r=os.urandom(32))
    assert _verify(logged)[0] == {"tree_head_forged"}


def test_history_rewritten_with_the_signing_key_is_caught_by_the_witness(logged: FaceService) -> None:
    """The insider holds the database and the signing key, recomputes every hash, receipt and head. Only the
    witness's copies of earlier heads show it."""
    _drop_guards(logged)
    signer = LogSigner.from_file(logged.settings.resolved_audit_signing_key)
    row = _row(logged, 5)
    row["outcome"] = "no_match"
    leaf = leaf_hash(canonical_entry({k: row[k] for k in ENTRY_FIELDS}))
    _sql(logged, "UPDATE audit_entries SET outcome = 'no_match', leaf_hash = :h, receipt = :r WHERE seq = 5",
         h=leaf, r=signer.sign_receipt(5, leaf))
    frontier: list[bytes] = []
    for i in range(ENTRIES):
        frontier = compact_range_append(frontier, i, bytes(_row(logged, i)["leaf_hash"]))  # type: ignore[arg-type]
    _sql(logged, "UPDATE audit_state SET frontier = :f", f=b"".join(frontier))
    _sql(logged, "DELETE FROM audit_tree_heads")
    rewriter = build_service(logged.settings)  # a fresh process that trusts the rewritten rows
    rewriter.audit.sign_head()
    rewriter.db.dispose()
    report = logged.audit.verify()
    assert report.kinds() == {"history_rewritten"}, report.to_json()
    # Without the witness, nothing in the database gives the rewrite away: the witness is what catches it.
    logged.audit.witnesses = []
    assert logged.audit.verify().ok


def test_service_refuses_to_sign_over_a_tampered_log(logged: FaceService) -> None:
    logged.audit.sign_head()
    _drop_guards(logged)
    _sql(logged, "UPDATE audit_entries SET leaf_hash = :h WHERE seq = 3", h=os.urandom(32))
    logged.audit.record(AuditEvent("bank", "apikey:1", "verify"))
    fresh = build_service(logged.settings)
    with pytest.raises(Exception, match="refusing to sign"):
        fresh.audit.sign_head()
    fresh.db.dispose()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_cli_audit_verify_names_the_tampering_and_exits_1(logged: FaceService, tmp_path: Path) -> None:
    env = {**os.environ, "FACEWARDEN_HOME": str(logged.settings.home)}
    cmd = [sys.executable, "-m", "facewarden.cli", "audit", "verify"]
    ok = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "OK: the log is intact" in ok.stdout, ok.stdout + ok.stderr
    _drop_guards(logged)
    _sql(logged, "DELETE FROM audit_entries WHERE seq = 7")
    bad = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "TAMPERED entry_deleted at entry 7" in bad.stdout


def test_wrong_public_key_is_named_not_taken_for_tampering(logged: FaceService, tmp_path: Path) -> None:
    stranger = LogSigner.from_file(tmp_path / "stranger.pem", create=True).public()
    report = logged.audit.verify(key=stranger)
    assert "key_mismatch" in report.kinds() and not report.ok


def test_many_rewritten_entries_are_reported_quickly(logged: FaceService) -> None:
    """A bulk rewrite must not make the verifier crawl (it once compared every bad row with every other)."""
    _drop_guards(logged)
    for i in range(3 * ENTRIES):
        logged.audit.record(AuditEvent("bank", "apikey:1", "verify", outcome="match", details={"n": i}))
    rows = [_row(logged, seq) for seq in range(30, 4 * ENTRIES)]
    for row in rows:  # every entry after the last head: content and leaf hash rewritten, receipts left alone
        row["outcome"] = "no_match"
        _sql(logged, "UPDATE audit_entries SET outcome = 'no_match', leaf_hash = :h WHERE seq = :s",
             h=leaf_hash(canonical_entry({k: row[k] for k in ENTRY_FIELDS})), s=row["seq"])
    report = logged.audit.verify()
    assert report.kinds() == {"entry_changed"} and report.findings[0].seq == 30
    assert len(report.findings) == 1 and "130 entries" in report.findings[0].message  # one finding, not 130
    assert report.seconds < 5


def test_concurrent_signers_do_not_collide(logged: FaceService) -> None:
    import threading

    errors: list[BaseException] = []

    def sign() -> None:
        try:
            for _ in range(5):
                logged.audit.record(AuditEvent("bank", "apikey:1", "verify", outcome="match"))
                logged.audit.sign_head()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sign) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert logged.audit.verify().ok
