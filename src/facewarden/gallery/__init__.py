"""Search over decrypted templates held only in memory."""

from facewarden.gallery.memory import Candidate, GalleryEntry, InMemoryGallery

__all__ = ["Candidate", "GalleryEntry", "InMemoryGallery"]
