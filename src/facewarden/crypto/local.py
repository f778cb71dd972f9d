"""KEKs in a local key file (JSON, mode 0600): the embedded default.

Several processes share the file (the server and `facewarden keys rotate` run beside it), so the provider
reloads it whenever it changed on disk (inode, size or mtime) and, for a version it does not know, once more
before giving up: a rotation or retirement by another process is seen without a restart."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from facewarden.config import Settings
from facewarden.crypto.kek import KeyEncryptionKeyProvider, WrappedKey
from facewarden.errors import IntegrityFailure, InternalError

NONCE_BYTES = 12


class KeyFileError(InternalError):
    code = "key_file"


class LocalKeyFileProvider(KeyEncryptionKeyProvider):
    name = "local"

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = Path(path)
        if not self.path.exists():
            if not create:
                raise KeyFileError(f"The key file {self.path} does not exist. Run `facewarden init` first.")
            self._keys = {1: AESGCM.generate_key(bit_length=256)}
            self._current = 1
            self._save()
        self._stamp: tuple[int, int, int] | None = None
        self._load()

    def _load(self) -> None:
        st = self.path.stat()
        mode = st.st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(
                f"The key file {self.path} is readable by other users (mode {oct(mode & 0o777)}). "
                f"Run `chmod 600 {self.path}` and check who may have copied it.")
        doc = json.loads(self.path.read_text())
        self._keys = {int(v): base64.b64decode(k) for v, k in doc["keys"].items()}
        self._current = int(doc["current"])
        self._stamp = (st.st_ino, st.st_size, st.st_mtime_ns)

    def _refresh(self, *, force: bool = False) -> None:
        """Reload when another process rewrote the file (it is replaced atomically, so the inode changes)."""
        try:
            st = self.path.stat()
        except OSError:
            return  # keep what we hold; the next operation that needs a missing version says so
        if force or (st.st_ino, st.st_size, st.st_mtime_ns) != self._stamp:
            self._load()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        doc = {"format": 1, "current": self._current,
               "keys": {str(v): base64.b64encode(k).decode() for v, k in sorted(self._keys.items())}}
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def current_version(self) -> int:
        self._refresh()
        return self._current

    def versions(self) -> list[int]:
        self._refresh()
        return sorted(self._keys)

    def _key(self, version: int) -> bytes:
        if version not in self._keys:
            self._refresh(force=True)  # a version made by another process within the stamp's resolution
        try:
            return self._keys[version]
        except KeyError:
            raise KeyFileError(
                f"Key-encryption key version {version} is not in {self.path}: it was retired or the key "
                "file was replaced. Data keys wrapped under it cannot be opened.") from None

    def wrap(self, data_key: bytes, aad: bytes) -> WrappedKey:
        self._refresh()  # wrap under the version that is current on disk, not the one seen at start-up
        nonce = os.urandom(NONCE_BYTES)
        blob = nonce + AESGCM(self._key(self._current)).encrypt(nonce, data_key, aad)
        return WrappedKey(self._current, blob)

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        self._refresh()
        key = self._key(wrapped.kek_version)
        try:
            return AESGCM(key).decrypt(wrapped.blob[:NONCE_BYTES], wrapped.blob[NONCE_BYTES:], aad)
        except InvalidTag:
            raise IntegrityFailure("A wrapped data key failed its integrity check.") from None

    def rotate(self) -> int:
        self._load()
        new = max(self._keys) + 1
        self._keys[new] = AESGCM.generate_key(bit_length=256)
        self._current = new
        self._save()
        return new

    def retire(self, version: int) -> None:
        self._load()
        if version == self._current:
            raise KeyFileError("The current key-encryption key cannot be retired; rotate first.")
        self._keys.pop(version, None)
        self._save()


def from_uri(uri: str, settings: Settings, create: bool) -> LocalKeyFileProvider:
    """`file:///abs/path/kek.json` (percent-encoded, as `Path.as_uri()` writes it)."""
    parts = urlsplit(uri)
    path = Path(unquote(parts.path))
    if parts.scheme != "file" or parts.netloc not in ("", "localhost") or parts.query or parts.fragment \
            or not path.is_absolute():
        raise InternalError(f"The key-encryption key URI {uri!r} is not a local file URI; write it as "
                            "file:///absolute/path/kek.json.", code="config")
    return LocalKeyFileProvider(path, create=create)
