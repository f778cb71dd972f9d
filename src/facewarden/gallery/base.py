"""The 1:N search contract. The service holds a `Gallery` and never knows which implementation it has.

A gallery is a cache of decrypted templates: the encrypted store is the truth, so every implementation can be
rebuilt from it with `replace_all`, and the service re-checks every candidate against the database.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class GalleryEntry:
    tenant_id: str
    subject_id: str
    template_id: str
    purpose: str
    embedding: np.ndarray


@dataclass(frozen=True)
class Candidate:
    subject_id: str
    distance: float


@runtime_checkable
class Gallery(Protocol):
    """Templates grouped by tenant; a search never crosses tenants.

    Implementations are built as `cls(dimension=..., metric=...)` (see `make_gallery`), are safe to call from
    several threads, and measure distance with `facewarden.vision.distance`, like the embedder.
    """

    dimension: int  # of the embeddings held; the embedder's `dimension`
    metric: str  # a name in `facewarden.vision.distance.METRICS`; the embedder's `metric`
    generation: int
    """The store's gallery generation this content reflects; -1 until the first `replace_all`."""

    def replace_all(self, entries: Iterable[GalleryEntry], generation: int) -> None:
        """Atomically swap the whole content for `entries` (every tenant) and record `generation`. Searches running
        meanwhile see either the old or the new content, never a mix."""
        ...

    def add(self, entries: Sequence[GalleryEntry]) -> None:
        """Add templates incrementally (after an enrolment commits); does not change `generation`."""
        ...

    def remove_subject(self, tenant_id: str, subject_id: str) -> None:
        """Drop every template of the subject; unknown tenants and subjects are a no-op."""
        ...

    def search(self, tenant_id: str, probe: np.ndarray, *, threshold: float, max_candidates: int,
               purposes: Collection[str] | None = None) -> list[Candidate]:
        """At most `max_candidates` subjects whose best template is within `threshold` (inclusive) of `probe`,
        nearest first, one row per subject. `purposes` (None: all) filters templates inside the search, before
        ranking and thresholding, so a template of another purpose can neither appear nor crowd out a match."""
        ...

    def size(self, tenant_id: str | None = None) -> int:
        """Number of templates held for `tenant_id`, or for all tenants when None."""
        ...
