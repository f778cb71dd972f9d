"""Keys and encryption. Use cases go through the recipe, `KeyRing` (keyring.py); below it lie the primitives:
envelope sealing (envelope.py), the data-key store (datakeys.py) and the KEK providers, opened by URI scheme
(providers.py: file:// in local.py, pkcs11: in pkcs11.py, imported only when used)."""

from facewarden.crypto.datakeys import DataKeyStore, make_datakey_engine
from facewarden.crypto.envelope import ProbeAAD, TemplateAAD, open_sealed, seal
from facewarden.crypto.kek import KeyEncryptionKeyProvider, WrappedKey
from facewarden.crypto.keyring import KeyRing, make_keyring
from facewarden.crypto.local import LocalKeyFileProvider
from facewarden.crypto.providers import PROVIDERS, kek_uri, open_kek_provider

__all__ = [
    "PROVIDERS",
    "DataKeyStore",
    "KeyEncryptionKeyProvider",
    "KeyRing",
    "LocalKeyFileProvider",
    "ProbeAAD",
    "TemplateAAD",
    "WrappedKey",
    "kek_uri",
    "make_datakey_engine",
    "make_keyring",
    "open_kek_provider",
    "open_sealed",
    "seal",
]
