"""Operating points from evidence: the threshold that holds a target FMR, with bootstrap intervals (pure numpy).

Distances: lower is more alike, a comparison matches when ``distance <= threshold``.

* The threshold for a target FMR is the largest observed impostor distance ``t`` such that the impostor
  pairs accepted at ``t`` (``<= t``) are at most ``target`` of all impostor pairs. With ``n`` impostor pairs a
  target below ``1/n`` cannot be resolved (no observed impostor distance can be accepted): the threshold is
  then *extrapolated*, the lower (stricter) of "just below the smallest impostor distance" and a normal fit
  to the lower tail of the impostor distances, and flagged so.
* Intervals: 95 % percentile bootstrap that resamples *identities* with replacement (pairs that share a
  person are not independent). A drawn identity brings its genuine pairs, and its impostor pairs with every
  other drawn identity; two copies of one identity are never paired with each other.
* End-to-end FNMR (NIST FRTE style): photos that failed to enrol take part as comparisons that never match,
  so each genuine pair involving one counts as a false non-match, and each impostor pair as a true non-match.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike

from facewarden.evaluation.metrics import distance_matrix

__all__ = ["DRAWS", "OperatingPoint", "PairTable", "check_points", "operating_points", "pair_table",
           "threshold_at_fmr"]

DRAWS = 200
TAIL_MIN = 30  # the fewest impostor distances a tail fit uses


@dataclass(frozen=True)
class PairTable:
    """Every comparison of a labelled set, by identity index, and how many photos each identity had in all."""

    genuine: np.ndarray  # distances of the genuine pairs among enrolled photos
    genuine_id: np.ndarray  # the identity of each
    impostor: np.ndarray  # distances of the impostor pairs among enrolled photos, ascending
    impostor_a: np.ndarray  # the two identities of each
    impostor_b: np.ndarray
    enrolled: np.ndarray  # photos that enrolled, per identity
    photos: np.ndarray  # photos tried, per identity (enrolled + failed)

    @property
    def identities(self) -> int:
        return int(self.photos.size)


def pair_table(embeddings: ArrayLike, labels: Sequence[str], failed_labels: Sequence[str] = ()) -> PairTable:
    """All unordered pairs of the enrolled photos (Euclidean distances); ``failed_labels``: the label of each
    photo that failed to enrol (for the end-to-end rates)."""
    x = np.asarray(embeddings, dtype=np.float64)
    names = sorted(set(labels) | set(failed_labels))
    index = {n: i for i, n in enumerate(names)}
    lab = np.array([index[n] for n in labels], dtype=np.int64)
    enrolled = np.bincount(lab, minlength=len(names)) if lab.size else np.zeros(len(names), dtype=np.int64)
    photos = enrolled + np.bincount(np.array([index[n] for n in failed_labels], dtype=np.int64),
                                    minlength=len(names))
    if x.shape[0] != lab.size:
        raise ValueError(f"{x.shape[0]} embeddings but {lab.size} labels")
    dist = distance_matrix(x)
    iu, ju = np.triu_indices(lab.size, k=1)
    d, a, b = dist[iu, ju], lab[iu], lab[ju]
    same = a == b
    order = np.argsort(d[~same], kind="stable")
    return PairTable(genuine=d[same], genuine_id=a[same], impostor=d[~same][order],
                     impostor_a=a[~same][order], impostor_b=b[~same][order], enrolled=enrolled, photos=photos)


def threshold_at_fmr(impostor_sorted: np.ndarray, target: float, weights: np.ndarray | None = None,
                     total: float | None = None) -> float | None:
    """The largest observed impostor distance at which the accepted impostor weight is at most ``target`` of
    ``total`` (default: all the weight); None when not even the smallest one can be accepted."""
    if not 0.0 < target < 1.0:
        raise ValueError(f"target FMR must be within (0, 1), got {target}")
    imp = np.asarray(impostor_sorted, dtype=np.float64)
    w = np.ones_like(imp) if weights is None else np.asarray(weights, dtype=np.float64)
    cw = np.cumsum(w)
    allowed = target * (cw[-1] if total is None else total) if cw.size else 0.0
    k = int(np.searchsorted(cw, allowed * (1 + 1e-12), side="right"))  # entries within the allowance
    if k < imp.size:  # a tie with the first refused distance would be accepted with it
        k = int(np.searchsorted(imp, imp[k], side="left"))
    while k > 0 and w[k - 1] == 0:  # a distance of nobody drawn is no evidence
        k -= 1
    return float(imp[k - 1]) if k > 0 else None


def extrapolate_threshold(impostor_sorted: np.ndarray, target: float) -> float:
    """Below what the data resolve: the stricter of "below the smallest impostor distance" and a normal fit to
    the lower tail of the impostor distances (probit plot of the lowest 1 %, at least 30 of them)."""
    imp = np.asarray(impostor_sorted, dtype=np.float64)
    below = float(np.nextafter(imp[0], -np.inf))
    n = imp.size
    k = max(TAIL_MIN, math.ceil(0.01 * n))
    if n < TAIL_MIN:
        return below
    z = np.array([NormalDist().inv_cdf((i + 0.5) / n) for i in range(k)])
    slope, intercept = np.polyfit(z, imp[:k], 1)
    fitted = float(intercept + slope * NormalDist().inv_cdf(target))
    return min(below, fitted) if slope > 0 else below


def _ci(values: np.ndarray) -> list[float] | None:
    v = values[np.isfinite(values)]
    return [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if v.size else None


@dataclass(frozen=True)
class OperatingPoint:
    target_fmr: float
    threshold: float
    threshold_ci: list[float] | None
    extrapolated: bool  # the target is below 1 / impostor pairs: the threshold is not observed but extrapolated
    fmr: float  # observed FMR at the threshold (pairs that enrolled)
    fmr_ci: list[float] | None
    fnmr: float
    fnmr_ci: list[float] | None
    end_to_end_fnmr: float  # failures to enrol count as false non-matches
    end_to_end_fnmr_ci: list[float] | None

    def to_json(self) -> dict[str, object]:
        return asdict(self)


class _Draws:
    """Identity weights of the bootstrap draws (the first row: every identity once, the observed data)."""

    def __init__(self, table: PairTable, draws: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        n = table.identities
        counts = [np.ones(n)] + [np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
                                 for _ in range(draws)]
        self.c = np.vstack(counts)
        self.t = table

    def rows(self) -> range:
        return range(self.c.shape[0])

    def weights(self, r: int) -> tuple[np.ndarray, np.ndarray, float]:
        c, t = self.c[r], self.t
        genuine_all = float(np.sum(c * t.photos * (t.photos - 1) / 2.0))
        return c[t.genuine_id], c[t.impostor_a] * c[t.impostor_b], genuine_all


def _rates(t: PairTable, thr: float, gw: np.ndarray, iw: np.ndarray, genuine_all: float
           ) -> tuple[float, float, float]:
    """(FMR, FNMR, end-to-end FNMR) at ``thr`` under the weights of one draw."""
    i_total, g_total = iw.sum(), gw.sum()
    fmr = float(iw[t.impostor <= thr].sum() / i_total) if i_total else math.nan
    accepted = float(gw[t.genuine <= thr].sum())
    fnmr = 1.0 - accepted / g_total if g_total else math.nan
    e2e = 1.0 - accepted / genuine_all if genuine_all else math.nan
    return fmr, fnmr, e2e


def operating_points(table: PairTable, targets: Sequence[float], *, draws: int = DRAWS, seed: int = 0,
                     conservative: bool = False) -> list[OperatingPoint]:
    """For each target FMR: the threshold, the rates there, and their bootstrap intervals. ``conservative``: take
    the lower end of the threshold's 95 % interval instead of the point estimate (stricter: the target then holds
    on new identities with about 97.5 % confidence, at the price of a higher FNMR)."""
    if table.genuine.size == 0 or table.impostor.size == 0:
        raise ValueError("at least one genuine and one impostor pair are needed")
    boot = _Draws(table, draws, seed)
    # per target and draw: the draw's own threshold and the FNMR at it
    own = np.full((len(targets), boot.c.shape[0]), np.nan)
    at_own = np.full_like(own, np.nan)
    for r in boot.rows():
        gw, iw, genuine_all = boot.weights(r)
        for j, target in enumerate(targets):
            thr = threshold_at_fmr(table.impostor, target, iw)
            if thr is None:  # below the resolution of this draw as well
                drawn = table.impostor[iw > 0]
                thr = float(np.nextafter(drawn[0], -np.inf)) if drawn.size else math.nan
            own[j, r] = thr
            at_own[j, r] = _rates(table, thr, gw, iw, genuine_all)[1]
    fixed: list[tuple[float, bool]] = []
    for j, target in enumerate(targets):
        thr = threshold_at_fmr(table.impostor, target)
        point = (thr, False) if thr is not None else (extrapolate_threshold(table.impostor, target), True)
        ci = _ci(own[j, 1:])
        fixed.append((min(point[0], ci[0]), point[1]) if conservative and ci else point)
    at_fixed = np.full((len(targets), boot.c.shape[0], 3), np.nan)  # FMR, FNMR, e2e FNMR at the chosen threshold
    for r in boot.rows():
        gw, iw, genuine_all = boot.weights(r)
        for j in range(len(targets)):
            at_fixed[j, r] = _rates(table, fixed[j][0], gw, iw, genuine_all)
    points = []
    for j, target in enumerate(targets):
        thr, extrapolated = fixed[j]
        fmr, fnmr, e2e = at_fixed[j, 0]
        points.append(OperatingPoint(
            target_fmr=float(target), threshold=float(thr), threshold_ci=_ci(own[j, 1:]), extrapolated=extrapolated,
            fmr=float(fmr), fmr_ci=_ci(at_fixed[j, 1:, 0]), fnmr=float(fnmr),
            fnmr_ci=_ci(at_fixed[j, 1:, 1]) if conservative else _ci(at_own[j, 1:]),
            end_to_end_fnmr=float(e2e), end_to_end_fnmr_ci=_ci(at_fixed[j, 1:, 2])))
    return points


def check_points(table: PairTable, thresholds: Sequence[tuple[float, float]], *, draws: int = DRAWS,
                 seed: int = 0) -> list[dict[str, object]]:
    """Held-out check of calibrated (target FMR, threshold) pairs: the rates at each fixed threshold, with
    intervals, and whether the observed FMR stays within the target (``within_target``; ``resolvable`` says
    whether this set has enough impostor pairs, ``1/n <= target``, for that to mean much)."""
    boot = _Draws(table, draws, seed)
    rates = np.full((len(thresholds), boot.c.shape[0], 3), np.nan)
    for r in boot.rows():
        gw, iw, genuine_all = boot.weights(r)
        for j, (_, thr) in enumerate(thresholds):
            rates[j, r] = _rates(table, thr, gw, iw, genuine_all)
    out: list[dict[str, object]] = []
    for j, (target, thr) in enumerate(thresholds):
        fmr, fnmr, e2e = rates[j, 0]
        out.append({"target_fmr": float(target), "threshold": float(thr),
                    "false_matches": int(np.count_nonzero(table.impostor <= thr)),
                    "impostor_pairs": int(table.impostor.size),
                    "resolvable": table.impostor.size * target >= 1.0,
                    "fmr": float(fmr), "fmr_ci": _ci(rates[j, 1:, 0]), "within_target": bool(fmr <= target),
                    "fnmr": float(fnmr), "fnmr_ci": _ci(rates[j, 1:, 1]),
                    "end_to_end_fnmr": float(e2e), "end_to_end_fnmr_ci": _ci(rates[j, 1:, 2])})
    return out
