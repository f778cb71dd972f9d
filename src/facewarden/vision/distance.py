"""The distance of each embedding metric, defined once: the embedder (1:1) and the gallery (1:N) both call these,
so a verify and a search can never disagree about how far two faces are.

Each function takes rows of shape (..., d) and one vector of shape (d,) and returns the distance of every row
(a scalar for a single row); smaller is nearer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

DistanceFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def euclidean(rows: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """L2 norm of the difference (dlib's metric; its customary threshold is 0.6)."""
    return np.linalg.norm(rows - probe, axis=-1)


def cosine(rows: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """1 - cosine similarity, in [0, 2]. A zero vector is treated as orthogonal to everything (distance 1)."""
    norms = np.linalg.norm(rows, axis=-1) * np.linalg.norm(probe)
    return 1.0 - (rows @ probe) / np.maximum(norms, np.finfo(np.float32).tiny)


METRICS: dict[str, DistanceFn] = {"euclidean": euclidean, "cosine": cosine}


def distance_fn(metric: str) -> DistanceFn:
    """The function for `metric`; ValueError names the known metrics when it is unknown."""
    try:
        return METRICS[metric]
    except KeyError:
        raise ValueError(f"Unknown distance metric {metric!r}; known: {', '.join(sorted(METRICS))}.") from None


def distance(metric: str, a: np.ndarray, b: np.ndarray) -> float:
    """Distance between two embeddings under `metric`."""
    return float(distance_fn(metric)(np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)))
