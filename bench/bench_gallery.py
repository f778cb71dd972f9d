"""The gallery under change: adding templates one at a time and searching with a purpose filter, against the naive
baseline in the same run (a matrix re-stacked on every add, brute-force numpy distances, the filter applied after).

Usage:  .venv/bin/python bench/bench_gallery.py [--templates 20000] [--searches 200]
Prints one JSON object; ratios are baseline / FaceWarden (above 1: FaceWarden is faster).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from facewarden.gallery import GalleryEntry, make_gallery


class NaiveGallery:
    """What the gallery did before: np.vstack on every add, distances to everything, purposes filtered after."""

    def __init__(self) -> None:
        self.matrix = np.zeros((0, 128), dtype=np.float32)
        self.subjects: list[str] = []
        self.purposes: list[str] = []

    def add(self, e: GalleryEntry) -> None:
        self.matrix = np.vstack([self.matrix, e.embedding[None, :]])
        self.subjects.append(e.subject_id)
        self.purposes.append(e.purpose)

    def search(self, probe: np.ndarray, threshold: float, k: int, purposes: set[str]) -> list[tuple[str, float]]:
        dists = np.linalg.norm(self.matrix - probe[None, :], axis=1)
        best: dict[str, float] = {}
        for i in np.flatnonzero(dists <= threshold):
            if self.purposes[i] in purposes and dists[i] < best.get(self.subjects[i], np.inf):
                best[self.subjects[i]] = float(dists[i])
        return sorted(best.items(), key=lambda kv: kv[1])[:k]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--templates", type=int, default=20_000)
    ap.add_argument("--searches", type=int, default=200)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    # Clustered like real embeddings: 10 templates around each of n/10 identities, so searches find candidates.
    centres = rng.normal(scale=0.25, size=(max(1, args.templates // 10), 128)).astype(np.float32)
    vecs = (centres.repeat(10, axis=0)[: args.templates] + rng.normal(scale=0.02, size=(args.templates, 128))
            ).astype(np.float32)
    entries = [GalleryEntry("t", f"s{i // 10}", f"t{i}", ("login", "payment")[i // 10 % 2], v)
               for i, v in enumerate(vecs)]
    naive, fw = NaiveGallery(), make_gallery("memory", dimension=128, metric="euclidean")
    t0 = time.perf_counter()
    for e in entries:
        naive.add(e)
    t1 = time.perf_counter()
    for e in entries:
        fw.add([e])
    t2 = time.perf_counter()
    probes = vecs[rng.integers(0, args.templates, args.searches)]
    t3 = time.perf_counter()
    expected = [naive.search(p, 0.5, 5, {"login"}) for p in probes]
    t4 = time.perf_counter()
    found = [fw.search("t", p, threshold=0.5, max_candidates=5, purposes={"login"}) for p in probes]
    t5 = time.perf_counter()
    same = sum([c.subject_id for c in f] == [s for s, _ in e] for f, e in zip(found, expected, strict=True))
    print(json.dumps({
        "templates": args.templates, "searches": args.searches,
        "add_ms_per_template": {"baseline": round((t1 - t0) / args.templates * 1e3, 4),
                                "facewarden": round((t2 - t1) / args.templates * 1e3, 4)},
        "add_ratio": round((t1 - t0) / (t2 - t1), 1),
        "search_ms": {"baseline": round((t4 - t3) / args.searches * 1e3, 3),
                      "facewarden": round((t5 - t4) / args.searches * 1e3, 3)},
        "search_ratio": round((t4 - t3) / (t5 - t4), 2),
        "same_candidates_as_baseline": f"{same}/{args.searches}",
    }))


if __name__ == "__main__":
    main()
