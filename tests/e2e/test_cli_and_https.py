"""The CLI and the real HTTPS server, as an operator runs them."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

FACEWARDEN = [sys.executable, "-m", "facewarden.cli"]


def _run(args: list[str], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(FACEWARDEN + args, env=env, capture_output=True, text=True, input=stdin, timeout=300)


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    # Photos only here: the purposes need no liveness session (the liveness tests send clips).
    return {**os.environ, "FACEWARDEN_HOME": str(tmp_path / "home"), "FACEWARDEN_WORKERS": "2",
            "FACEWARDEN_LIVENESS_REQUIRED_PURPOSES": "[]"}


def test_cli_enrol_folder_verify_identify_erase_export_rotate(cli_env: dict[str, str], shared_faces: Path,
                                                              tmp_path: Path) -> None:
    init = _run(["init"], cli_env)
    assert init.returncode == 0, init.stderr
    assert init.stdout.strip().splitlines()[-1].startswith("fw_")
    home = Path(cli_env["FACEWARDEN_HOME"])
    assert oct(home.stat().st_mode & 0o777) == "0o700"
    assert oct((home / "keys" / "kek.json").stat().st_mode & 0o777) == "0o600"

    enrol = _run(["enroll", "--folder", str(shared_faces / "people" / "train"), "--consent-method", "app checkbox v3"],
                 cli_env)
    assert enrol.returncode == 0, enrol.stderr
    assert len(json.loads(enrol.stdout)["enrolled"]) == 5
    assert "embedding" in enrol.stderr and "photo" in enrol.stderr  # the progress bar

    test = shared_faces / "people" / "test"
    assert _run(["verify", "obama", str(test / "obama1.jpg")], cli_env).returncode == 0
    assert _run(["verify", "biden", str(test / "obama1.jpg")], cli_env).returncode == 1
    bad = _run(["verify", "obama", str(shared_faces / "README.md")], cli_env)
    assert bad.returncode == 2 and "unsupported_image" in bad.stderr

    ident = _run(["identify", "--all-faces", str(test / "kit_with_rose.jpg")], cli_env)
    assert ident.returncode == 0
    names = {f["candidates"][0]["subject"] for f in json.loads(ident.stdout)["faces"]}
    assert names == {"kit_harington", "rose_leslie"}

    out = tmp_path / "obama.json"
    assert _run(["export", "obama", "--out", str(out)], cli_env).returncode == 0
    assert json.loads(out.read_text())["subject"] == "obama" and oct(out.stat().st_mode & 0o777) == "0o600"

    rot = _run(["keys", "rotate", "--retire-old"], cli_env)
    assert rot.returncode == 0, rot.stderr
    assert json.loads(rot.stdout)["versions"] == [2]
    assert _run(["verify", "kit_harington", str(test / "johnsnow_test1.jpg")], cli_env).returncode == 0

    assert _run(["erase", "obama", "--yes"], cli_env).returncode == 0
    gone = _run(["verify", "obama", str(test / "obama1.jpg")], cli_env)
    assert gone.returncode == 2 and "not_found" in gone.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_speaks_https_only_with_its_generated_certificate(cli_env: dict[str, str], shared_faces: Path) -> None:
    key = _run(["init"], cli_env).stdout.strip().splitlines()[-1]
    port = _free_port()
    proc = subprocess.Popen([*FACEWARDEN, "serve", "--port", str(port)], env=cli_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cert = Path(cli_env["FACEWARDEN_HOME"]) / "tls" / "cert.pem"
    ctx = ssl.create_default_context(cafile=str(cert))
    try:
        base = f"https://127.0.0.1:{port}"
        for _ in range(120):
            try:
                if httpx.get(f"{base}/v1/health", verify=ctx).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("the server did not come up")
        with httpx.Client(base_url=base, verify=ctx, headers={"Authorization": f"Bearer {key}"}) as c:
            train = shared_faces / "people" / "train" / "obama"
            photos = [("images", (p.name, p.read_bytes())) for p in train.iterdir()]
            r = c.post("/v1/subjects", data={"subject": "obama", "purpose": "login", "legal_basis": "contract"},
                       files=photos)
            assert r.status_code == 201, r.text
            probe = (shared_faces / "people" / "test" / "obama1.jpg").read_bytes()
            assert c.post("/v1/subjects/obama/verify", files={"image": ("p.jpg", probe)},
                          data={"purpose": "login"}).json()["match"] is True
            assert c.get("/docs").status_code == 200
        # Plain HTTP is not served on the port.
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=5)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    # Nothing about the face leaves in the logs: no embedding-like float runs, no image bytes.
    assert "embedding" not in out.lower() and "\\xff\\xd8" not in out
    # On shutdown the server signed a head covering the requests and handed it to the witness file.
    witness = Path(cli_env["FACEWARDEN_HOME"]) / "witness" / "tree-heads.jsonl"
    assert json.loads(witness.read_text().splitlines()[-1])["tree_size"] >= 3  # api key, enrol, verify
    assert _run(["audit", "verify"], cli_env).returncode == 0
