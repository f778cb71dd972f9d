"""Search over decrypted templates held only in memory, behind the `Gallery` protocol.

Implementations register here by name (`Settings.gallery` picks one) and are imported only when chosen, so a FAISS
or sharded gallery is one new file plus one line in `GALLERIES`.
"""

from __future__ import annotations

from facewarden.gallery.base import Candidate, Gallery, GalleryEntry
from facewarden.gallery.memory import InMemoryGallery
from facewarden.registry import load

__all__ = ["GALLERIES", "Candidate", "Gallery", "GalleryEntry", "InMemoryGallery", "make_gallery"]

# name -> "module:class"; the class is built as cls(dimension=..., metric=...).
GALLERIES: dict[str, str] = {
    "memory": "facewarden.gallery.memory:InMemoryGallery",
}


def make_gallery(name: str, *, dimension: int, metric: str) -> Gallery:
    """A new, empty gallery of the registered implementation `name`, for embeddings of `dimension` compared with
    `metric` (take both from the embedder)."""
    cls = load(GALLERIES, name, what="gallery", setting="FACEWARDEN_GALLERY")
    gallery: Gallery = cls(dimension=dimension, metric=metric)
    return gallery
