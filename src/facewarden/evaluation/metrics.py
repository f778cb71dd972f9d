"""Verification and identification accuracy from embedding distances (pure numpy, no face models).

Scores are distances: lower means more alike, and a comparison is accepted (a "match") when
``distance <= threshold``.

* FMR(t)  (false match rate)     = fraction of impostor distances ``<= t``
* FNMR(t) (false non-match rate) = fraction of genuine distances ``> t``

FMR never falls and FNMR never rises as the threshold grows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "det_points",
    "eer",
    "fnmr_at_fmr",
    "pair_distances",
    "rank1_leave_one_out",
    "rates_at_threshold",
]


def _scores(values: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError(f"{name} distances are empty: at least one is needed")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} distances contain NaN or infinite values")
    return arr


def rates_at_threshold(genuine: ArrayLike, impostor: ArrayLike, threshold: float) -> tuple[float, float]:
    """(FMR, FNMR) when comparisons with ``distance <= threshold`` are accepted."""
    gen = _scores(genuine, "genuine")
    imp = _scores(impostor, "impostor")
    fmr = np.count_nonzero(imp <= threshold) / imp.size
    fnmr = np.count_nonzero(gen > threshold) / gen.size
    return float(fmr), float(fnmr)


def det_points(genuine: ArrayLike, impostor: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thresholds (ascending) and the FMR and FNMR at each one.

    The thresholds are every distinct distance in either set, preceded by one threshold just below
    the smallest distance (FMR 0, FNMR 1: nothing accepted), so the curve runs end to end: it always
    finishes at FMR 1, FNMR 0.
    """
    gen = np.sort(_scores(genuine, "genuine"))
    imp = np.sort(_scores(impostor, "impostor"))
    distinct = np.unique(np.concatenate([gen, imp]))
    thresholds = np.concatenate([[np.nextafter(distinct[0], -np.inf)], distinct])
    fmr = np.searchsorted(imp, thresholds, side="right") / imp.size
    fnmr = (gen.size - np.searchsorted(gen, thresholds, side="right")) / gen.size
    return thresholds, fmr, fnmr


def eer(genuine: ArrayLike, impostor: ArrayLike) -> tuple[float, float]:
    """(equal error rate, threshold there).

    Where FMR and FNMR are never exactly equal, both are interpolated linearly between the last
    threshold with FMR < FNMR and the first with FMR >= FNMR; the threshold is interpolated the same
    way. With fully separated distances the result is (0.0, largest genuine distance).
    """
    thr, fmr, fnmr = det_points(genuine, impostor)
    diff = fmr - fnmr  # rises from -1 (first point) to +1 (last point)
    i = int(np.argmax(diff >= 0.0))
    if diff[i] == 0.0:
        return float(fmr[i]), float(thr[i])
    # i >= 1 here: diff[0] == -1.
    d0, d1 = diff[i - 1], diff[i]
    a = -d0 / (d1 - d0)
    rate = fmr[i - 1] + a * (fmr[i] - fmr[i - 1])
    t = thr[i - 1] + a * (thr[i] - thr[i - 1])
    return float(rate), float(t)


def fnmr_at_fmr(genuine: ArrayLike, impostor: ArrayLike, target: float) -> tuple[float, float]:
    """(lowest FNMR among thresholds with FMR <= target, the threshold that gives it).

    Of the thresholds reaching that FNMR the smallest (the one with the lowest FMR) is returned.
    If no observed distance can be accepted within the target, the result is FNMR 1.0 at a threshold
    just below the smallest distance.
    """
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"target FMR must be within [0, 1], got {target}")
    thr, fmr, fnmr = det_points(genuine, impostor)
    ok = np.flatnonzero(fmr <= target)  # never empty: the first point has FMR 0
    best = fnmr[ok].min()
    j = ok[np.argmax(fnmr[ok] == best)]
    return float(fnmr[j]), float(thr[j])


def _as_int_labels(labels: Sequence[object] | np.ndarray, n: int) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"labels must be one-dimensional with {n} entries, got shape {arr.shape}")
    _, inverse = np.unique(arr, return_inverse=True)
    return inverse.ravel()


def distance_matrix(embeddings: ArrayLike) -> np.ndarray:
    """All-pairs Euclidean distances of the rows of an (N, D) array."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (N, D), got shape {x.shape}")
    sq = np.einsum("ij,ij->i", x, x)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    np.maximum(d2, 0.0, out=d2)
    return np.sqrt(d2, out=d2)


def pair_distances(embeddings: ArrayLike, labels: Sequence[object] | np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(genuine, impostor) Euclidean distances over all unordered pairs of distinct images."""
    dist = distance_matrix(embeddings)
    n = dist.shape[0]
    lab = _as_int_labels(labels, n)
    iu, ju = np.triu_indices(n, k=1)
    d = dist[iu, ju]
    same = lab[iu] == lab[ju]
    return d[same], d[~same]


def rank1_leave_one_out(embeddings: ArrayLike, labels: Sequence[object] | np.ndarray) -> tuple[float, int]:
    """(rank-1 identification rate, number of probes).

    Each image in turn is a probe against all the others; it is correct when its nearest other
    image has the same label. Only images whose identity has at least two images are probes (the
    others still take part as gallery distractors). With no probes the rate is NaN.
    """
    dist = distance_matrix(embeddings)
    n = dist.shape[0]
    lab = _as_int_labels(labels, n)
    if n < 2:
        return float("nan"), 0
    np.fill_diagonal(dist, np.inf)
    nearest = np.argmin(dist, axis=1)
    counts = np.bincount(lab)
    probes = counts[lab] >= 2
    n_probes = int(np.count_nonzero(probes))
    if n_probes == 0:
        return float("nan"), 0
    hits = np.count_nonzero(lab[nearest][probes] == lab[probes])
    return float(hits / n_probes), n_probes
