"""Kill -9 a real `facewarden serve` while it enrols, erases and rotates keys, restart it, and check what it left.

Shared by tests/e2e/test_crash_consistency.py (a few kills, in CI) and bench/bench_crash.py (the long run). The
server runs as an operator runs it: a subprocess over HTTPS with its own FACEWARDEN_HOME, SQLite or PostgreSQL
as the main database, the data-key store and the KEK file in the home. Kills are SIGKILL, either from outside
after a random delay or by the server itself at a named crash point (facewarden/faults.py, test-only).
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

FACEWARDEN = [sys.executable, "-m", "facewarden.cli"]
PEOPLE = {"obama": "obama1.jpg", "kit_harington": "johnsnow_test1.jpg", "alex_lacamoire": "alex_lacamoire1.jpg"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Findings:
    """What one check found; every list should be empty and `audit_verify_rc` 0."""

    acked_enrol_missing: list[str] = field(default_factory=list)  # acknowledged, not erased, but gone or unusable
    acked_erase_left: list[str] = field(default_factory=list)  # acknowledged erasure: record, key or no entry
    half_done: list[str] = field(default_factory=list)  # a subject listed without its key (or undecryptable)
    orphans: list[str] = field(default_factory=list)  # a data key no subject uses
    pending_intents: int = 0
    audit_verify_rc: int | None = None

    def problems(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in (("acked_enrol_missing", self.acked_enrol_missing),
                                                ("acked_erase_left", self.acked_erase_left),
                                                ("half_done", self.half_done), ("orphans", self.orphans)) if v}
        if self.pending_intents:
            out["pending_intents"] = self.pending_intents
        if self.audit_verify_rc not in (None, 0):
            out["audit_verify_rc"] = self.audit_verify_rc
        return out


class CrashLab:
    """One deployment under test, and the book of what it acknowledged."""

    def __init__(self, home: Path, faces: Path, database_url: str | None = None, *, seed: int = 0) -> None:
        self.home, self.faces, self.database_url = home, faces, database_url
        self.rng = random.Random(seed)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FACEWARDEN_")}
        self.env.update({"FACEWARDEN_HOME": str(home), "FACEWARDEN_WORKERS": "1",
                         "FACEWARDEN_LIVENESS_REQUIRED_PURPOSES": "[]",
                         "FACEWARDEN_RATE_LIMIT_PER_MINUTE": "100000",
                         "FACEWARDEN_BULK_ERASE_DUAL_CONTROL_THRESHOLD": "100000",
                         "FACEWARDEN_PERSON_VERIFY_LIMIT_PER_HOUR": "100000"})
        if database_url:
            self.env["FACEWARDEN_DATABASE_URL"] = database_url
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.log: list[str] = []
        self.admin = self.admin2 = ""
        self.acked_enrols: dict[str, str] = {}  # reference -> subject id, acknowledged (201)
        self.acked_erases: dict[str, str] = {}  # reference -> subject id, acknowledged (200)
        self.seen_ids: dict[str, str] = {}  # every subject id an answer showed
        self.unacked: list[str] = []  # operations cut off by a kill: their outcome is unknown
        self.erasing: set[str] = set()  # references whose erasure was sent, acknowledged or not
        self.erased_unacked: set[str] = set()  # cut-off erasures that turned out committed
        self.rotations = 0
        self.kills = 0
        self.self_kills = 0
        self.cut_off = False
        self.counter = 0
        self.gallery_undecryptable = 0
        self._main: Engine | None = None
        self._vault: Engine | None = None

    # -- the deployment -----------------------------------------------------------------------------
    def cli(self, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*FACEWARDEN, *args], env={**self.env, **(extra_env or {})}, capture_output=True,
                              text=True, timeout=300)

    def init(self) -> None:
        r = self.cli("init")
        assert r.returncode == 0, r.stderr
        self.admin = r.stdout.strip().splitlines()[-1]
        person = self.cli("person", "create", "second administrator", "--role", "admin", "--role", "operator")
        assert person.returncode == 0, person.stderr
        pid = _json(person.stdout)["person_id"]
        key = self.cli("apikey", "create", "admin2", "--role", "admin", "--role", "operator", "--person-id", pid)
        assert key.returncode == 0, key.stderr
        self.admin2 = _json(key.stdout)["api_key"]

    def start(self, faults: str = "") -> None:
        self.port = _free_port()
        env = {**self.env, **({"FACEWARDEN_TEST_FAULTS": faults} if faults else {})}
        self.proc = subprocess.Popen([*FACEWARDEN, "serve", "--port", str(self.port)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(self.proc.stdout or []), daemon=True).start()  # type: ignore[union-attr]
        self.log = lines
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("the server exited at start-up:\n" + "".join(lines[-40:]))
            try:
                if httpx.get(f"{self.base}/v1/health", verify=False, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError("the server did not come up:\n" + "".join(lines[-40:]))
        for line in lines:
            if m := re.search(r"\((\d+) subjects? could not be decrypted", line):
                self.gallery_undecryptable += int(m.group(1))

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc:
            self.proc.wait(timeout=30)
            self.kills += self.proc.returncode == -signal.SIGKILL
        self.proc = None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)
        self.proc = None
        for engine in (self._main, self._vault):
            if engine is not None:
                engine.dispose()

    @contextmanager
    def client(self, key: str | None = None) -> Iterator[httpx.Client]:
        with httpx.Client(base_url=self.base, verify=False, timeout=60,  # its own self-signed certificate
                          headers={"Authorization": f"Bearer {key or self.admin}"}) as c:
            yield c

    # -- the operations ------------------------------------------------------------------------------
    def enrol(self, c: httpx.Client) -> None:
        person = self.rng.choice(sorted(PEOPLE))
        self.counter += 1
        ref = f"{person}-{self.counter}"
        photos = sorted((self.faces / "people" / "train" / person).iterdir())
        self.unacked.append(f"enrol {ref}")
        r = c.post("/v1/subjects", data={"subject": ref, "purpose": "login", "legal_basis": "contract"},
                   files=[("images", (p.name, p.read_bytes())) for p in photos])
        assert r.status_code == 201, r.text
        self.unacked.pop()
        self.acked_enrols[ref] = self.seen_ids[ref] = r.json()["subject_id"]

    def erase(self, c: httpx.Client) -> None:
        live = sorted(set(self.acked_enrols) - set(self.acked_erases) - self.erased_unacked)
        if not live:
            return self.enrol(c)
        ref = self.rng.choice(live)
        self.erasing.add(ref)
        self.unacked.append(f"erase {ref}")
        r = c.delete(f"/v1/subjects/{ref}")
        if r.status_code == 404:  # an earlier, cut-off erasure of it committed after all
            self.unacked.pop()
            self.erased_unacked.add(ref)
            return None
        assert r.status_code == 200, r.text
        self.unacked.pop()
        self.acked_erases[ref] = self.acked_enrols[ref]
        return None

    def rotate(self, c: httpx.Client) -> None:
        self.unacked.append("rotate")
        r = c.post("/v1/keys/rotate", json={"retire_old": True})
        assert r.status_code == 202, r.text
        with self.client(self.admin2) as c2:
            a = c2.post(f"/v1/approvals/{r.json()['pending_action']}/approve")
        assert a.status_code == 200, a.text
        self.unacked.pop()
        self.rotations += 1

    def drive(self, plan: list[str]) -> None:
        """Run the operations in order until one is cut off (the server died) or the plan ends."""
        self.cut_off = False
        with self.client() as c:
            for op in plan:
                try:
                    getattr(self, op)(c)
                except (httpx.TransportError, httpx.RemoteProtocolError):
                    self.cut_off = True
                    return

    def drive_and_kill(self, plan: list[str], *, delay_s: float | None = None) -> None:
        """Run `plan` against the running server and kill it after `delay_s`, or let it kill itself at the crash
        point it was started with (if the plan ends first, the kill lands between requests)."""
        worker = threading.Thread(target=self.drive, args=(plan,), daemon=True)
        worker.start()
        worker.join(delay_s)
        if delay_s is None and self.cut_off and self.proc is not None:
            with suppress(subprocess.TimeoutExpired):  # the socket closes a moment before the process is reaped
                self.proc.wait(timeout=10)
            self.self_kills += self.proc.returncode == -signal.SIGKILL  # it killed itself at its crash point
        self.kill()
        worker.join(60)

    def run_cycles(self, cycles: list[tuple[str, float | None, list[str]]], *, audit_every: bool = False,
                   on_cycle: Any = None) -> list[Findings]:
        """One kill per cycle. The restart after each kill is armed with the next cycle's crash point and is
        checked first (the check sends no request that reaches a crash point)."""
        results = []
        self.start(cycles[0][0] if cycles else "")
        for i, (_faults, delay, plan) in enumerate(cycles):
            self.drive_and_kill(plan, delay_s=delay)
            self.start(cycles[i + 1][0] if i + 1 < len(cycles) else "")
            results.append(self.check(audit_verify=audit_every))
            if on_cycle:
                on_cycle(i, results[-1])
        return results

    # -- the checks ----------------------------------------------------------------------------------
    def _engines(self) -> tuple[Engine, Engine]:
        if self._main is None:
            self._main = create_engine(self.database_url or f"sqlite:///{self.home / 'facewarden.db'}")
            self._vault = create_engine(f"sqlite:///{self.home / 'keys' / 'vault.db'}")
        assert self._vault is not None
        return self._main, self._vault

    def check(self, *, verify_all: bool = False, audit_verify: bool = False) -> Findings:
        """With the restarted server running (its start-up recovery done)."""
        found = Findings()
        main, vault = self._engines()
        with main.connect() as conn:
            subjects = {sid: tid for sid, tid in conn.execute(text("SELECT id, tenant_id FROM subjects"))}
            erase_entries = {r[0] for r in conn.execute(text(
                "SELECT subject_id FROM audit_entries WHERE operation = 'erase' AND outcome = 'erased'"))}
        with vault.connect() as conn:
            keys = {r[0] for r in conn.execute(text("SELECT key_id FROM data_keys"))}
            found.pending_intents = conn.execute(text("SELECT count(*) FROM key_intents")).scalar_one()
        subject_keys = {f"{tid}/{sid}" for sid, tid in subjects.items()}
        found.half_done = sorted(subject_keys - keys)
        found.orphans = sorted(keys - subject_keys)
        for ref, sid in self.acked_erases.items():
            if sid in subjects or f"default/{sid}" in keys or sid not in erase_entries:
                found.acked_erase_left.append(ref)
        for ref, sid in self.seen_ids.items():  # whatever vanished was erased, with its entry, and its key is gone
            if sid not in subjects and ref not in self.acked_erases and (
                    sid not in erase_entries or f"default/{sid}" in keys):
                found.acked_erase_left.append(ref)
        # A cut-off erasure either committed (then it was checked as an erasure above) or left the subject whole.
        self.erased_unacked |= {ref for ref in self.erasing - set(self.acked_erases)
                                if self.acked_enrols[ref] not in subjects}
        live = sorted(set(self.acked_enrols) - set(self.acked_erases) - self.erased_unacked)
        sample = live if verify_all else self.rng.sample(live, min(1, len(live)))
        with self.client() as c:
            for ref in live:
                if self.acked_enrols[ref] not in subjects:
                    found.acked_enrol_missing.append(ref)
            for ref in sample:
                probe = self.faces / "people" / "test" / PEOPLE[ref.rsplit("-", 1)[0]]
                r = c.post(f"/v1/subjects/{ref}/verify", files={"image": ("p.jpg", probe.read_bytes())},
                           data={"purpose": "login"})
                if r.status_code != 200 or r.json()["match"] is not True:
                    found.acked_enrol_missing.append(f"{ref}: {r.status_code} {r.text[:120]}")
        if self.gallery_undecryptable:
            found.half_done.append(f"{self.gallery_undecryptable} subjects undecryptable at gallery load")
        if audit_verify:
            found.audit_verify_rc = self.cli("audit", "verify").returncode
        return found


def _json(out: str) -> dict[str, Any]:
    import json

    return dict(json.loads(out))
