"""KEKs inside a PKCS#11 token (an HSM, or SoftHSM2 for development and tests).

Each KEK version is a non-extractable AES-256 secret key generated in the token and labelled
`<prefix>-v<n>`. Data keys are wrapped and unwrapped by the token with AES-GCM, so KEK bytes never
enter this process. All providers of one process that use the same token share one logged-in
session (PKCS#11 login state is per application, and logging out one session logs out all of them);
calls into a module are serialised by a lock, so a provider may be used from several threads.

Opened by URI (RFC 7512 style): `pkcs11:token=<label>;module-path=/usr/lib/...;key-prefix=<prefix>`. The PIN is
never part of the URI: it comes from the settings (FACEWARDEN_PKCS11_PIN), so the URI can be logged and shown.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote

import pkcs11
from pkcs11 import Attribute, GCMParams, KeyType, Mechanism, MechanismFlag, ObjectClass, SecretKey, Session
from pkcs11 import exceptions as p11

from facewarden.config import Settings
from facewarden.crypto.kek import KeyEncryptionKeyProvider, WrappedKey
from facewarden.errors import FaceWardenError, IntegrityFailure, InternalError

DEFAULT_MODULE_PATH = "/usr/lib/softhsm/libsofthsm2.so"
DEFAULT_KEY_PREFIX = "facewarden-kek"
PIN_ENV = "FACEWARDEN_PKCS11_PIN"
MODULE_ENV = "FACEWARDEN_PKCS11_MODULE"
NONCE_BYTES = 12
TAG_BITS = 128
KEK_BITS = 256

T = TypeVar("T")

# Errors after which the session is reopened (and logged in again) and the operation retried once.
_RECONNECT_ERRORS: tuple[type[Exception], ...] = (
    p11.SessionHandleInvalid, p11.SessionClosed, p11.UserNotLoggedIn, p11.DeviceRemoved,
    p11.TokenNotPresent,
)
# What tokens return for a failed GCM tag check (SoftHSM2 says CKR_GENERAL_ERROR).
_DECRYPT_FAILURES: tuple[type[Exception], ...] = (
    p11.EncryptedDataInvalid, p11.EncryptedDataLenRange, p11.GeneralError, p11.FunctionFailed,
    p11.DataInvalid, p11.DataLenRange,
)


class HsmError(InternalError):
    code = "hsm"


def default_module_path() -> str:
    """The PKCS#11 module named by FACEWARDEN_PKCS11_MODULE, else Debian's SoftHSM2 path."""
    return os.environ.get(MODULE_ENV) or DEFAULT_MODULE_PATH


class _TokenSession:
    """The one logged-in R/W session this process holds on a token, shared by its providers."""

    def __init__(self, lib: Any, lock: threading.RLock, module_path: str, token_label: str,
                 pin: str) -> None:
        self.lib = lib
        self.lock = lock
        self.module_path = module_path
        self.token_label = token_label
        self.pin = pin
        self.refs = 0
        self.session: Session | None = None
        with self.lock:
            self.session = self._open()

    def _open(self) -> Session:
        try:
            token = self.lib.get_token(token_label=self.token_label)
        except p11.NoSuchToken:
            raise HsmError(
                f"No PKCS#11 token labelled {self.token_label!r} in {self.module_path} "
                f"(tokens present: {', '.join(repr(t) for t in self._labels()) or 'none'}). "
                "Create it (for SoftHSM2: `softhsm2-util --init-token --free --label "
                f"{self.token_label} ...`) or fix the configured token label.") from None
        except p11.MultipleTokensReturned:
            raise HsmError(f"More than one PKCS#11 token is labelled {self.token_label!r}; "
                           "give each token a unique label.") from None
        except p11.PKCS11Error as exc:
            raise HsmError(f"Could not list the tokens of {self.module_path}: {_describe(exc)}") from exc
        try:
            return token.open(rw=True, user_pin=self.pin)
        except p11.UserAlreadyLoggedIn:
            # A stale session of ours is still logged in; a new session shares that login.
            return token.open(rw=True)
        except p11.PinIncorrect:
            raise HsmError(f"The PIN for PKCS#11 token {self.token_label!r} was rejected. Check the "
                           "configured PIN; repeated failures may lock the token.") from None
        except p11.PinLocked:
            raise HsmError(f"The user PIN of PKCS#11 token {self.token_label!r} is locked; the token's "
                           "security officer must reset it.") from None
        except (p11.PinExpired, p11.UserPinNotInitialized):
            raise HsmError(f"The user PIN of PKCS#11 token {self.token_label!r} is expired or was never "
                           "set; set it with the token's admin tool.") from None
        except (p11.PinInvalid, p11.PinLenRange):
            raise HsmError(f"The configured PIN for PKCS#11 token {self.token_label!r} is not a valid "
                           "PIN (wrong length or characters).") from None
        except p11.PKCS11Error as exc:
            raise HsmError(f"Could not log in to PKCS#11 token {self.token_label!r}: "
                           f"{_describe(exc)}") from exc

    def _labels(self) -> list[str]:
        try:
            return [s.get_token().label for s in self.lib.get_slots(token_present=True)]
        except p11.PKCS11Error:
            return []

    def _discard(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            with contextlib.suppress(p11.PKCS11Error):
                session.close()

    def run(self, fn: Callable[[Session], T]) -> T:
        with self.lock:
            if self.session is None:
                self.session = self._open()
            try:
                return fn(self.session)
            except _RECONNECT_ERRORS:
                self._discard()
                self.session = self._open()
                return fn(self.session)

    def close(self) -> None:
        with self.lock:
            self._discard()


_registry_lock = threading.Lock()
_sessions: dict[tuple[str, str], _TokenSession] = {}
_module_locks: dict[str, threading.RLock] = {}


def _acquire(module_path: str, token_label: str, pin: str) -> _TokenSession:
    if not os.path.isfile(module_path):
        raise HsmError(f"SoftHSM2/PKCS#11 module not found at {module_path}: install softhsm2 or set "
                       f"{MODULE_ENV}")
    with _registry_lock:
        try:
            lib = pkcs11.lib(module_path)
        except p11.PKCS11Error as exc:
            raise HsmError(f"Could not load the PKCS#11 module {module_path}: {_describe(exc)}") from exc
        key = (module_path, token_label)
        shared = _sessions.get(key)
        if shared is not None and shared.lib is not lib:
            del _sessions[key]  # the module was unloaded and loaded again; the old session is gone
            shared = None
        if shared is None:
            lock = _module_locks.setdefault(module_path, threading.RLock())
            shared = _TokenSession(lib, lock, module_path, token_label, pin)
            _sessions[key] = shared
        elif not hmac.compare_digest(shared.pin.encode(), pin.encode()):
            # The token is already logged in, so it would accept anything; compare with the PIN it took.
            raise HsmError(f"The PIN for PKCS#11 token {token_label!r} was rejected. Check the "
                           "configured PIN; repeated failures may lock the token.")
        shared.refs += 1
        return shared


def _release(shared: _TokenSession) -> None:
    with _registry_lock:
        shared.refs -= 1
        if shared.refs <= 0:
            key = (shared.module_path, shared.token_label)
            if _sessions.get(key) is shared:
                del _sessions[key]
            shared.close()


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__} {exc}".strip()


def _gcm(nonce: bytes, aad: bytes) -> GCMParams:
    return GCMParams(nonce, aad, TAG_BITS)


class Pkcs11KeyProvider(KeyEncryptionKeyProvider):
    name = "pkcs11"

    def __init__(self, module_path: str, token_label: str, pin: str, *,
                 key_label_prefix: str = DEFAULT_KEY_PREFIX, create: bool = False) -> None:
        if not key_label_prefix:
            raise HsmError("The PKCS#11 key label prefix must not be empty.")
        self.module_path = os.path.abspath(module_path)
        self.token_label = token_label
        self.key_label_prefix = key_label_prefix
        self._label_re = re.compile(rf"{re.escape(key_label_prefix)}-v([1-9][0-9]*)")
        self._shared: _TokenSession | None = _acquire(self.module_path, token_label, pin)
        try:
            if not self.versions():
                if not create:
                    raise HsmError(
                        f"PKCS#11 token {token_label!r} holds no key-encryption key labelled "
                        f"{key_label_prefix}-v<n>. Run `facewarden init` first (or check the key label "
                        "prefix and token).")
                self._run(lambda s: self._generate(s, 1))
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return (f"Pkcs11KeyProvider(module_path={self.module_path!r}, token_label={self.token_label!r}, "
                f"key_label_prefix={self.key_label_prefix!r})")

    def __enter__(self) -> Pkcs11KeyProvider:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release this provider's hold on the shared session (closed when its last user goes)."""
        shared, self._shared = self._shared, None
        if shared is not None:
            _release(shared)

    def _run(self, fn: Callable[[Session], T]) -> T:
        shared = self._shared
        if shared is None:
            raise HsmError("This PKCS#11 key provider has been closed.")
        try:
            return shared.run(fn)
        except FaceWardenError:
            raise
        except p11.PKCS11Error as exc:
            raise HsmError(f"PKCS#11 token {self.token_label!r} failed: {_describe(exc)}") from exc

    def _label(self, version: int) -> str:
        return f"{self.key_label_prefix}-v{version}"

    def _versions(self, session: Session) -> list[int]:
        found = set()
        for obj in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY,
                                        Attribute.KEY_TYPE: KeyType.AES}):
            m = self._label_re.fullmatch(obj[Attribute.LABEL])
            if m:
                found.add(int(m.group(1)))
        return sorted(found)

    def _current(self, session: Session) -> int:
        found = self._versions(session)
        if not found:
            raise HsmError(f"PKCS#11 token {self.token_label!r} no longer holds any key-encryption key "
                           f"labelled {self.key_label_prefix}-v<n>.")
        return found[-1]

    def _keys(self, session: Session, version: int) -> list[SecretKey]:
        # Normally one; two only if two processes rotated at the same instant. Both stay usable.
        keys = list(session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY,
                                         Attribute.LABEL: self._label(version)}))
        if not keys:
            raise HsmError(
                f"Key-encryption key version {version} ({self._label(version)}) is not in PKCS#11 token "
                f"{self.token_label!r}: it was retired or the token was replaced. Data keys wrapped "
                "under it cannot be opened.")
        return keys  # type: ignore[return-value]

    def _generate(self, session: Session, version: int) -> None:
        label = self._label(version)
        session.generate_key(
            KeyType.AES, KEK_BITS, label=label, id=label.encode(), store=True,
            capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
            template={Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                      Attribute.EXTRACTABLE: False, Attribute.MODIFIABLE: False})

    def current_version(self) -> int:
        return self._run(self._current)

    def versions(self) -> list[int]:
        return self._run(self._versions)

    def wrap(self, data_key: bytes, aad: bytes) -> WrappedKey:
        def op(session: Session) -> WrappedKey:
            version = self._current(session)
            key = self._keys(session, version)[0]
            nonce = os.urandom(NONCE_BYTES)
            ct = key.encrypt(data_key, mechanism=Mechanism.AES_GCM, mechanism_param=_gcm(nonce, aad))
            return WrappedKey(version, nonce + bytes(ct))
        return self._run(op)

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        blob = wrapped.blob
        if len(blob) < NONCE_BYTES + TAG_BITS // 8:
            raise IntegrityFailure("A wrapped data key failed its integrity check.")
        nonce, ct = blob[:NONCE_BYTES], blob[NONCE_BYTES:]

        def op(session: Session) -> bytes:
            keys = self._keys(session, wrapped.kek_version)
            for key in keys:
                try:
                    return bytes(key.decrypt(ct, mechanism=Mechanism.AES_GCM,
                                             mechanism_param=_gcm(nonce, aad)))
                except _DECRYPT_FAILURES:
                    continue
            self._self_test(keys[0])
            raise IntegrityFailure("A wrapped data key failed its integrity check.")
        return self._run(op)

    def _self_test(self, key: SecretKey) -> None:
        # Tokens report a bad GCM tag with generic errors; tell tampering apart from a failing token.
        nonce, probe = os.urandom(NONCE_BYTES), os.urandom(32)
        try:
            ct = key.encrypt(probe, mechanism=Mechanism.AES_GCM, mechanism_param=_gcm(nonce, b"probe"))
            ok = key.decrypt(ct, mechanism=Mechanism.AES_GCM, mechanism_param=_gcm(nonce, b"probe")) == probe
        except p11.PKCS11Error as exc:
            raise HsmError(f"PKCS#11 token {self.token_label!r} cannot decrypt with AES-GCM: "
                           f"{_describe(exc)}") from exc
        if not ok:
            raise HsmError(f"PKCS#11 token {self.token_label!r} failed an AES-GCM self-test.")

    def rotate(self) -> int:
        def op(session: Session) -> int:
            new = self._current(session) + 1
            self._generate(session, new)
            return new
        return self._run(op)

    def retire(self, version: int) -> None:
        def op(session: Session) -> None:
            if version == self._current(session):
                raise HsmError("The current key-encryption key cannot be retired; rotate first.")
            for key in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY,
                                            Attribute.LABEL: self._label(version)}):
                key.destroy()
        self._run(op)


# The URI attributes this provider reads. A PIN in the URI (RFC 7512 pin-value, pin-source) is refused.
URI_ATTRIBUTES = ("token", "module-path", "key-prefix")


def _uri_error(uri: str, problem: str) -> InternalError:
    return InternalError(f"The key-encryption key URI {uri!r} {problem}. Write it as pkcs11:token=<label>"
                         "[;module-path=/path/to/module.so][;key-prefix=<prefix>].", code="config")


def parse_uri(uri: str) -> dict[str, str]:
    """The attributes of a `pkcs11:` URI, percent-decoded. Path attributes are split by `;`; query attributes
    (after `?`, split by `&`, where RFC 7512 puts module-path) are accepted too."""
    scheme, _, rest = uri.partition(":")
    if scheme.lower() != "pkcs11":
        raise _uri_error(uri, "is not a pkcs11: URI")
    path, _, query = rest.partition("?")
    attributes: dict[str, str] = {}
    for item in [*path.split(";"), *query.split("&")]:
        if not item:
            continue
        name, sep, value = item.partition("=")
        if name in ("pin-value", "pin-source"):
            raise InternalError(f"The key-encryption key URI must not carry the PIN ({name}); remove it and set "
                                f"{PIN_ENV} (environment or env file) instead.", code="config")
        if not sep or name not in URI_ATTRIBUTES:
            raise _uri_error(uri, f"has an attribute {name!r} this provider does not know "
                                  f"(known: {', '.join(URI_ATTRIBUTES)})")
        if name in attributes:
            raise _uri_error(uri, f"names {name!r} twice")
        attributes[name] = unquote(value)
    if not attributes.get("token"):
        raise _uri_error(uri, "names no token")
    return attributes


def from_uri(uri: str, settings: Settings, create: bool) -> Pkcs11KeyProvider:
    """Open the KEKs in the token a `pkcs11:` URI names; the module defaults to `settings.pkcs11_module`."""
    attributes = parse_uri(uri)
    if not settings.pkcs11_pin:
        raise InternalError(f"Set {PIN_ENV} (environment or env file) for the HSM token "
                            f"{attributes['token']!r}; the PIN never goes in the key URI.", code="config")
    return Pkcs11KeyProvider(attributes.get("module-path") or settings.pkcs11_module, attributes["token"],
                             settings.pkcs11_pin, key_label_prefix=attributes.get("key-prefix", DEFAULT_KEY_PREFIX),
                             create=create)
