"""A real full disk (issue 10): the server's home on an 8 MiB tmpfs, filled to the last byte while it runs.
Writes, and reads that must be audited, are refused with a JSON 503 `storage_full` on a connection that stays
usable; health and the log's public key (no write) are still served; once space is freed everything works again
and the audit log verifies. Needs root to mount (as in CI); fails, never skips, without it."""

from __future__ import annotations

import errno
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import FACEWARDEN, Server


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the full-disk test (it needs root, as in CI): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(path: Path) -> None:
    """Write until not one more byte fits (unbuffered, in shrinking chunks)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 65536, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)


def test_a_full_disk_answers_json_503_and_the_server_recovers(small_disk: Path, shared_faces: Path) -> None:
    server = Server(small_disk / "home")
    people = shared_faces / "people"
    probe = ("p.jpg", (people / "test" / "obama1.jpg").read_bytes())
    enrol_biden = {"data": {"subject": "biden", "purpose": "login", "legal_basis": "contract"},
                   "files": [("images", (p.name, p.read_bytes())) for p in sorted((people / "train" / "biden").iterdir())]}
    requests = {
        "enrol": lambda c: c.post("/v1/subjects", **enrol_biden),
        "verify": lambda c: c.post("/v1/subjects/obama/verify", files={"image": probe}, data={"purpose": "login"}),
        "identify": lambda c: c.post("/v1/identify", files={"image": probe}, data={"purpose": "login"}),
        "list": lambda c: c.get("/v1/subjects"),
        "export": lambda c: c.get("/v1/subjects/obama/export"),
    }
    try:
        with server.client() as c:
            photos = [("images", (p.name, p.read_bytes())) for p in sorted((people / "train" / "obama").iterdir())]
            r = c.post("/v1/subjects", data={"subject": "obama", "purpose": "login", "legal_basis": "contract"},
                       files=photos)
            assert r.status_code == 201, r.text
            filler = small_disk / "filler"
            _fill(filler)
            for name, send in requests.items():
                r = send(c)  # one client throughout: a dropped connection would raise here
                assert r.status_code == 503, (name, r.status_code, r.text)
                assert r.headers["content-type"] == "application/json" and r.headers["retry-after"]
                error = r.json()["error"]
                assert error["code"] == "storage_full" and "disk is full" in error["message"], name
                assert "Traceback" not in r.text and "sqlite" not in r.text.lower()
            assert c.get("/v1/health").status_code == 200  # needs no write: served
            assert c.get("/v1/audit/public-key").status_code == 200
            filler.unlink()
            r = requests["verify"](c)
            assert r.status_code == 200 and r.json()["match"] is True, r.text
            assert requests["enrol"](c).status_code == 201
            assert {s["subject"] for s in requests["list"](c).json()} == {"obama", "biden"}
    except httpx.HTTPError as exc:
        pytest.fail(f"the connection failed: {exc!r}\n" + "\n".join(server.lines[-30:]))
    finally:
        log = server.stop()
    assert log.count("disk full during") == len(requests) and "Exception in ASGI application" not in log
    verify = subprocess.run([*FACEWARDEN, "audit", "verify"], env=server.env, capture_output=True, text=True,
                            timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
