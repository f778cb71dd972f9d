"""In-process 1:N search: per tenant, one float32 buffer of templates searched by brute force.

The plaintext embeddings exist only here, in this process's memory; they are loaded from the encrypted store at
start-up and whenever another process changed the gallery, and kept up to date in place in between: an enrolment
appends rows (the buffer grows geometrically, so appends are amortised O(1)), an erasure moves the last live rows
into the holes. Subjects and purposes are small ints per row, so the purpose filter and the one-row-per-subject
ranking are vectorised.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence

import numpy as np

from facewarden.gallery.base import Candidate, GalleryEntry
from facewarden.vision.distance import DistanceFn, distance_fn

_MIN_CAPACITY = 16


class _TenantIndex:
    """Rows [0, count) of the buffers are live; the rest is spare capacity."""

    def __init__(self, dimension: int, capacity: int = _MIN_CAPACITY) -> None:
        self.dimension = dimension
        self.count = 0
        self.reallocations = 0
        self.rows = np.empty((capacity, dimension), dtype=np.float32)
        self.subject_codes = np.empty(capacity, dtype=np.int64)
        self.purpose_codes = np.empty(capacity, dtype=np.int32)
        self.subject_code: dict[str, int] = {}
        self.subject_of: dict[int, str] = {}
        self._next_subject = 0
        self.purpose_code: dict[str, int] = {}  # purposes are few and never freed

    @property
    def capacity(self) -> int:
        return len(self.rows)

    def _reserve(self, needed: int) -> None:
        if needed <= self.capacity:
            return
        capacity = max(needed, 2 * self.capacity)
        for name in ("rows", "subject_codes", "purpose_codes"):
            old = getattr(self, name)
            new = np.empty((capacity, *old.shape[1:]), dtype=old.dtype)
            new[:self.count] = old[:self.count]
            setattr(self, name, new)
        self.reallocations += 1

    def append(self, entries: Sequence[GalleryEntry]) -> None:
        vectors = np.asarray([e.embedding for e in entries], dtype=np.float32).reshape(len(entries), -1)
        if vectors.shape[1] != self.dimension:
            raise ValueError(f"Embeddings of dimension {vectors.shape[1]} do not fit a {self.dimension}-D gallery.")
        start, end = self.count, self.count + len(entries)
        self._reserve(end)
        self.rows[start:end] = vectors
        self.subject_codes[start:end] = [self._subject(e.subject_id) for e in entries]
        self.purpose_codes[start:end] = [self.purpose_code.setdefault(e.purpose, len(self.purpose_code))
                                         for e in entries]
        self.count = end

    def _subject(self, subject_id: str) -> int:
        code = self.subject_code.get(subject_id)
        if code is None:
            code = self.subject_code[subject_id] = self._next_subject
            self.subject_of[code] = subject_id
            self._next_subject += 1
        return code

    def remove(self, subject_id: str) -> None:
        code = self.subject_code.pop(subject_id, None)
        if code is None:
            return
        del self.subject_of[code]
        doomed = self.subject_codes[:self.count] == code
        live = self.count - int(doomed.sum())
        holes = np.flatnonzero(doomed[:live])  # removed rows that stay inside the live range
        movers = live + np.flatnonzero(~doomed[live:])  # surviving rows beyond it, as many as there are holes
        for buffer in (self.rows, self.subject_codes, self.purpose_codes):
            buffer[holes] = buffer[movers]
        self.count = live

    def search(self, probe: np.ndarray, dist: DistanceFn, threshold: float, max_candidates: int,
               purposes: Collection[str] | None) -> list[Candidate]:
        rows, subjects = self.rows[:self.count], self.subject_codes[:self.count]
        if purposes is not None:
            wanted = [self.purpose_code[p] for p in purposes if p in self.purpose_code]
            keep = np.flatnonzero(np.isin(self.purpose_codes[:self.count], wanted))
            rows, subjects = rows[keep], subjects[keep]
        if not len(rows) or max_candidates < 1:
            return []
        d = dist(rows, probe)
        within = np.flatnonzero(d <= threshold)
        d, subjects = d[within], subjects[within]
        order = np.argsort(d, kind="stable")
        _, first = np.unique(subjects[order], return_index=True)  # each subject's nearest row
        best = order[first]
        best = best[np.argsort(d[best], kind="stable")][:max_candidates]
        return [Candidate(self.subject_of[int(subjects[i])], float(d[i])) for i in best]


def _by_tenant(entries: Iterable[GalleryEntry]) -> dict[str, list[GalleryEntry]]:
    grouped: dict[str, list[GalleryEntry]] = defaultdict(list)
    for e in entries:
        grouped[e.tenant_id].append(e)
    return grouped


class InMemoryGallery:
    """The default `Gallery`. One RLock guards all reads and writes; `replace_all` builds outside it."""

    def __init__(self, dimension: int = 128, metric: str = "euclidean") -> None:
        self.dimension = dimension
        self.metric = metric
        self._distance = distance_fn(metric)  # ValueError for an unknown metric, at construction
        self._lock = threading.RLock()
        self._tenants: dict[str, _TenantIndex] = {}
        self.generation = -1

    def replace_all(self, entries: Iterable[GalleryEntry], generation: int) -> None:
        tenants = {}
        for tenant, items in _by_tenant(entries).items():
            tenants[tenant] = idx = _TenantIndex(self.dimension, max(_MIN_CAPACITY, len(items)))
            idx.append(items)
        with self._lock:
            self._tenants = tenants
            self.generation = generation

    def add(self, entries: Sequence[GalleryEntry]) -> None:
        with self._lock:
            for tenant, items in _by_tenant(entries).items():
                idx = self._tenants.get(tenant)
                if idx is None:
                    idx = self._tenants[tenant] = _TenantIndex(self.dimension)
                idx.append(items)

    def remove_subject(self, tenant_id: str, subject_id: str) -> None:
        with self._lock:
            idx = self._tenants.get(tenant_id)
            if idx is not None:
                idx.remove(subject_id)

    def search(self, tenant_id: str, probe: np.ndarray, *, threshold: float, max_candidates: int,
               purposes: Collection[str] | None = None) -> list[Candidate]:
        vector = np.asarray(probe, dtype=np.float32).reshape(-1)
        if len(vector) != self.dimension:
            raise ValueError(f"A probe of dimension {len(vector)} does not fit a {self.dimension}-D gallery.")
        with self._lock:  # the buffers change in place, so the whole search holds the lock
            idx = self._tenants.get(tenant_id)
            return [] if idx is None else idx.search(vector, self._distance, threshold, max_candidates, purposes)

    def size(self, tenant_id: str | None = None) -> int:
        with self._lock:
            if tenant_id is not None:
                idx = self._tenants.get(tenant_id)
                return 0 if idx is None else idx.count
            return sum(idx.count for idx in self._tenants.values())

    # -- read-only figures, for tests and capacity planning ---------------------------------
    def capacity(self, tenant_id: str) -> int:
        """Rows the tenant's buffer holds before it must grow (0 for an unknown tenant)."""
        with self._lock:
            idx = self._tenants.get(tenant_id)
            return 0 if idx is None else idx.capacity

    @property
    def reallocations(self) -> int:
        """How many times a tenant buffer was copied to grow, summed over tenants since the last `replace_all`."""
        with self._lock:
            return sum(idx.reallocations for idx in self._tenants.values())
