"""Thresholds from a target FMR and their bootstrap intervals, on synthetic distances (no face models)."""

from __future__ import annotations

import numpy as np
import pytest

from facewarden.evaluation.operating import (
    check_points,
    extrapolate_threshold,
    operating_points,
    pair_table,
    threshold_at_fmr,
)


def test_the_threshold_accepts_at_most_the_target_share_of_impostors() -> None:
    imp = np.arange(1, 1001, dtype=float) / 1000.0  # 1000 impostor pairs, 0.001 .. 1.0
    assert threshold_at_fmr(imp, 1e-2) == pytest.approx(0.010)  # 10 accepted of 1000
    assert threshold_at_fmr(imp, 1e-3) == pytest.approx(0.001)  # exactly 1
    assert threshold_at_fmr(imp, 1.5e-3) == pytest.approx(0.001)  # 1.5 allowed: still 1
    assert threshold_at_fmr(imp, 1e-4) is None  # below 1/n: not resolvable


def test_ties_at_the_boundary_are_refused_together() -> None:
    imp = np.array([0.1, 0.2, 0.2, 0.2, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert threshold_at_fmr(imp, 0.2) == 0.1  # accepting 0.2 would accept four of ten
    assert threshold_at_fmr(imp, 0.4) == 0.2


def test_weights_and_an_outside_total_move_the_threshold() -> None:
    imp = np.array([0.1, 0.2, 0.3, 0.4])
    assert threshold_at_fmr(imp, 0.25, np.array([0.0, 1.0, 1.0, 2.0])) == 0.2  # the undrawn 0.1 is no evidence
    assert threshold_at_fmr(imp, 0.25, None, total=8.0) == 0.2  # 2 of 8 pairs (the rest never compared)


def test_extrapolation_is_never_laxer_than_the_smallest_impostor() -> None:
    rng = np.random.default_rng(1)
    imp = np.sort(rng.normal(0.9, 0.08, 5000))
    t = extrapolate_threshold(imp, 1e-5)
    assert t < imp[0]
    assert t == pytest.approx(0.9 + 0.08 * -4.265, abs=0.03)  # the normal quantile at 1e-5


def _clusters(people: int, photos: int, spread: float, seed: int) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (people, 16))
    x = np.vstack([c + rng.normal(0, spread, (photos, 16)) for c in centres])
    return x, [f"p{i}" for i in range(people) for _ in range(photos)]


def test_operating_points_hold_their_target_with_intervals_around_them() -> None:
    x, labels = _clusters(60, 5, 0.45, seed=2)
    table = pair_table(x, labels)
    assert table.genuine.size == 60 * 10 and table.impostor.size == 300 * 299 // 2 - 600
    (p3, p5) = operating_points(table, [1e-3, 1e-5], draws=50, seed=0)
    assert not p3.extrapolated and p3.fmr <= 1e-3
    assert np.count_nonzero(table.impostor <= p3.threshold) == int(1e-3 * table.impostor.size)
    assert p3.threshold_ci is not None and p3.threshold_ci[0] <= p3.threshold <= p3.threshold_ci[1]
    assert p3.fnmr_ci is not None and 0.0 <= p3.fnmr_ci[0] <= p3.fnmr_ci[1] <= 1.0
    assert p3.end_to_end_fnmr == pytest.approx(p3.fnmr)  # nothing failed to enrol
    assert p5.extrapolated and p5.threshold < table.impostor[0] and p5.fmr == 0.0
    assert p5.fnmr >= p3.fnmr


def test_failures_to_enrol_count_as_false_non_matches_end_to_end() -> None:
    x, labels = _clusters(20, 3, 0.01, seed=3)  # perfectly separated: FNMR 0 on the pairs that enrolled
    table = pair_table(x, labels, failed_labels=["p0", "p1"])  # p0 and p1 each lost a fourth photo
    (point,) = operating_points(table, [1e-2], draws=20)
    assert point.fnmr == 0.0
    # 20 people x C(3,2) = 60 enrolled genuine pairs; with the failures 18 x 3 + 2 x C(4,2) = 66 in all
    assert point.end_to_end_fnmr == pytest.approx(6 / 66)
    (held,) = check_points(table, [(1e-2, point.threshold)], draws=20)
    assert held["end_to_end_fnmr"] == pytest.approx(6 / 66) and held["fnmr"] == 0.0
    assert held["within_target"] is True


def test_a_held_out_check_flags_a_threshold_that_lets_too_many_impostors_through() -> None:
    x, labels = _clusters(40, 4, 0.45, seed=4)
    table = pair_table(x, labels)
    lax = float(np.quantile(table.impostor, 0.01))
    (res,) = check_points(table, [(1e-3, lax)], draws=30)
    assert res["within_target"] is False and res["fmr"] == pytest.approx(0.01, rel=0.05)
    assert res["fmr_ci"][0] <= res["fmr"] <= res["fmr_ci"][1]  # type: ignore[index]
    assert res["resolvable"] is True


def test_the_conservative_rule_takes_the_strict_end_of_the_interval() -> None:
    x, labels = _clusters(60, 5, 0.45, seed=5)
    table = pair_table(x, labels)
    (point,) = operating_points(table, [1e-3], draws=50)
    (strict,) = operating_points(table, [1e-3], draws=50, conservative=True)
    assert point.threshold_ci is not None
    assert strict.threshold == pytest.approx(min(point.threshold, point.threshold_ci[0]))
    assert strict.fmr <= point.fmr and strict.fnmr >= point.fnmr
