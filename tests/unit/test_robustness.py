"""Probe transforms, yaw, end-to-end scores and the identity bootstrap: synthetic data, no face models."""

from __future__ import annotations

import numpy as np
import pytest

from facewarden.evaluation import fnmr_at_fmr
from facewarden.evaluation import robustness as rb

# A 200x200 "photo" with a frontal face: eyes at y=80, nose base at (100, 118). dlib 5-point order.
PTS = np.array([[140, 80], [118, 80], [60, 80], [82, 80], [100, 118]], dtype=np.float64)


def _photo() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(90, 170, (200, 200, 3), dtype=np.uint8)


def test_unit_weights_match_metrics_fnmr_at_fmr() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        gen = np.round(rng.normal(0.4, 0.1, 50), 2)  # rounding makes ties
        imp = np.round(rng.normal(0.8, 0.1, 900), 2)
        for target in (0.0, 1e-3, 1e-2, 0.1):
            want, _ = fnmr_at_fmr(gen, imp, target)
            got = rb.fnmr_at_fmr_weighted(gen, np.ones_like(gen), imp, np.ones_like(imp), target)
            assert got == pytest.approx(want)


def test_pair_scores_end_to_end_counts_failed_photos() -> None:
    v = [np.zeros(4), np.full(4, 0.1), None, np.ones(4)]
    labels = ["a", "a", "a", "b"]
    only = rb.pair_scores(v, labels, end_to_end=False)
    e2e = rb.pair_scores(v, labels, end_to_end=True)
    assert only.genuine.size == 1 and only.impostor.size == 2
    assert e2e.genuine.size == 3 and e2e.impostor.size == 3
    assert np.count_nonzero(e2e.genuine == rb.FAILED) == 2  # both genuine pairs of the failed photo
    assert fnmr_at_fmr(e2e.genuine, e2e.impostor, 0.0)[0] == pytest.approx(2 / 3)
    assert e2e.identities == 2 and set(e2e.impostor_a) | set(e2e.impostor_b) == {0, 1}


def test_rank1_end_to_end_counts_a_failed_probe_as_a_miss() -> None:
    v = [np.zeros(2), np.full(2, 0.1), None, np.full(2, 5.0), np.full(2, 5.1)]
    rate, probes = rb.rank1_end_to_end(v, ["a", "a", "a", "b", "b"])
    assert probes == 5 and rate == pytest.approx(4 / 5)


def test_bootstrap_interval_is_deterministic_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(30), 4)
    centres = rng.normal(0, 1, (30, 8))
    vecs = [centres[i] + rng.normal(0, 0.35, 8) for i in labels]
    sc = rb.pair_scores(vecs, labels, end_to_end=True)
    point, _ = fnmr_at_fmr(sc.genuine, sc.impostor, 1e-2)
    lo, hi = rb.bootstrap_fnmr_at_fmr(sc, 1e-2, n_boot=200, seed=5)
    assert (lo, hi) == rb.bootstrap_fnmr_at_fmr(sc, 1e-2, n_boot=200, seed=5)
    assert 0.0 <= lo <= point <= hi <= 1.0 and hi > lo


def test_yaw_sign_and_bins() -> None:
    assert rb.yaw_degrees(PTS) == pytest.approx(0.0, abs=1e-9)
    turned = PTS.copy()
    turned[4, 0] += 20  # nose towards the image's right
    assert rb.yaw_degrees(turned) > 10
    assert rb.yaw_bin(5.0) == "yaw 0-10" and rb.yaw_bin(-25.0) == "yaw 20-30" and rb.yaw_bin(70.0) == "yaw >=30"


@pytest.mark.parametrize("fn", [rb.occlude_sunglasses, rb.occlude_mask, rb.occlude_hand])
def test_occlusions_draw_on_a_copy_in_the_right_place(fn: object) -> None:
    img = _photo()
    before = img.copy()
    out = fn(img, PTS)  # type: ignore[operator]
    assert np.array_equal(img, before)
    assert out.shape == img.shape and out.dtype == np.uint8
    changed = np.any(out != img, axis=2)
    ys, _ = np.nonzero(changed)
    assert changed.sum() > 500
    if fn is rb.occlude_sunglasses:
        assert out[80, 71].max() < 40 and out[80, 129].max() < 40 and ys.max() < 118
    if fn is rb.occlude_mask:
        assert ys.min() > 85 and changed[140, 100]
    if fn is rb.occlude_hand:
        assert changed[130, 70] and not changed[80, 140]


def test_downscale_jpeg_and_document() -> None:
    img = _photo()
    small = rb.downscale_face(img, 100.0, 40.0)
    assert small.shape == (80, 80, 3)
    assert rb.downscale_face(img, 30.0, 40.0).shape == img.shape
    for q in (30, 10):
        out = rb.jpeg(img, q)
        assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out, img)
    doc = rb.document_probe(img, PTS, 100.0, seed=1)
    assert doc.dtype == np.uint8 and doc.ndim == 3 and doc.shape[2] == 3
    assert doc.shape[0] == round(round(200 * 0.56) * 2.5)  # printed at 56 px face width, shot at 2.5x
    assert np.array_equal(doc, rb.document_probe(img, PTS, 100.0, seed=1))
