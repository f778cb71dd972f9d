"""Key-encryption-key providers, registered by URI scheme (as Tink registers KMS clients).

A provider is a module with `from_uri(uri, settings, create) -> KeyEncryptionKeyProvider`. Adding one (AWS KMS,
HashiCorp Vault) is that module plus one line in `PROVIDERS`. Modules are imported only when their scheme is
used, so python-pkcs11 is not loaded by a deployment that keeps its KEK in a file.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from facewarden.config import Settings
from facewarden.crypto.kek import KeyEncryptionKeyProvider
from facewarden.errors import InternalError
from facewarden.registry import load

ProviderFactory = Callable[[str, Settings, bool], KeyEncryptionKeyProvider]

# scheme -> "module:function"
PROVIDERS: dict[str, str] = {
    "file": "facewarden.crypto.local:from_uri",
    "pkcs11": "facewarden.crypto.pkcs11:from_uri",
}


def kek_uri(settings: Settings) -> str:
    """`settings.kek_uri`, or the URI the older `key_provider` setting stands for."""
    if settings.kek_uri:
        return settings.kek_uri
    if settings.key_provider == "pkcs11":
        return (f"pkcs11:token={quote(settings.pkcs11_token_label, safe='')}"
                f";module-path={quote(settings.pkcs11_module, safe='/')}")
    return settings.resolved_key_file.absolute().as_uri()


def scheme_of(uri: str) -> str:
    scheme, sep, _ = uri.partition(":")
    if not sep or not scheme:
        return ""
    return scheme.lower()


def provider_factory(scheme: str) -> ProviderFactory:
    factory: ProviderFactory = load(PROVIDERS, scheme, what="key-encryption key provider", known="known schemes",
                                    setting="FACEWARDEN_KEK_URI")
    return factory


def open_kek_provider(settings: Settings, *, create: bool = False) -> KeyEncryptionKeyProvider:
    """The provider the settings name. `create=True` (facewarden init) makes a first KEK where there is none."""
    uri = kek_uri(settings)
    scheme = scheme_of(uri)
    if not scheme:
        raise InternalError(f"The key-encryption key setting {uri!r} is not a URI; write it as "
                            f"<scheme>:... (known schemes: {', '.join(sorted(PROVIDERS))}), e.g. "
                            "file:///absolute/path/kek.json.", code="config")
    return provider_factory(scheme)(uri, settings, create)
