"""kill -9 during enrolment, erasure and key rotation, on SQLite and PostgreSQL: after a restart every acknowledged
operation is complete, nothing unacknowledged is half-done, no data key is orphaned and the audit log verifies.
And a key rotation run from the CLI beside a running server does not break it (issue 10, items 5-7).

The long run (20 kills on SQLite, 10 on PostgreSQL, with a no-recovery baseline) is bench/bench_crash.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.e2e.crash_harness import CrashLab

# (crash point armed in the server, or a random delay, and the operations sent meanwhile). Each cycle kills the
# server once; the restart's start-up recovery is what the check then looks at.
SQLITE_CYCLES: list[tuple[str, float | None, list[str]]] = [
    ("enrol.key_created:2", None, ["enrol", "enrol"]),  # key and intent committed, main transaction not
    ("enrol.committed:2", None, ["enrol", "rotate", "enrol"]),  # main committed, intent not yet cleared
    ("erase.intent_written:2", None, ["erase", "erase"]),  # shred journalled, records not yet deleted
    ("erase.committed:1", None, ["erase"]),  # records deleted and audited, key not yet shredded
    ("rotate.rewrapped:2", None, ["enrol", "enrol", "rotate"]),  # keys under the new KEK version and the old
    ("", 1.0, ["enrol", "erase", "enrol"]),  # a random moment
]
PG_CYCLES: list[tuple[str, float | None, list[str]]] = [
    ("enrol.key_created:2", None, ["enrol", "enrol"]),
    ("enrol.committed:2", None, ["enrol", "rotate", "enrol"]),
    ("erase.committed:2", None, ["erase", "erase"]),
    ("", 1.0, ["enrol", "erase", "enrol"]),
]


def _run_cycles(lab: CrashLab, cycles: list[tuple[str, float | None, list[str]]]) -> None:
    lab.init()
    try:
        for n, found in enumerate(lab.run_cycles(cycles)):
            assert found.problems() == {}, (cycles[n], found.problems(), lab.unacked)
        found = lab.check(verify_all=True, audit_verify=True)
        assert found.problems() == {}, found.problems()
    finally:
        lab.stop()
    assert lab.kills == len(cycles)
    assert lab.self_kills == sum(1 for faults, _, _ in cycles if faults)  # each armed crash point was reached
    assert lab.acked_enrols and lab.acked_erases and lab.rotations >= 1  # every kind of operation got through


def test_kills_during_enrolment_erasure_and_rotation_on_sqlite(tmp_path: Path, shared_faces: Path) -> None:
    _run_cycles(CrashLab(tmp_path / "home", shared_faces, seed=1), SQLITE_CYCLES)


def test_kills_during_enrolment_erasure_and_rotation_on_postgresql(tmp_path: Path, shared_faces: Path,
                                                                   pg_database: str) -> None:
    _run_cycles(CrashLab(tmp_path / "home", shared_faces, pg_database, seed=2), PG_CYCLES)


def test_a_server_survives_a_cli_key_rotation_that_retires_the_old_version(tmp_path: Path,
                                                                          shared_faces: Path) -> None:
    lab = CrashLab(tmp_path / "home", shared_faces, seed=3)
    lab.init()
    lab.start()
    test = shared_faces / "people" / "test"
    try:
        with lab.client() as c:
            for person in ("obama", "kit_harington"):
                photos = sorted((shared_faces / "people" / "train" / person).iterdir())
                assert c.post("/v1/subjects", data={"subject": person, "purpose": "login", "legal_basis": "contract"},
                              files=[("images", (p.name, p.read_bytes())) for p in photos]).status_code == 201

            def verify(ref: str, photo: str) -> httpx.Response:
                return c.post(f"/v1/subjects/{ref}/verify", files={"image": ("p.jpg", (test / photo).read_bytes())},
                              data={"purpose": "login"})

            biden = (shared_faces / "people" / "train" / "biden" / "biden.jpg").read_bytes()

            def identified(photo: str) -> list[str]:
                r = c.post("/v1/identify", files={"image": ("p.jpg", (test / photo).read_bytes())},
                           data={"purpose": "login"})
                assert r.status_code == 200, r.text
                return [cand["subject"] for f in r.json()["faces"] for cand in f["candidates"]]

            assert verify("obama", "obama1.jpg").json()["match"] is True
            for round_ in (1, 2):
                rot = lab.cli("keys", "rotate", "--retire-old")
                assert rot.returncode == 0, rot.stderr
                assert json.loads(rot.stdout)["versions"] == [round_ + 1]
                # The server's KEK file provider sees the new version and the retired one without a restart.
                r = verify("obama", "obama1.jpg")
                assert r.status_code == 200 and r.json()["match"] is True, r.text
                # An enrolment moves the gallery generation, so the next identification reloads the whole gallery
                # from the key store, under the new KEK: nobody is dropped. The new key is wrapped under the
                # current version, so the next retirement (round 2) leaves it readable.
                photos = sorted((shared_faces / "people" / "train" / "biden").iterdir())
                assert c.post("/v1/subjects", data={"subject": f"biden-{round_}", "purpose": "login",
                                                    "legal_basis": "contract"},
                              files=[("images", (p.name, p.read_bytes())) for p in photos]).status_code == 201
                assert identified("johnsnow_test1.jpg") == ["kit_harington"]
                assert identified("obama1.jpg") == ["obama"]
            r = c.post("/v1/subjects/biden-1/verify", files={"image": ("p.jpg", biden)}, data={"purpose": "login"})
            assert r.status_code == 200 and r.json()["match"] is True, r.text
            status = lab.cli("keys", "status")
            assert status.returncode == 0, status.stderr
            doc = json.loads(status.stdout)
            assert doc["versions"] == [3] and doc["orphan_keys"] == 0 and doc["pending_intents"] == 0
    finally:
        lab.stop()
    assert not any("key_file" in line or "Traceback" in line for line in lab.log), "".join(lab.log[-30:])
