"""The CLI and the real HTTPS server, as an operator runs them."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from click.testing import Result
from typer.testing import CliRunner

from facewarden.cli.main import app as cli_app
from tests.conftest import PG_ADMIN_DSN

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

    enrol = _run(["enroll", "--folder", str(shared_faces / "people" / "train"), "--purpose", "login",
                  "--consent-method", "app checkbox v3"], cli_env)
    assert enrol.returncode == 0, enrol.stderr
    assert len(json.loads(enrol.stdout)["enrolled"]) == 5
    assert "embedding" in enrol.stderr and "photo" in enrol.stderr  # the progress bar

    test = shared_faces / "people" / "test"
    login = ["--purpose", "login"]  # no liveness in this home (cli_env)
    assert _run(["verify", "obama", str(test / "obama1.jpg"), *login], cli_env).returncode == 0
    assert _run(["verify", "biden", str(test / "obama1.jpg"), *login], cli_env).returncode == 1
    bad = _run(["verify", "obama", str(shared_faces / "README.md"), *login], cli_env)
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
    assert _run(["verify", "kit_harington", str(test / "johnsnow_test1.jpg"), *login], cli_env).returncode == 0

    assert _run(["erase", "obama", "--yes"], cli_env).returncode == 0
    gone = _run(["verify", "obama", str(test / "obama1.jpg"), *login], cli_env)
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


# -- a newcomer's mistakes (issue 10, items 16-18): one line on stderr, exit 2, never a traceback -----------------

def _cli(args: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Result:
    """The real CLI app in this process (no interpreter start-up per command), with the given FACEWARDEN_* env."""
    for k in [k for k in os.environ if k.startswith("FACEWARDEN_")]:
        monkeypatch.delenv(k)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return CliRunner().invoke(cli_app, args)


def _one_line_error(r: Result, code: str) -> str:
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception  # no traceback
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error ({code}): "), r.stderr
    return lines[0]


def test_cli_purposes_work_with_the_default_policy_and_say_what_was_searched(
        tmp_path: Path, shared_faces: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"FACEWARDEN_HOME": str(tmp_path / "home"), "FACEWARDEN_WORKERS": "1"}  # login and payment need liveness
    assert _cli(["init"], env, monkeypatch).exit_code == 0
    train, test = shared_faces / "people" / "train" / "obama", shared_faces / "people" / "test"
    photos = [str(p) for p in sorted(train.iterdir())]
    # No silent default: the old one (login) needs liveness, so such a subject could never be verified here.
    line = _one_line_error(_cli(["enroll", "obama", *photos], env, monkeypatch), "invalid_purpose")
    assert "device-unlock" in line and "login (needs liveness" in line
    refused = _cli(["enroll", "obama", *photos, "--purpose", "device-unlock"], env, monkeypatch)
    assert refused.exit_code == 2 and "consent_method" in refused.stderr  # consent needs how it was given
    assert _cli(["enroll", "obama", *photos, "--purpose", "device-unlock", "--consent-method", "signed form"], env,
                monkeypatch).exit_code == 0
    _one_line_error(_cli(["verify", "obama", str(test / "obama1.jpg")], env, monkeypatch), "invalid_purpose")
    biden = [str(p) for p in sorted((train.parent / "biden").iterdir())]
    assert _cli(["enroll", "biden", *biden, "--purpose", "login", "--consent-method", "app"], env,
                monkeypatch).exit_code == 0
    line = _one_line_error(_cli(["verify", "biden", str(test / "obama1.jpg"), "--purpose", "login"], env, monkeypatch),
                           "liveness_required")
    assert "CLI cannot run a liveness session" in line
    ok = _cli(["verify", "obama", str(test / "obama1.jpg"), "--purpose", "device-unlock"], env, monkeypatch)
    assert ok.exit_code == 0 and json.loads(ok.stdout)["match"] is True
    # identify without --purpose searches every purpose and says so; its candidates carry their purpose.
    found = _cli(["identify", str(test / "obama1.jpg")], env, monkeypatch)
    assert found.exit_code == 0, found.stderr
    out = json.loads(found.stdout)
    assert set(out["purposes_searched"]) == {"device-unlock", "login", "payment"}
    assert out["faces"][0]["candidates"][0] == {**out["faces"][0]["candidates"][0], "subject": "obama",
                                                "purpose": "device-unlock"}
    nobody = _cli(["identify", str(test / "alex_lacamoire1.jpg")], env, monkeypatch)
    assert nobody.exit_code == 0 and json.loads(nobody.stdout)["faces"][0]["candidates"] == []
    assert "no match" in nobody.stderr and "device-unlock" in nobody.stderr
    one = _cli(["identify", str(test / "alex_lacamoire1.jpg"), "--purpose", "payment"], env, monkeypatch)
    assert json.loads(one.stdout)["purposes_searched"] == ["payment"]


def test_every_cli_command_taking_a_path_reports_a_missing_one_in_one_line(
        tmp_path: Path, shared_faces: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"FACEWARDEN_HOME": str(tmp_path / "home"), "FACEWARDEN_WORKERS": "1"}
    assert _cli(["init"], env, monkeypatch).exit_code == 0
    photo = str(shared_faces / "people" / "test" / "obama1.jpg")
    missing, no_dir = str(tmp_path / "missing.jpg"), str(tmp_path / "no-such-dir" / "out.json")
    cases = [
        ["verify", "obama", missing, "--purpose", "device-unlock"],  # exit 2 (an error), not 1 (no match)
        ["identify", missing],
        ["enroll", "obama", photo, missing, "--purpose", "device-unlock"],  # checked before any face work
        ["enroll", "--folder", str(tmp_path / "no-such-folder"), "--purpose", "device-unlock"],
        ["audit", "verify", "--public-key", missing],
        ["audit", "verify-export", missing],
        ["report", "processing-record", "--out", no_dir],
        ["eval", "pairs", str(tmp_path / "no-such-folder"), "--json", str(tmp_path / "e.json")],
        ["witness", "serve", "--dir", str(tmp_path / "w"), "--log-key", missing],
    ]
    for args in cases:
        line = _one_line_error(_cli(args, env, monkeypatch), "file_unreadable")
        assert "no-such" in line or "missing.jpg" in line, (args, line)
    assert _cli(["enroll", "obama", photo, "--purpose", "device-unlock", "--consent-method", "app"], env,
                monkeypatch).exit_code == 0
    _one_line_error(_cli(["export", "obama", "--out", no_dir], env, monkeypatch), "file_unreadable")


def test_init_on_postgresql_names_a_missing_database_and_a_retry_prints_the_first_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"fw_readme_{uuid.uuid4().hex[:10]}"
    url = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + name
    env = {"FACEWARDEN_HOME": str(tmp_path / "home"), "FACEWARDEN_DATABASE_URL": url}
    line = _one_line_error(_cli(["init"], env, monkeypatch), "database_unavailable")
    assert f'database "{name}" does not exist' in line and f"createdb -h 127.0.0.1 -p 5432 -U postgres {name}" in line
    assert (tmp_path / "home" / "keys" / "kek.json").exists()  # the first try got that far
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        first = _cli(["init"], env, monkeypatch)
        assert first.exit_code == 0, first.stderr
        assert first.stdout.strip().splitlines()[-1].startswith("fw_")  # the key file existed; no admin did
        again = _cli(["init"], env, monkeypatch)
        assert again.exit_code == 0 and "fw_" not in again.stdout and "--new-admin-key" in again.stdout
        another = _cli(["init", "--new-admin-key"], env, monkeypatch)
        assert another.stdout.strip().splitlines()[-1].startswith("fw_")
        # An unreachable server, with a password in the URL: one line, the password masked.
        down = {**env, "FACEWARDEN_DATABASE_URL": "postgresql+psycopg://fw:s3cret@127.0.0.1:1/x"}
        line = _one_line_error(_cli(["keys", "status"], down, monkeypatch), "database_unavailable")
        assert "s3cret" not in line and "***" in line
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_cli_calibrate_stores_the_conservative_threshold_and_lists_it(cli_env: dict[str, str], shared_faces: Path,
                                                                    tmp_path: Path) -> None:
    """`facewarden calibrate` stores, by default, the strict end of each threshold's interval (the point estimate
    exceeded 1e-3 on held-out LFW people); `facewarden calibrations` shows what verification is decided at."""
    folder = tmp_path / "labelled"
    for person in [d for d in sorted((shared_faces / "lfw").iterdir()) if len(list(d.iterdir())) >= 3][:20]:
        (folder / person.name).mkdir(parents=True)
        for photo in sorted(person.iterdir())[:3]:
            (folder / person.name / photo.name).symlink_to(photo)
    assert _run(["init"], cli_env).returncode == 0
    cal = _run(["calibrate", str(folder), "--draws", "30"], cli_env)
    assert cal.returncode == 0, cal.stderr
    report = json.loads(cal.stdout)
    assert report["rule"] == "lower end of the threshold's 95 % interval" and report["stored"]
    listed = _run(["calibrations"], cli_env)
    assert listed.returncode == 0, listed.stderr
    rows = {c["target_fmr"]: c for c in json.loads(listed.stdout)["calibrations"]}
    assert set(rows) == {1e-3, 1e-4, 1e-5} and all(c["run_id"] == report["stored"] for c in rows.values())
    assert rows[1e-3]["threshold"] == pytest.approx(rows[1e-3]["threshold_ci"][0])  # the strict end
    point = _run(["calibrate", str(folder), "--draws", "30", "--point-estimate", "--dry-run"], cli_env)
    assert point.returncode == 0 and json.loads(point.stdout)["rule"] == "point estimate"
    assert json.loads(point.stdout)["operating_points"][0]["threshold"] >= rows[1e-3]["threshold"]
