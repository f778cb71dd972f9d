"""Key providers, the data-key vault and envelope encryption of templates."""

from facewarden.crypto.envelope import TemplateAAD, open_sealed, seal
from facewarden.crypto.kek import KeyEncryptionKeyProvider, WrappedKey
from facewarden.crypto.local import LocalKeyFileProvider

__all__ = [
    "KeyEncryptionKeyProvider",
    "LocalKeyFileProvider",
    "TemplateAAD",
    "WrappedKey",
    "open_sealed",
    "seal",
]
