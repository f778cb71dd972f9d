"""Search over decrypted templates held only in memory, behind the `Gallery` protocol.

Implementations register here by name (`Settings.gallery` picks one) and are imported only when chosen, so a FAISS
or sharded gallery is one new file plus one line in `GALLERIES`.
"""

from __future__ import annotations

from importlib import import_module

from facewarden.errors import InternalError
from facewarden.gallery.base import Candidate, Gallery, GalleryEntry
from facewarden.gallery.memory import InMemoryGallery

__all__ = ["GALLERIES", "Candidate", "Gallery", "GalleryEntry", "InMemoryGallery", "make_gallery"]

# name -> "module:class"; the class is built as cls(dimension=..., metric=...).
GALLERIES: dict[str, str] = {
    "memory": "facewarden.gallery.memory:InMemoryGallery",
}


def make_gallery(name: str, *, dimension: int, metric: str) -> Gallery:
    """A new, empty gallery of the registered implementation `name`, for embeddings of `dimension` compared with
    `metric` (take both from the embedder)."""
    target = GALLERIES.get(name)
    if target is None:
        raise InternalError(f"No gallery is registered as {name!r} (known: {', '.join(sorted(GALLERIES))}). "
                            "Check FACEWARDEN_GALLERY.", code="config")
    module_name, _, cls_name = target.partition(":")
    try:
        module = import_module(module_name)
    except ImportError as exc:  # an optional backend (FAISS, a cluster client) that is not installed
        raise InternalError(f"The {name!r} gallery ({module_name}) cannot be loaded: {exc}. Install what it needs "
                            "or choose another FACEWARDEN_GALLERY.", code="config") from exc
    gallery: Gallery = getattr(module, cls_name)(dimension=dimension, metric=metric)
    return gallery
