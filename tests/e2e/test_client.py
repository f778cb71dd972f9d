"""The typed Python client against a real `facewarden serve` over TLS, and `facewarden add-photos`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from facewarden.client import ClientError, FaceWardenClient, Identification, PhotosAdded, Verification

FACEWARDEN = [sys.executable, "-m", "facewarden.cli"]


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(FACEWARDEN + args, env=env, capture_output=True, text=True, timeout=300)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, Path, dict[str, str]]]:
    """A fresh home, its admin key, and `serve` on a free port: (base URL, key, CA certificate, env)."""
    env = {**os.environ, "FACEWARDEN_HOME": str(tmp_path / "home"), "FACEWARDEN_WORKERS": "2",
           "FACEWARDEN_LIVENESS_REQUIRED_PURPOSES": "[]"}
    init = _run(["init"], env)
    assert init.returncode == 0, init.stderr
    key = init.stdout.strip().splitlines()[-1]
    port = _free_port()
    proc = subprocess.Popen([*FACEWARDEN, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    base, cert = f"https://127.0.0.1:{port}", tmp_path / "home" / "tls" / "cert.pem"
    try:
        with FaceWardenClient(base, ca_cert=cert, timeout=5) as probe:
            for _ in range(120):
                try:
                    probe.health()
                    break
                except ClientError:
                    time.sleep(0.5)
            else:
                pytest.fail("the server did not come up")
        yield base, key, cert, env
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_client_enrols_adds_photos_verifies_identifies_and_maps_errors(
        server: tuple[str, str, Path, dict[str, str]], shared_faces: Path) -> None:
    base, key, cert, env = server
    train, test = shared_faces / "people" / "train", shared_faces / "people" / "test"
    # TLS is checked by default: the self-signed certificate is refused unless it is given as `ca_cert`.
    with FaceWardenClient(base, key) as untrusting, pytest.raises(ClientError) as exc:
        untrusting.health()
    assert exc.value.status == 0 and exc.value.code == "transport"

    with FaceWardenClient(base, key, ca_cert=cert) as fw:
        assert fw.health().status == "ok"
        enrolled = fw.enrol("obama", [train / "obama" / "obama.jpg"], purpose="login", legal_basis="contract")
        assert enrolled.templates == 1 and enrolled.subject_credential.startswith("fws_")
        assert len(enrolled.photo_quality) == 1 and 0.5 <= enrolled.photo_quality[0] <= 1.0
        added = fw.add_photos("obama", [(train / "obama" / "obama2.jpg").read_bytes()])
        assert isinstance(added, PhotosAdded) and added.templates == 2

        result = fw.verify("obama", test / "obama1.jpg", purpose="login")
        assert isinstance(result, Verification) and result.match and isinstance(result.distance, float)
        assert result.threshold_source == "configured" and result.quality is not None  # no calibration yet
        found = fw.identify(test / "obama1.jpg", purpose="login")
        assert isinstance(found, Identification) and found.faces[0].candidates[0].subject == "obama"
        assert len(found.faces[0].box) == 4

        with pytest.raises(ClientError) as exc:
            fw.add_photos("obama", [train / "biden" / "biden.jpg"])
        assert (exc.value.status, exc.value.code) == (409, "different_person")
        with pytest.raises(ClientError) as exc:
            fw.verify("nobody", test / "obama1.jpg", purpose="login")
        assert (exc.value.status, exc.value.code) == (404, "not_found") and "nobody" in exc.value.message

        exported = fw.export("obama")
        assert len(exported.templates) == 2 and len(exported.templates[0].embedding) == 128
        assert [s.subject for s in fw.list_subjects()] == ["obama"]
        # The client checks an audit entry's inclusion itself, against the log's public key.
        fw.audit_sign_head()
        assert fw.audit_verify_inclusion(0, fw.audit_public_key())
        other_key = Ed25519PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        assert not fw.audit_verify_inclusion(0, other_key)

    # The CLI adds photos too, and refuses someone else's face with exit code 2 and one line.
    ok = _run(["add-photos", "obama", str(train / "obama" / "obama.jpg")], env)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["templates"] == 3
    bad = _run(["add-photos", "obama", str(train / "biden" / "biden2.jpg")], env)
    assert bad.returncode == 2 and bad.stderr.startswith("error (different_person)")

    with FaceWardenClient(base, key, ca_cert=cert) as fw:
        erased = fw.erase("obama")
        assert erased.erased and erased.data_key_destroyed and erased.templates_destroyed == 3
        with pytest.raises(ClientError) as exc:
            fw.add_photos("obama", [train / "obama" / "obama.jpg"])
        assert exc.value.code == "not_found"


def test_the_client_package_imports_nothing_of_the_server() -> None:
    code = ("import sys, facewarden.client; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette', 'sqlalchemy', 'dlib', "
            "'numpy', 'uvicorn') or m.startswith(('facewarden.service', 'facewarden.api', 'facewarden.store'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
