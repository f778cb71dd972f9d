"""The in-memory gallery against a brute-force reference, and the gallery registry. Pure numpy: no dlib, no database."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from facewarden.errors import InternalError
from facewarden.gallery import GALLERIES, Candidate, Gallery, GalleryEntry, InMemoryGallery, make_gallery

DIM = 16


def entry(subject: str, vec: np.ndarray, purpose: str = "access", tenant: str = "t", template: str = "") -> GalleryEntry:
    return GalleryEntry(tenant, subject, template or f"{subject}/{id(vec)}", purpose, np.asarray(vec, np.float32))


def reference_distances(metric: str, rows: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """Written out independently of facewarden.vision.distance, in float64."""
    rows, probe = rows.astype(np.float64), probe.astype(np.float64)
    if metric == "euclidean":
        return np.sqrt(((rows - probe) ** 2).sum(axis=1))
    return 1.0 - (rows @ probe) / (np.sqrt((rows**2).sum(axis=1)) * math.sqrt(float(probe @ probe)))


def brute_force(entries: list[GalleryEntry], metric: str, tenant: str, probe: np.ndarray, threshold: float,
                max_candidates: int, purposes: set[str] | None) -> list[tuple[str, float]]:
    kept = [e for e in entries if e.tenant_id == tenant and (purposes is None or e.purpose in purposes)]
    if not kept:
        return []
    d = reference_distances(metric, np.stack([e.embedding for e in kept]), probe)
    best: dict[str, float] = {}
    for e, dist in zip(kept, d, strict=True):
        if dist <= threshold:
            best[e.subject_id] = min(best.get(e.subject_id, math.inf), float(dist))
    return sorted(best.items(), key=lambda kv: kv[1])[:max_candidates]


def safe_threshold(entries: list[GalleryEntry], metric: str, probe: np.ndarray, quantile: float) -> float:
    """A threshold halfway between two neighbouring distances, so float32 rounding cannot move a row across it."""
    d = np.unique(reference_distances(metric, np.stack([e.embedding for e in entries]), probe))
    i = max(1, int(quantile * len(d)))
    return float((d[i - 1] + d[i]) / 2)


def assert_same(found: list[Candidate], expected: list[tuple[str, float]]) -> None:
    assert [c.subject_id for c in found] == [s for s, _ in expected]
    assert [c.distance for c in found] == pytest.approx([d for _, d in expected], rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_search_equals_brute_force_through_adds_and_removals(metric: str) -> None:
    rng = np.random.default_rng(7)
    gallery = InMemoryGallery(dimension=DIM, metric=metric)
    entries: list[GalleryEntry] = []
    for batch in range(30):  # batches of 1-20 templates; 120 subjects with up to a few templates each
        new = [entry(f"s{rng.integers(120)}", rng.normal(size=DIM), purpose=f"p{rng.integers(3)}",
                     tenant=f"t{rng.integers(2)}", template=f"{batch}/{k}") for k in range(int(rng.integers(1, 21)))]
        gallery.add(new)
        entries += new
        if batch % 5 == 4:  # erase a few subjects between enrolments, to exercise the compaction
            for subject in rng.choice([e.subject_id for e in entries], size=3):
                for tenant in ("t0", "t1"):
                    gallery.remove_subject(tenant, str(subject))
                entries = [e for e in entries if e.subject_id != subject]
    assert gallery.size() == len(entries)
    for tenant in ("t0", "t1"):
        assert gallery.size(tenant) == sum(e.tenant_id == tenant for e in entries)
        for _ in range(10):
            probe = rng.normal(size=DIM).astype(np.float32)
            threshold = safe_threshold(entries, metric, probe, quantile=rng.uniform(0.05, 0.6))
            for purposes in (None, {"p0"}, {"p1", "p2"}, {"unknown"}, set()):
                for k in (1, 5, 50):
                    found = gallery.search(tenant, probe, threshold=threshold, max_candidates=k, purposes=purposes)
                    assert_same(found, brute_force(entries, metric, tenant, probe, threshold, k, purposes))


def test_purpose_filter_runs_inside_the_search() -> None:
    gallery = InMemoryGallery(dimension=2)
    probe = np.zeros(2, np.float32)
    gallery.add([
        entry("near-other-purpose", [0.1, 0.0], purpose="marketing"),
        entry("also-near-other-purpose", [0.0, 0.1], purpose="marketing"),
        entry("far-right-purpose", [0.4, 0.0], purpose="access"),
        entry("mixed", [0.05, 0.0], purpose="marketing"),  # one subject, templates under two purposes
        entry("mixed", [0.3, 0.0], purpose="access"),
    ])
    found = gallery.search("t", probe, threshold=0.5, max_candidates=2, purposes={"access"})
    assert [(c.subject_id, round(c.distance, 6)) for c in found] == [("mixed", 0.3), ("far-right-purpose", 0.4)]
    found = gallery.search("t", probe, threshold=0.5, max_candidates=1, purposes=["access"])
    assert [c.subject_id for c in found] == ["mixed"] and found[0].distance == pytest.approx(0.3)
    everything = gallery.search("t", probe, threshold=0.5, max_candidates=10)
    assert [c.subject_id for c in everything][:2] == ["mixed", "near-other-purpose"]
    assert everything[0].distance == pytest.approx(0.05)


def test_one_row_per_subject_at_its_best_template_and_inclusive_threshold() -> None:
    gallery = InMemoryGallery(dimension=2)
    gallery.add([entry("a", [0.3, 0.0]), entry("a", [0.1, 0.0]), entry("a", [0.2, 0.0]), entry("b", [0.25, 0.0])])
    found = gallery.search("t", np.zeros(2), threshold=0.25, max_candidates=10)
    assert [c.subject_id for c in found] == ["a", "b"]
    assert [c.distance for c in found] == pytest.approx([0.1, 0.25])
    assert gallery.search("t", np.zeros(2), threshold=0.05, max_candidates=10) == []


def test_remove_subject() -> None:
    gallery = InMemoryGallery(dimension=2)
    gallery.add([entry("a", [0.1, 0.0]), entry("b", [0.2, 0.0]), entry("a", [0.0, 0.1]), entry("c", [0.3, 0.0])])
    gallery.remove_subject("t", "a")
    assert gallery.size("t") == 2
    found = gallery.search("t", np.zeros(2), threshold=1.0, max_candidates=10)
    assert [c.subject_id for c in found] == ["b", "c"]
    assert [c.distance for c in found] == pytest.approx([0.2, 0.3])
    gallery.remove_subject("t", "a")  # again, an unknown subject, an unknown tenant: no-ops
    gallery.remove_subject("t", "nobody")
    gallery.remove_subject("elsewhere", "b")
    assert gallery.size() == 2
    gallery.add([entry("a", [0.5, 0.0])])  # enrolled again after erasure
    assert [c.subject_id for c in gallery.search("t", np.zeros(2), threshold=1.0, max_candidates=10)] == ["b", "c", "a"]
    for subject in ("a", "b", "c"):
        gallery.remove_subject("t", subject)
    assert gallery.size() == 0 and gallery.search("t", np.zeros(2), threshold=1.0, max_candidates=10) == []


def test_tenants_are_isolated() -> None:
    gallery = InMemoryGallery(dimension=2)
    gallery.add([entry("a", [0.0, 0.0], tenant="one"), entry("b", [0.0, 0.0], tenant="two")])
    assert [c.subject_id for c in gallery.search("one", np.zeros(2), threshold=1, max_candidates=5)] == ["a"]
    assert [c.subject_id for c in gallery.search("two", np.zeros(2), threshold=1, max_candidates=5)] == ["b"]
    assert gallery.search("three", np.zeros(2), threshold=1, max_candidates=5) == []
    gallery.remove_subject("one", "b")  # b lives in tenant two: untouched
    assert gallery.size("one") == gallery.size("two") == 1 and gallery.size("three") == 0


def test_single_adds_grow_the_buffer_geometrically() -> None:
    gallery = InMemoryGallery(dimension=DIM)
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(10_000, DIM)).astype(np.float32)
    for i, vec in enumerate(vectors):
        gallery.add([GalleryEntry("t", f"s{i}", f"{i}", "access", vec)])
    assert gallery.size("t") == 10_000
    assert gallery.reallocations <= math.ceil(math.log2(10_000)), "each add must not copy the whole matrix"
    assert 10_000 <= gallery.capacity("t") < 20_000
    found = gallery.search("t", vectors[1234], threshold=1e-3, max_candidates=3)
    assert [c.subject_id for c in found] == ["s1234"]
    for i in range(0, 10_000, 2):  # erasing compacts in place: no reallocation, capacity kept for later adds
        gallery.remove_subject("t", f"s{i}")
    assert gallery.size("t") == 5_000 and gallery.capacity("t") < 20_000
    assert [c.subject_id for c in gallery.search("t", vectors[1235], threshold=1e-3, max_candidates=3)] == ["s1235"]
    assert gallery.search("t", vectors[1234], threshold=1e-3, max_candidates=3) == []


def test_replace_all_and_generation() -> None:
    gallery = InMemoryGallery(dimension=2)
    assert gallery.generation == -1
    gallery.add([entry("old", [0.0, 0.0]), entry("old", [0.0, 0.0], tenant="other")])
    assert gallery.generation == -1
    gallery.replace_all((entry(s, [0.1 * i, 0.0]) for i, s in enumerate("xyz")), generation=4)
    assert gallery.generation == 4 and gallery.size() == 3 and gallery.size("other") == 0
    assert [c.subject_id for c in gallery.search("t", np.zeros(2), threshold=1, max_candidates=5)] == ["x", "y", "z"]
    gallery.add([entry("w", [0.05, 0.0])])
    assert gallery.generation == 4 and gallery.size() == 4
    gallery.replace_all([], generation=5)
    assert gallery.generation == 5 and gallery.size() == 0


def test_metric_and_dimension_are_checked() -> None:
    with pytest.raises(ValueError, match="cosine"):
        InMemoryGallery(metric="manhattan")
    gallery = InMemoryGallery(dimension=3)
    with pytest.raises(ValueError, match="dimension"):
        gallery.add([entry("a", [0.0, 0.0])])
    with pytest.raises(ValueError, match="dimension"):
        gallery.search("t", np.zeros(2), threshold=1, max_candidates=1)
    assert gallery.size() == 0


class ToyGallery(InMemoryGallery):
    """Stands in for a later implementation (FAISS, shards) registered by one line."""


def test_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    gallery = make_gallery("memory", dimension=4, metric="cosine")
    assert isinstance(gallery, InMemoryGallery) and isinstance(gallery, Gallery)
    assert (gallery.dimension, gallery.metric, gallery.generation) == (4, "cosine", -1)
    with pytest.raises(InternalError) as exc:
        make_gallery("faiss", dimension=4, metric="euclidean")
    assert exc.value.code == "config" and "'faiss'" in exc.value.message and "memory" in exc.value.message
    monkeypatch.setitem(GALLERIES, "toy", f"{__name__}:ToyGallery")
    toy = make_gallery("toy", dimension=8, metric="euclidean")
    assert type(toy) is ToyGallery and toy.dimension == 8
    monkeypatch.setitem(GALLERIES, "broken", "facewarden.no_such_backend:Gallery")
    with pytest.raises(InternalError) as exc:
        make_gallery("broken", dimension=8, metric="euclidean")
    assert exc.value.code == "config"


def test_gallery_loads_without_the_face_models() -> None:
    code = ("import sys, facewarden.gallery, facewarden.vision, facewarden.vision.distance; "
            "assert 'dlib' not in sys.modules, 'dlib was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
