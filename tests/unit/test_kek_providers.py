"""KEK providers opened by URI scheme: parsing, the registry, the legacy settings, and one-line registration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from facewarden.config import Settings
from facewarden.crypto.kek import KeyEncryptionKeyProvider, WrappedKey
from facewarden.crypto.keyring import make_keyring
from facewarden.crypto.local import KeyFileError, LocalKeyFileProvider
from facewarden.crypto.pkcs11 import HsmError, parse_uri
from facewarden.crypto.providers import PROVIDERS, kek_uri, open_kek_provider, provider_factory
from facewarden.errors import ErrorKind, InternalError

SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings read FACEWARDEN_* variables; these tests spell out every value they rely on.
    for name in list(os.environ):
        if name.startswith("FACEWARDEN_"):
            monkeypatch.delenv(name)


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(home=tmp_path / "home", **values)


class ToyProvider(KeyEncryptionKeyProvider):
    """An in-memory KEK standing in for the next provider (AWS KMS, HashiCorp Vault)."""

    name = "toy"

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._keys = {1: AESGCM.generate_key(bit_length=256)}

    def current_version(self) -> int:
        return max(self._keys)

    def versions(self) -> list[int]:
        return sorted(self._keys)

    def wrap(self, data_key: bytes, aad: bytes) -> WrappedKey:
        nonce = os.urandom(12)
        return WrappedKey(self.current_version(),
                          nonce + AESGCM(self._keys[self.current_version()]).encrypt(nonce, data_key, aad))

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        return AESGCM(self._keys[wrapped.kek_version]).decrypt(wrapped.blob[:12], wrapped.blob[12:], aad)

    def rotate(self) -> int:
        self._keys[self.current_version() + 1] = AESGCM.generate_key(bit_length=256)
        return self.current_version()

    def retire(self, version: int) -> None:
        self._keys.pop(version, None)


def toy_from_uri(uri: str, settings: Settings, create: bool) -> ToyProvider:
    return ToyProvider(uri)


_opened: list[tuple[str, bool]] = []


def recording_from_uri(uri: str, settings: Settings, create: bool) -> ToyProvider:
    _opened.append((uri, create))
    return ToyProvider(uri)


def test_a_new_scheme_is_one_registration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PROVIDERS, "toy", f"{__name__}:toy_from_uri")
    settings = _settings(tmp_path, kek_uri="toy://kek/alias")
    provider = open_kek_provider(settings)
    assert isinstance(provider, ToyProvider) and provider.uri == "toy://kek/alias"
    # The whole key ring works on top of it.
    settings = _settings(tmp_path, kek_uri="toy:anything", vault_url=f"sqlite:///{tmp_path / 'keys.db'}")
    ring = make_keyring(settings)
    [blob] = ring.seal_templates("t1", "s1", [("tpl1", "m@1", np.ones(128, dtype=np.float32))])
    assert ring.open_templates("t1", "s1", [("tpl1", "m@1", blob)])[0].sum() == 128
    assert ring.status()["provider"] == "toy"


def test_registry_names_the_built_in_schemes() -> None:
    assert PROVIDERS == {"file": "facewarden.crypto.local:from_uri", "pkcs11": "facewarden.crypto.pkcs11:from_uri"}
    assert provider_factory("file").__module__ == "facewarden.crypto.local"


@pytest.mark.parametrize("uri", ["awskms://arn:aws:kms:eu-west-1:1:key/abc", "vault://vault.example/transit/kek"])
def test_unknown_scheme_is_a_config_error_listing_the_known_ones(tmp_path: Path, uri: str) -> None:
    with pytest.raises(InternalError, match=r"known schemes: file, pkcs11") as err:
        open_kek_provider(_settings(tmp_path, kek_uri=uri))
    assert err.value.code == "config" and err.value.kind == ErrorKind.INTERNAL


def test_a_bare_path_is_not_a_uri(tmp_path: Path) -> None:
    with pytest.raises(InternalError, match=r"not a URI.*file:///") as err:
        open_kek_provider(_settings(tmp_path, kek_uri=str(tmp_path / "kek.json")))
    assert err.value.code == "config"


def test_legacy_local_setting_maps_to_the_key_file_uri(tmp_path: Path) -> None:
    settings = _settings(tmp_path, kek_uri=None, key_provider="local")
    assert kek_uri(settings) == (tmp_path / "home" / "keys" / "kek.json").as_uri()
    provider = open_kek_provider(settings, create=True)
    assert isinstance(provider, LocalKeyFileProvider) and provider.path == tmp_path / "home" / "keys" / "kek.json"
    odd = tmp_path / "a dir;x" / "kek#1.json"  # characters a URI must escape
    settings = _settings(tmp_path, key_file=odd)
    assert "%20" in kek_uri(settings) and "#" not in kek_uri(settings)
    assert open_kek_provider(settings, create=True).path == odd  # type: ignore[attr-defined]


def test_kek_uri_wins_over_the_legacy_setting(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "kek.json"
    settings = _settings(tmp_path, kek_uri=path.as_uri(), key_provider="pkcs11")
    assert kek_uri(settings) == path.as_uri()
    assert open_kek_provider(settings, create=True).path == path  # type: ignore[attr-defined]
    assert not (tmp_path / "home" / "keys" / "kek.json").exists()


def test_file_uri_without_create_needs_an_existing_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        open_kek_provider(_settings(tmp_path, kek_uri=(tmp_path / "missing.json").as_uri()))


@pytest.mark.parametrize("uri", ["file://keyhost/etc/kek.json", "file:relative/kek.json", "file:///k.json?x=1"])
def test_file_uri_must_be_a_local_absolute_path(tmp_path: Path, uri: str) -> None:
    with pytest.raises(InternalError, match="file:///absolute/path") as err:
        open_kek_provider(_settings(tmp_path, kek_uri=uri))
    assert err.value.code == "config"


def test_legacy_pkcs11_setting_maps_to_a_pkcs11_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path, key_provider="pkcs11", pkcs11_token_label="prod;hsm",
                         pkcs11_module="/opt/hsm/lib p11.so", pkcs11_pin="1234")
    uri = kek_uri(settings)
    assert uri == "pkcs11:token=prod%3Bhsm;module-path=/opt/hsm/lib%20p11.so"
    assert parse_uri(uri) == {"token": "prod;hsm", "module-path": "/opt/hsm/lib p11.so"}
    assert kek_uri(_settings(tmp_path, key_provider="pkcs11")) == f"pkcs11:token=facewarden;module-path={SOFTHSM}"
    _opened.clear()
    monkeypatch.setitem(PROVIDERS, "pkcs11", f"{__name__}:recording_from_uri")
    open_kek_provider(settings, create=True)
    assert _opened == [(uri, True)]


def test_pkcs11_uri_attributes() -> None:
    assert parse_uri("pkcs11:token=facewarden") == {"token": "facewarden"}
    assert parse_uri("pkcs11:token=fw;key-prefix=prod-kek;module-path=/usr/lib/x.so") == {
        "token": "fw", "key-prefix": "prod-kek", "module-path": "/usr/lib/x.so"}
    # RFC 7512 puts module-path among the query attributes; both places are read.
    assert parse_uri("pkcs11:token=My%20Token?module-path=/usr/lib/x.so") == {
        "token": "My Token", "module-path": "/usr/lib/x.so"}


@pytest.mark.parametrize(("uri", "problem"), [
    ("pkcs11:", "names no token"),
    ("pkcs11:key-prefix=p", "names no token"),
    ("pkcs11:token=a;token=b", "names 'token' twice"),
    ("pkcs11:token=a;modul-path=/x.so", "attribute 'modul-path'.*known: token, module-path, key-prefix"),
    ("pkcs11:token", "attribute 'token'"),
])
def test_pkcs11_uri_mistakes_are_config_errors(uri: str, problem: str) -> None:
    with pytest.raises(InternalError, match=problem) as err:
        parse_uri(uri)
    assert err.value.code == "config"


@pytest.mark.parametrize("uri", ["pkcs11:token=fw;pin-value=1234", "pkcs11:token=fw?pin-source=file:/pin"])
def test_a_pin_in_the_uri_is_refused(uri: str) -> None:
    with pytest.raises(InternalError, match=r"must not carry the PIN.*FACEWARDEN_PKCS11_PIN") as err:
        parse_uri(uri)
    assert err.value.code == "config"
    assert "1234" not in err.value.message


def test_missing_pin_says_to_set_the_environment_variable(tmp_path: Path) -> None:
    for settings in (_settings(tmp_path, kek_uri="pkcs11:token=fw", pkcs11_pin=None),
                     _settings(tmp_path, key_provider="pkcs11", pkcs11_pin="")):
        with pytest.raises(InternalError, match="Set FACEWARDEN_PKCS11_PIN") as err:
            open_kek_provider(settings)
        assert err.value.code == "config"


def test_provider_errors_are_internal_errors_with_their_codes() -> None:
    for cls, code in ((KeyFileError, "key_file"), (HsmError, "hsm")):
        assert issubclass(cls, InternalError)
        error = cls("x")
        assert error.code == code and error.kind == ErrorKind.INTERNAL


def test_python_pkcs11_is_imported_only_when_its_scheme_is_used(tmp_path: Path) -> None:
    code = ("import sys\n"
            "from facewarden.config import Settings\n"
            "from facewarden.crypto.keyring import make_keyring\n"
            "make_keyring(Settings(home=sys.argv[1]), create=True).close()\n"
            "print('pkcs11' in sys.modules, 'facewarden.crypto.pkcs11' in sys.modules)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEWARDEN_")}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "home")], check=True, capture_output=True,
                         text=True, env=env)
    assert out.stdout.split() == ["False", "False"]


def test_a_provider_sees_a_rotation_and_retirement_made_by_another_process(tmp_path: Path) -> None:
    # The server holds one provider open for days; `facewarden keys rotate --retire-old` runs in another process.
    path = tmp_path / "keys" / "kek.json"
    server = LocalKeyFileProvider(path, create=True)
    old = server.wrap(b"s" * 32, b"aad")
    cli = LocalKeyFileProvider(path)
    assert cli.rotate() == 2
    rewrapped = cli.wrap(cli.unwrap(old, b"aad"), b"aad")
    cli.retire(1)
    assert server.unwrap(rewrapped, b"aad") == b"s" * 32  # version 2 was unknown to it a moment ago
    assert server.current_version() == 2 and server.versions() == [2]
    assert server.wrap(b"n" * 32, b"aad").kek_version == 2  # new keys under the current version, not the retired
    with pytest.raises(KeyFileError, match="retired"):
        server.unwrap(old, b"aad")
    # A rewrite within the same timestamp and size is still caught: an unknown version forces one reload.
    again = LocalKeyFileProvider(path)
    again.rotate()
    newer = again.wrap(b"x" * 32, b"aad")
    server._stamp = (path.stat().st_ino, path.stat().st_size, path.stat().st_mtime_ns)  # as if it looked unchanged
    server._keys.pop(3, None)
    assert server.unwrap(newer, b"aad") == b"x" * 32
