"""Pkcs11KeyProvider against a real SoftHSM2 token in a private token directory (no mocks)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11 import exceptions as p11

from facewarden.crypto.datakeys import DataKeyStore, make_datakey_engine
from facewarden.crypto.kek import WrappedKey
from facewarden.crypto.pkcs11 import HsmError, Pkcs11KeyProvider
from facewarden.errors import ErrorKind, FaceWardenError, IntegrityFailure, KeyUnavailable

pytestmark = pytest.mark.hsm

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN = "facewarden-test"
PIN = "1234"
SO_PIN = "5678"
PIN_TOKEN = "facewarden-pin"  # touched only by the wrong-PIN test, so nothing else is logged in there
AAD = b"facewarden-data-key-v1|subject-1"


@dataclass(frozen=True)
class Hsm:
    module: str
    conf: Path


@pytest.fixture(scope="module")
def hsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hsm]:
    if not os.path.exists(MODULE):
        pytest.fail(f"SoftHSM2 is not installed ({MODULE} is missing): run `make system-deps`.")
    util = shutil.which("softhsm2-util")
    if util is None:
        pytest.fail("softhsm2-util is not on PATH: run `make system-deps`.")
    root = tmp_path_factory.mktemp("softhsm")
    tokens = root / "tokens"
    tokens.mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    saved = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    pkcs11.unload(MODULE)  # SoftHSM2 reads SOFTHSM2_CONF when it is initialised
    try:
        for label in (TOKEN, PIN_TOKEN):
            subprocess.run([util, "--init-token", "--free", "--label", label, "--pin", PIN,
                            "--so-pin", SO_PIN], check=True, capture_output=True, text=True)
        yield Hsm(MODULE, conf)
    finally:
        pkcs11.unload(MODULE)
        if saved is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = saved


@pytest.fixture
def prefix() -> str:
    # Each test gets its own KEK labels on the shared token.
    return f"fw-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def provider(hsm: Hsm, prefix: str) -> Iterator[Pkcs11KeyProvider]:
    with Pkcs11KeyProvider(hsm.module, TOKEN, PIN, key_label_prefix=prefix, create=True) as p:
        yield p


@contextmanager
def _token_keys(module: str, label: str) -> Iterator[list[pkcs11.SecretKey]]:
    # A session without login: it shares the login the provider's session holds in this process.
    with pkcs11.lib(module).get_token(token_label=TOKEN).open() as session:
        yield list(session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: label}))


def test_create_generates_v1_in_token(provider: Pkcs11KeyProvider) -> None:
    assert provider.name == "pkcs11"
    assert provider.versions() == [1]
    assert provider.current_version() == 1


def test_without_create_a_missing_kek_is_a_clear_error(hsm: Hsm) -> None:
    with pytest.raises(HsmError, match=r"holds no key-encryption key.*facewarden init"):
        Pkcs11KeyProvider(hsm.module, TOKEN, PIN, key_label_prefix="fw-absent")


def test_wrap_unwrap_round_trip(provider: Pkcs11KeyProvider) -> None:
    dek = os.urandom(32)
    wrapped = provider.wrap(dek, AAD)
    assert wrapped.kek_version == 1
    assert len(wrapped.blob) == 12 + 32 + 16  # nonce + ciphertext + GCM tag
    assert dek not in wrapped.blob
    assert provider.unwrap(wrapped, AAD) == dek
    again = provider.wrap(dek, AAD)
    assert again.blob[:12] != wrapped.blob[:12]  # fresh nonce each time
    assert provider.unwrap(again, AAD) == dek


def test_wrong_aad_is_refused(provider: Pkcs11KeyProvider) -> None:
    wrapped = provider.wrap(os.urandom(32), AAD)
    with pytest.raises(IntegrityFailure):
        provider.unwrap(wrapped, b"facewarden-data-key-v1|subject-2")


@pytest.mark.parametrize("index", [0, 11, 12, 43, 44, 59], ids=lambda i: f"byte{i}")
def test_altered_blob_is_refused(provider: Pkcs11KeyProvider, index: int) -> None:
    wrapped = provider.wrap(os.urandom(32), AAD)
    blob = bytearray(wrapped.blob)
    blob[index] ^= 0x01
    with pytest.raises(IntegrityFailure):
        provider.unwrap(WrappedKey(wrapped.kek_version, bytes(blob)), AAD)


@pytest.mark.parametrize("length", [0, 12, 27, 40])
def test_truncated_blob_is_refused(provider: Pkcs11KeyProvider, length: int) -> None:
    wrapped = provider.wrap(os.urandom(32), AAD)
    with pytest.raises(IntegrityFailure):
        provider.unwrap(WrappedKey(wrapped.kek_version, wrapped.blob[:length]), AAD)


def test_session_still_usable_after_integrity_failure(provider: Pkcs11KeyProvider) -> None:
    dek = os.urandom(32)
    wrapped = provider.wrap(dek, AAD)
    with pytest.raises(IntegrityFailure):
        provider.unwrap(wrapped, b"other")
    assert provider.unwrap(wrapped, AAD) == dek


def test_rotate_new_wraps_use_new_version_and_old_still_unwrap(provider: Pkcs11KeyProvider) -> None:
    old_dek = os.urandom(32)
    old = provider.wrap(old_dek, AAD)
    assert provider.rotate() == 2
    assert provider.current_version() == 2
    assert provider.versions() == [1, 2]
    new_dek = os.urandom(32)
    new = provider.wrap(new_dek, AAD)
    assert new.kek_version == 2
    assert provider.unwrap(old, AAD) == old_dek
    assert provider.unwrap(new, AAD) == new_dek
    assert provider.rotate() == 3
    assert provider.versions() == [1, 2, 3]


def test_wrapped_under_one_version_does_not_open_under_another(provider: Pkcs11KeyProvider) -> None:
    wrapped = provider.wrap(os.urandom(32), AAD)
    provider.rotate()
    with pytest.raises(IntegrityFailure):
        provider.unwrap(WrappedKey(2, wrapped.blob), AAD)


def test_retired_version_cannot_unwrap(provider: Pkcs11KeyProvider, hsm: Hsm, prefix: str) -> None:
    old = provider.wrap(os.urandom(32), AAD)
    provider.rotate()
    provider.retire(1)
    assert provider.versions() == [2]
    with _token_keys(hsm.module, f"{prefix}-v1") as keys:
        assert keys == []  # destroyed in the token
    with pytest.raises(HsmError, match=r"version 1 .*retired") as err:
        provider.unwrap(old, AAD)
    assert isinstance(err.value, FaceWardenError)
    assert err.value.code == "hsm"
    assert err.value.kind == ErrorKind.INTERNAL  # an HTTP 500 at the API
    provider.retire(1)  # retiring an absent version is a no-op, as with the key file


def test_unknown_version_is_a_clear_error(provider: Pkcs11KeyProvider) -> None:
    wrapped = provider.wrap(os.urandom(32), AAD)
    with pytest.raises(HsmError, match="version 7"):
        provider.unwrap(WrappedKey(7, wrapped.blob), AAD)


def test_retiring_current_version_is_refused(provider: Pkcs11KeyProvider) -> None:
    with pytest.raises(HsmError, match="current key-encryption key cannot be retired"):
        provider.retire(1)
    provider.rotate()
    with pytest.raises(HsmError):
        provider.retire(2)
    assert provider.versions() == [1, 2]


def test_kek_objects_are_generated_in_token_and_not_extractable(
        provider: Pkcs11KeyProvider, hsm: Hsm, prefix: str) -> None:
    provider.rotate()
    for version in (1, 2):
        with _token_keys(hsm.module, f"{prefix}-v{version}") as keys:
            assert len(keys) == 1
            _assert_protected(keys[0])


def _assert_protected(key: pkcs11.SecretKey) -> None:
    assert key[Attribute.KEY_TYPE] == KeyType.AES
    assert key[Attribute.VALUE_LEN] == 32
    assert key[Attribute.TOKEN] is True
    assert key[Attribute.PRIVATE] is True
    assert key[Attribute.SENSITIVE] is True
    assert key[Attribute.EXTRACTABLE] is False
    assert key[Attribute.ALWAYS_SENSITIVE] is True  # never left the token in the clear
    assert key[Attribute.NEVER_EXTRACTABLE] is True
    assert key[Attribute.ENCRYPT] is True
    assert key[Attribute.DECRYPT] is True
    assert key[Attribute.WRAP] is False
    assert key[Attribute.UNWRAP] is False
    with pytest.raises(p11.AttributeSensitive):
        key[Attribute.VALUE]


def test_kek_invisible_without_login(provider: Pkcs11KeyProvider, hsm: Hsm) -> None:
    # In a fresh process with no login, the private KEK objects cannot even be found.
    code = (
        "import pkcs11, sys\n"
        "from pkcs11 import Attribute, ObjectClass\n"
        "s = pkcs11.lib(sys.argv[1]).get_token(token_label=sys.argv[2]).open()\n"
        "print(len(list(s.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY}))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, hsm.module, TOKEN], check=True,
                         capture_output=True, text=True)
    assert out.stdout.strip() == "0"


def test_second_instance_sees_same_versions(hsm: Hsm, prefix: str) -> None:
    first = Pkcs11KeyProvider(hsm.module, TOKEN, PIN, key_label_prefix=prefix, create=True)
    first.rotate()
    dek = os.urandom(32)
    wrapped = first.wrap(dek, AAD)
    second = Pkcs11KeyProvider(hsm.module, TOKEN, PIN, key_label_prefix=prefix)
    assert second.versions() == [1, 2]
    assert second.unwrap(wrapped, AAD) == dek
    first.close()  # the other instance keeps working
    assert second.unwrap(wrapped, AAD) == dek
    second.close()
    with pytest.raises(HsmError, match="closed"):
        second.wrap(dek, AAD)
    # Everything closed: the next instance opens and logs in to a new session.
    with Pkcs11KeyProvider(hsm.module, TOKEN, PIN, key_label_prefix=prefix) as third:
        assert third.versions() == [1, 2]
        assert third.current_version() == 2
        assert third.unwrap(wrapped, AAD) == dek


RESTART = """
import sys
from facewarden.crypto.kek import WrappedKey
from facewarden.crypto.pkcs11 import Pkcs11KeyProvider
module, token, pin, prefix, version, blob, aad = sys.argv[1:]
with Pkcs11KeyProvider(module, token, pin, key_label_prefix=prefix) as p:
    print(",".join(map(str, p.versions())))
    print(p.unwrap(WrappedKey(int(version), bytes.fromhex(blob)), aad.encode()).hex())
    print(p.rotate())
"""


def test_restarted_process_unwraps_and_its_rotation_is_seen(provider: Pkcs11KeyProvider, hsm: Hsm,
                                                            prefix: str) -> None:
    dek = os.urandom(32)
    wrapped = provider.wrap(dek, AAD)
    out = subprocess.run(
        [sys.executable, "-c", RESTART, hsm.module, TOKEN, PIN, prefix, str(wrapped.kek_version),
         wrapped.blob.hex(), AAD.decode()], check=True, capture_output=True, text=True)
    assert out.stdout.split() == ["1", dek.hex(), "2"]
    # A rotation by another process (e.g. the CLI) is picked up by the running provider.
    assert provider.versions() == [1, 2]
    assert provider.wrap(dek, AAD).kek_version == 2


def test_usable_from_many_threads(provider: Pkcs11KeyProvider, hsm: Hsm, prefix: str) -> None:
    other = Pkcs11KeyProvider(hsm.module, TOKEN, PIN, key_label_prefix=prefix)  # shares the session
    errors: list[BaseException] = []
    start = threading.Barrier(9)

    def worker(p: Pkcs11KeyProvider) -> None:
        try:
            start.wait()
            for i in range(60):
                dek = os.urandom(32)
                aad = f"subject-{threading.get_ident()}-{i}".encode()
                w = p.wrap(dek, aad)
                assert p.unwrap(w, aad) == dek
        except BaseException as exc:
            errors.append(exc)

    def rotator() -> None:
        try:
            start.wait()
            for _ in range(3):
                provider.rotate()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(provider if n % 2 else other,)) for n in range(8)]
    threads.append(threading.Thread(target=rotator))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    assert errors == []
    assert provider.versions() == [1, 2, 3, 4]


# python-pkcs11 reports the dead session's search handle from a __del__; that noise is expected here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_recovers_when_the_session_is_lost(provider: Pkcs11KeyProvider) -> None:
    dek = os.urandom(32)
    wrapped = provider.wrap(dek, AAD)
    assert provider._shared is not None and provider._shared.session is not None
    provider._shared.session.close()  # as if the HSM dropped the session (logs out too)
    assert provider.unwrap(wrapped, AAD) == dek


def test_datakey_store_over_sqlite(provider: Pkcs11KeyProvider, tmp_path: Path) -> None:
    store = DataKeyStore(make_datakey_engine(f"sqlite:///{tmp_path / 'vault' / 'keys.db'}"), provider)
    deks = {f"subject-{n}": store.create(f"subject-{n}") for n in range(5)}
    for key_id, dek in deks.items():
        assert store.get(key_id) == dek
    assert store.versions_in_use() == {1: 5}

    assert provider.rotate() == 2
    assert store.rewrap_all() == 5
    for key_id, dek in deks.items():
        assert store.get(key_id) == dek
    assert store.versions_in_use() == {2: 5}

    provider.retire(1)
    assert provider.versions() == [2]
    for key_id, dek in deks.items():
        assert store.get(key_id) == dek

    assert store.destroy("subject-0") is True
    with pytest.raises(KeyUnavailable):
        store.get("subject-0")
    assert store.get("subject-1") == deks["subject-1"]


def test_key_ring_opened_by_uri_with_the_pin_from_the_settings(hsm: Hsm, prefix: str, tmp_path: Path) -> None:
    from facewarden.config import Settings
    from facewarden.crypto.keyring import make_keyring

    settings = Settings(home=tmp_path / "home", pkcs11_pin=PIN,
                        kek_uri=f"pkcs11:token={TOKEN};module-path={hsm.module};key-prefix={prefix}")
    ring = make_keyring(settings, create=True)
    try:
        assert isinstance(ring.kek, Pkcs11KeyProvider) and ring.kek.key_label_prefix == prefix
        assert ring.kek.token_label == TOKEN and ring.kek.module_path == hsm.module
        blob = ring.seal_probe("r1", "police", "city", b"probe photo")
        assert ring.rotate() == 2 and ring.rewrap_all() == 1 and ring.retire_unused() == [1]
        assert ring.open_probe("r1", "police", "city", blob) == b"probe photo"
        assert ring.status() == {"provider": "pkcs11", "current_version": 2, "versions": [2],
                                 "data_keys_per_version": {2: 1}, "pending_intents": 1}
    finally:
        ring.close()


def test_wrong_pin_is_a_clear_error(hsm: Hsm) -> None:
    with pytest.raises(HsmError, match=f"PIN for PKCS#11 token '{PIN_TOKEN}' was rejected"):
        Pkcs11KeyProvider(hsm.module, PIN_TOKEN, "0000", create=True)
    # The right PIN still works afterwards.
    with Pkcs11KeyProvider(hsm.module, PIN_TOKEN, PIN, create=True) as p:
        assert p.versions() == [1]


def test_wrong_pin_refused_while_token_already_logged_in(provider: Pkcs11KeyProvider, hsm: Hsm,
                                                         prefix: str) -> None:
    # The token would accept any login now (it is logged in); the provider must still refuse.
    with pytest.raises(HsmError, match="was rejected"):
        Pkcs11KeyProvider(hsm.module, TOKEN, "0000", key_label_prefix=prefix)
    assert provider.versions() == [1]


def test_unknown_token_is_a_clear_error(hsm: Hsm) -> None:
    with pytest.raises(HsmError, match=f"No PKCS#11 token labelled 'no-such-token'.*'{TOKEN}'"):
        Pkcs11KeyProvider(hsm.module, "no-such-token", PIN, create=True)


def test_missing_module_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "libsofthsm2.so"
    with pytest.raises(HsmError) as err:
        Pkcs11KeyProvider(str(missing), TOKEN, PIN, create=True)
    assert str(err.value) == (f"SoftHSM2/PKCS#11 module not found at {missing}: install softhsm2 or set "
                              "FACEWARDEN_PKCS11_MODULE")


def test_service_end_to_end_with_the_hsm_as_key_provider(hsm: Hsm, tmp_path: Path, shared_faces: Path,
                                                         face_engine: object) -> None:
    """Enrol, verify, rotate and erase with the KEK inside SoftHSM2 instead of the key file."""
    from facewarden.config import Settings
    from facewarden.service import LOCAL_ADMIN, EnrolRequest, build_service

    settings = Settings(home=tmp_path / "home", key_provider="pkcs11", pkcs11_module=hsm.module,
                        pkcs11_token_label=TOKEN, pkcs11_pin=PIN, liveness_required_purposes=[])  # photos only
    svc = build_service(settings, create=True, engine_factory=lambda: face_engine)  # type: ignore[arg-type,return-value]
    assert not (tmp_path / "home" / "keys" / "kek.json").exists()  # no key file: the KEK lives in the token
    photos = [p.read_bytes() for p in sorted((shared_faces / "people" / "train" / "obama").iterdir())]
    svc.matching.enrol(LOCAL_ADMIN, EnrolRequest("obama", photos, "login", "contract"))
    probe = (shared_faces / "people" / "test" / "obama1.jpg").read_bytes()
    assert svc.matching.verify(LOCAL_ADMIN, "obama", probe, purpose="login").match
    rotated = svc.keys.rotate(LOCAL_ADMIN, retire_old=True)
    assert rotated["rewrapped"] == 1 and rotated["retired"] == [rotated["current_version"] - 1]
    assert svc.matching.verify(LOCAL_ADMIN, "obama", probe, purpose="login").match
    svc.rights.erase(LOCAL_ADMIN, "obama")
    with pytest.raises(FaceWardenError):
        svc.rights.export(LOCAL_ADMIN, "obama")
