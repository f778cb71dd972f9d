"""The audit log in use: what each operation records, atomicity with the operation, proofs over the API,
exports an outside auditor checks with the CLI alone, and a witness that refuses rewritten history."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from facewarden.api.witness_app import create_witness_app
from facewarden.audit import AuditEvent, AuditQuery, LogPublicKey, LogSigner, SignedTreeHead
from facewarden.audit.entries import ENTRY_FIELDS, canonical_entry
from facewarden.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from facewarden.audit.witness import HttpWitness, WitnessLedger, make_witness
from facewarden.service import LOCAL_ADMIN, EnrolRequest, FaceService, build_service
from facewarden.store import AuditEntry, Subject
from tests.conftest import Api, make_settings


def _entries(api: Api, **params: Any) -> list[dict[str, Any]]:
    r = api.client.get("/v1/audit/entries", params=params, headers=api.keys["auditor"])
    assert r.status_code == 200, r.text
    return r.json()["entries"]


def _b(text_: str) -> bytes:
    return base64.b64decode(text_)


def test_every_operation_on_face_data_is_logged_with_identifiers_only(enrolled_api: Api, shared_faces: Path) -> None:
    api = enrolled_api
    obama = (shared_faces / "people" / "test" / "obama.jpg").read_bytes() \
        if (shared_faces / "people" / "test" / "obama.jpg").exists() \
        else sorted((shared_faces / "people" / "train" / "obama").iterdir())[0].read_bytes()
    start = api.service.audit.state_size()
    assert api.verify("obama", obama).json()["match"] is True
    assert api.verify("biden", obama).json()["match"] is False
    assert api.identify(obama).status_code == 200
    assert api.client.get("/v1/subjects/obama/export", headers=api.keys["operator"]).status_code == 200
    assert api.identify(obama, role="verifier").status_code == 403
    assert api.client.get("/v1/subjects", headers={"Authorization": "Bearer fw_wrong"}).status_code == 401
    assert api.client.delete("/v1/subjects/biden", headers=api.keys["operator"]).status_code == 200

    # Failed logins belong to no tenant: the service-wide view (CLI, local administrator) shows them.
    rows = api.service.auditing.query(LOCAL_ADMIN, AuditQuery(after_seq=start - 1))
    ops = [(r["operation"], r["outcome"]) for r in rows]
    assert ops == [("verify", "match"), ("verify", "no_match"), ("identify", "candidates"), ("export", "ok"),
                   ("identify", "forbidden"), ("login", "unauthorized"), ("erase", "erased")]
    with api.service.db.session() as s:
        obama_id = s.scalar(select(Subject.id).where(Subject.external_id == "obama"))
    verify_ok = rows[0]
    assert verify_ok["subject_id"] == obama_id
    assert (verify_ok["purpose"], verify_ok["legal_basis"]) == ("login", "consent")
    assert verify_ok["actor"].startswith("apikey:") and verify_ok["tenant_id"] == "default"
    assert json.loads(rows[2]["details"])["candidates"] == [obama_id]  # whose data was disclosed
    assert rows[5]["tenant_id"] == "-" and rows[5]["actor"].startswith("anonymous@")
    # Identifiers only: no names, no scores, no embeddings anywhere in the log.
    every = json.dumps(_entries(api, limit=10_000))
    for name in ("obama", "biden", "distance"):
        assert name not in every
    for r in _entries(api, limit=10_000):
        assert not any(isinstance(v, float) for v in json.loads(r["details"]).values())
    # Enrolments are in it too, one per subject, and the auditor's own queries are logged.
    assert len(_entries(api, operation="enrol")) == 5
    assert _entries(api, operation="audit_query")
    assert not _entries(api, operation="login")  # a tenant's auditor does not see unattributed failures
    assert api.service.audit.verify().ok


def test_scores_and_embeddings_cannot_be_written_to_the_log(service: FaceService) -> None:
    for details in ({"distance": 0.42}, {"embedding": [0.1, 0.2]}, {"image": b"\xff\xd8"}):
        with pytest.raises(Exception, match="only identifiers"):
            service.audit.record(AuditEvent("default", "x", "verify", details=details))
    assert service.audit.state_size() == 0


def _count(service: FaceService) -> tuple[int, int]:
    with service.db.session() as s:
        return (s.scalar(select(func.count()).select_from(Subject)) or 0,
                s.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def test_no_operation_without_its_entry_and_no_entry_without_its_operation(
        service: FaceService, shared_faces: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    photo = sorted((shared_faces / "people" / "train" / "obama").iterdir())[0].read_bytes()
    req = EnrolRequest("obama", [photo], "login", "contract")
    before = _count(service)

    # 1. The database refuses the audit row halfway through the enrolment: the subject is not stored either.
    dialect = service.db.engine.dialect.name
    with service.db.engine.begin() as conn:
        if dialect == "postgresql":
            conn.execute(text("CREATE FUNCTION fail_audit() RETURNS trigger LANGUAGE plpgsql AS "
                              "$$ BEGIN RAISE EXCEPTION 'audit store failed'; END $$"))
            conn.execute(text("CREATE TRIGGER fail_audit BEFORE INSERT ON audit_entries "
                              "FOR EACH ROW EXECUTE FUNCTION fail_audit()"))
        else:
            conn.execute(text("CREATE TRIGGER fail_audit BEFORE INSERT ON audit_entries "
                              "BEGIN SELECT RAISE(ABORT, 'audit store failed'); END"))
    with pytest.raises(Exception, match="audit store failed"):
        service.matching.enrol(LOCAL_ADMIN, req)
    assert _count(service) == before
    assert service.keyring.versions_in_use() == {}  # the new data key was destroyed again
    with service.db.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER fail_audit" + (" ON audit_entries" if dialect == "postgresql" else "")))

    # 2. The entry is written, then the operation fails before commit: the entry goes with it.
    original = service.audit.append

    def append_then_fail(s: Any, event: AuditEvent) -> int:
        original(s, event)
        raise RuntimeError("power cut after the audit entry")

    monkeypatch.setattr(service.audit, "append", append_then_fail)
    with pytest.raises(RuntimeError):
        service.matching.enrol(LOCAL_ADMIN, req)
    assert _count(service) == before
    assert service.audit.state_size() == before[1]

    # 3. Working again: one subject, one entry, and the log verifies.
    monkeypatch.setattr(service.audit, "append", original)
    service.matching.enrol(LOCAL_ADMIN, req)
    assert _count(service) == (before[0] + 1, before[1] + 1)
    assert service.audit.verify().ok


def test_failed_verification_count_and_its_entry_commit_together(
        api: Api, shared_faces: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train = shared_faces / "people" / "train"
    assert api.enrol("obama", sorted((train / "obama").iterdir())[:1]).status_code == 201
    biden = sorted((train / "biden").iterdir())[0].read_bytes()
    original = api.service.audit.append

    def broken(s: Any, event: AuditEvent) -> int:
        raise RuntimeError("audit store down")

    monkeypatch.setattr(api.service.audit, "append", broken)
    with pytest.raises(RuntimeError):
        api.service.matching.verify(LOCAL_ADMIN, "obama", biden, purpose="login")
    monkeypatch.setattr(api.service.audit, "append", original)
    assert api.verify("obama", biden).json()["attempts_left"] == 4  # the unlogged attempt left no trace


def test_inclusion_and_consistency_proofs_over_the_api(enrolled_api: Api, shared_faces: Path) -> None:
    api = enrolled_api
    key = LogPublicKey.from_pem(api.client.get("/v1/audit/public-key").content)
    first = api.client.post("/v1/audit/tree-heads", headers=api.keys["auditor"]).json()
    photo = sorted((shared_faces / "people" / "train" / "obama").iterdir())[0].read_bytes()
    for _ in range(3):
        api.verify("obama", photo)
    second = api.client.post("/v1/audit/tree-heads", headers=api.keys["admin"]).json()
    assert second["tree_size"] > first["tree_size"]
    for head in (first, second):
        assert key.verify_head(SignedTreeHead.from_json(head))

    entries = _entries(api, limit=10_000)
    for seq in (0, 3, first["tree_size"] - 1, second["tree_size"] - 1):
        r = api.client.get("/v1/audit/proofs/inclusion", params={"seq": seq, "tree_size": second["tree_size"]},
                           headers=api.keys["auditor"])
        assert r.status_code == 200, r.text
        proof = [_b(p) for p in r.json()["audit_path"]]
        entry = next(e for e in entries if e["seq"] == seq)
        leaf = leaf_hash(canonical_entry({k: entry[k] for k in ENTRY_FIELDS}))
        root = _b(second["root_hash"])
        assert verify_inclusion(leaf, seq, second["tree_size"], proof, root)
        assert not verify_inclusion(leaf, seq + 1, second["tree_size"], proof, root)
        tampered = dict(entry, outcome="no_match")
        assert not verify_inclusion(leaf_hash(canonical_entry({k: tampered[k] for k in ENTRY_FIELDS})), seq,
                                    second["tree_size"], proof, root)

    r = api.client.get("/v1/audit/proofs/consistency", params={"first": first["tree_size"],
                                                                "second": second["tree_size"]},
                       headers=api.keys["auditor"])
    assert r.status_code == 200, r.text
    proof = [_b(p) for p in r.json()["consistency_path"]]
    assert verify_consistency(first["tree_size"], second["tree_size"], _b(first["root_hash"]),
                              _b(second["root_hash"]), proof)
    assert not verify_consistency(first["tree_size"], second["tree_size"], os.urandom(32),
                                  _b(second["root_hash"]), proof)
    # Devices and apps get no access to the log.
    assert api.client.get("/v1/audit/proofs/inclusion", params={"seq": 0},
                          headers=api.keys["verifier"]).status_code == 403
    assert api.client.get("/v1/audit/entries", headers=api.keys["operator"]).status_code == 403
    assert api.client.get("/v1/audit/proofs/consistency", params={"first": 999_999},
                          headers=api.keys["auditor"]).status_code == 404


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_outside_auditor_checks_an_export_with_the_cli_alone(enrolled_api: Api, tmp_path: Path) -> None:
    api = enrolled_api
    r = api.client.get("/v1/audit/export", params={"operation": "enrol"}, headers=api.keys["auditor"])
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert len(bundle["entries"]) == 5
    (tmp_path / "period.json").write_text(json.dumps(bundle))
    (tmp_path / "log.pem").write_text(api.client.get("/v1/audit/public-key").text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEWARDEN_")}
    env["FACEWARDEN_HOME"] = str(tmp_path / "no-such-home")  # the auditor has no database and no keys

    def check(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "facewarden.cli", "audit", "verify-export", str(path),
                               "--public-key", str(tmp_path / "log.pem")], env=env, capture_output=True,
                              text=True, timeout=120)

    ok = check(tmp_path / "period.json")
    assert ok.returncode == 0 and "5 entries checked" in ok.stdout and "OK" in ok.stdout, ok.stdout + ok.stderr
    assert not (tmp_path / "no-such-home").exists()

    bundle["entries"][2]["actor"] = "apikey:someone-else"
    (tmp_path / "edited.json").write_text(json.dumps(bundle))
    bad = check(tmp_path / "edited.json")
    assert bad.returncode == 1 and "entry_changed" in bad.stdout, bad.stdout
    other_key = LogSigner.from_file(tmp_path / "other.pem", create=True)
    (tmp_path / "log.pem").write_text(other_key.pem())
    assert check(tmp_path / "period.json").returncode == 1  # not the log the auditor pinned


def test_auditors_see_only_their_own_tenant(service: FaceService) -> None:
    service.accounts.ensure_tenant("other-bank")
    service.audit.record(AuditEvent("other-bank", "apikey:x", "verify", outcome="match"))
    service.audit.record(AuditEvent("default", "apikey:y", "verify", outcome="match"))
    _, secret = service.accounts.create_api_key(LOCAL_ADMIN, name="auditor-b", key_roles={"auditor"}, tenant_id="other-bank")
    client = TestClient(__import__("facewarden.api", fromlist=["create_app"]).create_app(service))
    rows = client.get("/v1/audit/entries", headers={"Authorization": f"Bearer {secret}"}).json()["entries"]
    assert {r["tenant_id"] for r in rows} == {"other-bank"}
    export = client.get("/v1/audit/export", headers={"Authorization": f"Bearer {secret}"}).json()
    assert {e["tenant_id"] for e in export["entries"]} == {"other-bank"}


def test_http_witness_accepts_a_growing_log_and_refuses_rewritten_history(tmp_path: Path, backend: str | None) -> None:
    svc = build_service(make_settings(tmp_path / "home", backend, audit_witnesses=[]), create=True)
    ledger = WitnessLedger(tmp_path / "witness", [svc.audit.signer.public()],
                           LogSigner.from_file(tmp_path / "witness" / "key.pem", create=True))
    witness = HttpWitness("http://witness", client=TestClient(create_witness_app(ledger), base_url="http://witness"))
    svc.audit.witnesses = [witness]
    for i in range(7):
        svc.audit.record(AuditEvent("default", "apikey:a", "verify", outcome="match", details={"n": i}))
        svc.audit.sign_head()
    assert svc.audit.witness_errors == {}
    assert [h.tree_size for h in witness.heads(svc.audit.signer)] == list(range(1, 8))
    assert svc.audit.verify().ok

    # An insider with the database and the signing key rewrites entry 2 and re-signs everything.
    if svc.db.engine.dialect.name == "postgresql":
        drop = "DROP TRIGGER audit_entries_append_only ON audit_entries"
    else:
        drop = "DROP TRIGGER audit_entries_no_update"
    with svc.db.engine.begin() as conn:
        conn.execute(text(drop))
        conn.execute(text("DELETE FROM audit_tree_heads"))
        row = dict(conn.execute(text("SELECT * FROM audit_entries WHERE seq = 2")).mappings().one())
        row["outcome"] = "no_match"
        leaf = leaf_hash(canonical_entry({k: row[k] for k in ENTRY_FIELDS}))
        conn.execute(text("UPDATE audit_entries SET outcome = 'no_match', leaf_hash = :h, receipt = :r "
                          "WHERE seq = 2"), {"h": leaf, "r": svc.audit.signer.sign_receipt(2, leaf)})
        leaves = [bytes(r[0]) for r in conn.execute(text("SELECT leaf_hash FROM audit_entries ORDER BY seq"))]
    from facewarden.audit.merkle import compact_range_append
    frontier: list[bytes] = []
    for i, leaf_ in enumerate(leaves):
        frontier = compact_range_append(frontier, i, leaf_)
    with svc.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_state SET frontier = :f"), {"f": b"".join(frontier)})
    rewriter = build_service(svc.settings)
    rewriter.audit.witnesses = [witness]
    svc.audit.record(AuditEvent("default", "apikey:a", "verify", outcome="match"))
    rewriter.audit.sign_head()
    assert "not consistent" in rewriter.audit.witness_errors[witness.name]  # refused on the spot
    report = svc.audit.verify()
    assert report.kinds() == {"history_rewritten"}, report.to_json()
    rewriter.db.dispose()
    svc.db.dispose()


def test_witness_refuses_heads_it_cannot_trust(tmp_path: Path) -> None:
    log = LogSigner.from_file(tmp_path / "log.pem", create=True)
    ledger = WitnessLedger(tmp_path / "w", [log.public()], LogSigner.from_file(tmp_path / "wk.pem", create=True))
    client = TestClient(create_witness_app(ledger))
    url = f"/v1/logs/{log.log_id}/heads"
    root = leaf_hash(b"x")
    good = log.sign_head(1, 1000, root).to_json(log.log_id)
    assert client.post(url, json={"head": good, "proof": []}).status_code == 200
    forged = dict(good, root_hash=base64.b64encode(os.urandom(32)).decode())
    assert client.post(url, json={"head": forged, "proof": []}).json()["error"]["code"] == "bad_signature"
    stranger = LogSigner.from_file(tmp_path / "stranger.pem", create=True)
    foreign = stranger.sign_head(1, 1000, root).to_json(stranger.log_id)
    assert client.post(f"/v1/logs/{stranger.log_id}/heads", json={"head": foreign, "proof": []}).status_code == 404
    smaller = log.sign_head(0, 2000, leaf_hash(b"")).to_json(log.log_id)
    assert client.post(url, json={"head": smaller, "proof": []}).json()["error"]["code"] == "log_truncated"
    assert len(client.get(url).json()["heads"]) == 1


def test_serve_signs_and_publishes_heads_in_the_background(service: FaceService) -> None:
    witness = service.audit.witnesses[0]
    stop = service.audit.start_signer(0.05)
    try:
        service.audit.record(AuditEvent("default", "apikey:a", "verify", outcome="match"))
        deadline = time.time() + 10
        # A head is stored, then published: wait for the witness too (a busy machine can pause in between).
        while time.time() < deadline and not (service.audit.stored_heads() and witness.heads(service.audit.signer)):
            time.sleep(0.05)
    finally:
        stop.set()
    heads = service.audit.stored_heads()
    assert heads and heads[-1].tree_size == 1
    assert [h.tree_size for h in witness.heads(service.audit.signer)] == [1]


def test_witness_service_over_https_follows_the_log(tmp_path: Path) -> None:
    """`facewarden witness serve` as another party would run it, spoken to over real HTTPS."""
    import socket

    svc = build_service(make_settings(tmp_path / "home", None, audit_witnesses=[]), create=True)
    (tmp_path / "log.pem").write_text(svc.audit.signer.pem())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    proc = subprocess.Popen([sys.executable, "-m", "facewarden.cli", "witness", "serve", "--dir",
                             str(tmp_path / "w"), "--log-key", str(tmp_path / "log.pem"), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        cert = tmp_path / "w" / "tls" / "cert.pem"
        for _ in range(120):
            if cert.exists():
                try:
                    witness = make_witness(f"https://127.0.0.1:{port}", verify=str(cert))
                    witness.heads(svc.audit.signer)
                    break
                except Exception:
                    pass
            time.sleep(0.5)
        else:
            pytest.fail("the witness did not come up")
        svc.audit.witnesses = [witness]
        for i in range(3):
            svc.audit.record(AuditEvent("default", "apikey:a", "verify", outcome="match", details={"n": i}))
            svc.audit.sign_head()
        assert svc.audit.witness_errors == {}
        assert [h.tree_size for h in witness.heads(svc.audit.signer)] == [1, 2, 3]
        report = svc.audit.verify()
        assert report.ok and report.witness_heads_checked == 3
    finally:
        for w in svc.audit.witnesses:
            w.close()
        proc.terminate()
        proc.communicate(timeout=30)
        svc.db.dispose()
