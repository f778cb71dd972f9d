"""Named implementations loaded on demand: key providers by URI scheme, galleries by name. A registry maps a name
to "module:attribute"; the module is imported only when that name is chosen, so optional backends (an HSM
library, FAISS, a cluster client) cost nothing to deployments that do not use them."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from facewarden.errors import InternalError


def load(registry: dict[str, str], name: str, *, what: str, setting: str, known: str = "known") -> Any:
    """The attribute registered as `name`; a configuration error naming `setting` when it is unknown or its
    module cannot be imported."""
    target = registry.get(name)
    if target is None:
        raise InternalError(f"No {what} is registered as {name!r} ({known}: {', '.join(sorted(registry))}). "
                            f"Check {setting}.", code="config")
    module_name, _, attribute = target.partition(":")
    try:
        module = import_module(module_name)
    except ImportError as exc:
        raise InternalError(f"The {name!r} {what} ({module_name}) cannot be loaded: {exc}. Install what it needs "
                            f"or choose another {setting}.", code="config") from exc
    return getattr(module, attribute)
