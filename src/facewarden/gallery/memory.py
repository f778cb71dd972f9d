"""In-process 1:N search: one float32 matrix per tenant, brute-force Euclidean distance.

The plaintext embeddings exist only here, in this process's memory; they are rebuilt from the
encrypted store at start-up and whenever another process changed the gallery.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

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


class _TenantIndex:
    def __init__(self) -> None:
        self.matrix = np.zeros((0, 128), dtype=np.float32)
        self.subjects: list[str] = []
        self.templates: list[str] = []
        self.purposes: list[str] = []


class InMemoryGallery:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._tenants: dict[str, _TenantIndex] = {}
        self.generation = -1

    def replace_all(self, entries: list[GalleryEntry], generation: int) -> None:
        tenants: dict[str, _TenantIndex] = {}
        grouped: dict[str, list[GalleryEntry]] = {}
        for e in entries:
            grouped.setdefault(e.tenant_id, []).append(e)
        for tenant, items in grouped.items():
            idx = _TenantIndex()
            idx.matrix = np.stack([e.embedding for e in items]).astype(np.float32)
            idx.subjects = [e.subject_id for e in items]
            idx.templates = [e.template_id for e in items]
            idx.purposes = [e.purpose for e in items]
            tenants[tenant] = idx
        with self._lock:
            self._tenants = tenants
            self.generation = generation

    def add(self, entries: list[GalleryEntry]) -> None:
        with self._lock:
            for e in entries:
                idx = self._tenants.setdefault(e.tenant_id, _TenantIndex())
                idx.matrix = np.vstack([idx.matrix, e.embedding[None, :].astype(np.float32)])
                idx.subjects.append(e.subject_id)
                idx.templates.append(e.template_id)
                idx.purposes.append(e.purpose)

    def remove_subject(self, tenant_id: str, subject_id: str) -> None:
        with self._lock:
            idx = self._tenants.get(tenant_id)
            if idx is None:
                return
            keep = [i for i, s in enumerate(idx.subjects) if s != subject_id]
            idx.matrix = idx.matrix[keep]
            idx.subjects = [idx.subjects[i] for i in keep]
            idx.templates = [idx.templates[i] for i in keep]
            idx.purposes = [idx.purposes[i] for i in keep]

    def size(self, tenant_id: str | None = None) -> int:
        with self._lock:
            if tenant_id is not None:
                idx = self._tenants.get(tenant_id)
                return 0 if idx is None else len(idx.subjects)
            return sum(len(i.subjects) for i in self._tenants.values())

    def search(self, tenant_id: str, probe: np.ndarray, *, threshold: float, max_candidates: int,
               purposes: set[str] | None = None) -> list[Candidate]:
        """Subjects whose best template is within `threshold`, nearest first (one row per subject)."""
        with self._lock:
            idx = self._tenants.get(tenant_id)
            if idx is None or not idx.subjects:
                return []
            dists = np.linalg.norm(idx.matrix - probe.astype(np.float32)[None, :], axis=1)
            subjects, purposes_of = idx.subjects, idx.purposes
        best: dict[str, float] = {}
        for i in np.flatnonzero(dists <= threshold):
            if purposes is not None and purposes_of[i] not in purposes:
                continue
            s = subjects[i]
            d = float(dists[i])
            if d < best.get(s, np.inf):
                best[s] = d
        ranked = sorted(best.items(), key=lambda kv: kv[1])[:max_candidates]
        return [Candidate(s, d) for s, d in ranked]
