"""The key-encryption-key (KEK) interface. KEKs live outside the database: a key file or an HSM.

Implementations are opened by URI through providers.py; each module exposes `from_uri(uri, settings, create)`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class WrappedKey:
    kek_version: int
    blob: bytes


class KeyEncryptionKeyProvider(ABC):
    """Wraps and unwraps data keys under a versioned KEK. New wraps use the current version."""

    name: str

    @abstractmethod
    def current_version(self) -> int: ...

    @abstractmethod
    def versions(self) -> list[int]: ...

    @abstractmethod
    def wrap(self, data_key: bytes, aad: bytes) -> WrappedKey: ...

    @abstractmethod
    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes: ...

    @abstractmethod
    def rotate(self) -> int:
        """Create a new KEK version and make it current; return its number."""

    @abstractmethod
    def retire(self, version: int) -> None:
        """Destroy a KEK version for good. The caller checks no data key still uses it."""

    def close(self) -> None:  # noqa: B027 (optional hook: most providers hold nothing to release)
        """Release what the provider holds (an HSM session); a no-op for providers that hold nothing."""
