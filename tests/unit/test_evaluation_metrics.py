"""Accuracy metrics on synthetic distances and embeddings whose answers are known by construction.

No face models are loaded: these run in milliseconds.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from facewarden.evaluation import (
    det_points,
    eer,
    fnmr_at_fmr,
    pair_distances,
    rank1_leave_one_out,
    rates_at_threshold,
    scan_dataset,
)
from facewarden.evaluation.runner import DatasetError, EmbeddedDataset, summarise

# Hand-computed example. Sorted thresholds and rates (FMR = impostors <= t, FNMR = genuines > t):
#   t     0.2   0.3   0.4   0.5   0.6   0.7   0.8   0.9   1.0
#   FMR   0     0.2   0.2   0.2   0.4   0.4   0.6   0.8   1.0
#   FNMR  0.75  0.75  0.5   0.25  0.25  0     0     0     0
GEN = [0.7, 0.2, 0.5, 0.4]
IMP = [0.9, 0.3, 1.0, 0.6, 0.8]


def test_importing_the_metrics_loads_no_face_pipeline():
    code = ("import sys, facewarden.evaluation; "
            "print(sorted(m for m in ('dlib', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_rates_at_threshold_hand_computed():
    assert rates_at_threshold(GEN, IMP, 0.5) == pytest.approx((0.2, 0.25))
    assert rates_at_threshold(GEN, IMP, 0.6) == pytest.approx((0.4, 0.25))
    # A distance equal to the threshold is a match (<=).
    assert rates_at_threshold(GEN, IMP, 0.7) == pytest.approx((0.4, 0.0))
    assert rates_at_threshold(GEN, IMP, 0.0) == (0.0, 1.0)
    assert rates_at_threshold(GEN, IMP, 5.0) == (1.0, 0.0)


def test_det_points_hand_computed():
    thr, fmr, fnmr = det_points(GEN, IMP)
    # First point: just below every distance, nothing accepted.
    assert thr[0] < 0.2 and thr[0] == pytest.approx(0.2)
    np.testing.assert_allclose(thr[1:], [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    np.testing.assert_allclose(fmr, [0, 0, 0.2, 0.2, 0.2, 0.4, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_allclose(fnmr, [1, 0.75, 0.75, 0.5, 0.25, 0.25, 0, 0, 0, 0])
    assert np.all(np.diff(fmr) >= 0) and np.all(np.diff(fnmr) <= 0)


def test_det_points_ties_between_sets_make_one_threshold():
    thr, fmr, fnmr = det_points([0.5, 0.5, 0.2], [0.5, 0.9])
    np.testing.assert_allclose(thr[1:], [0.2, 0.5, 0.9])
    np.testing.assert_allclose(fmr, [0, 0, 0.5, 1])
    np.testing.assert_allclose(fnmr, [1, 2 / 3, 0, 0])


def test_eer_interpolates_between_crossing_points():
    # diff = FMR - FNMR is -0.05 at t=0.5 and +0.15 at t=0.6: a quarter of the way.
    rate, t = eer(GEN, IMP)
    assert rate == pytest.approx(0.25)
    assert t == pytest.approx(0.525)


def test_eer_exact_crossing():
    rate, t = eer([0.1, 0.3], [0.2, 0.4])
    assert rate == pytest.approx(0.5)
    assert t == pytest.approx(0.2)


def test_perfect_separation_gives_zero_errors():
    rng = np.random.default_rng(1)
    gen = rng.uniform(0.1, 0.4, 500)
    imp = rng.uniform(0.6, 1.2, 5000)
    rate, t = eer(gen, imp)
    assert rate == 0.0
    assert t == pytest.approx(gen.max())
    for target in (1e-2, 1e-3, 0.0):
        fnmr, thr = fnmr_at_fmr(gen, imp, target)
        assert fnmr == 0.0
        assert thr == pytest.approx(gen.max())  # the smallest threshold reaching FNMR 0
        assert rates_at_threshold(gen, imp, thr) == (0.0, 0.0)


def test_fnmr_at_fmr_hand_computed():
    assert fnmr_at_fmr(GEN, IMP, 0.2) == pytest.approx((0.25, 0.5))
    assert fnmr_at_fmr(GEN, IMP, 0.1) == pytest.approx((0.75, 0.2))
    assert fnmr_at_fmr(GEN, IMP, 0.5) == pytest.approx((0.0, 0.7))
    assert fnmr_at_fmr(GEN, IMP, 1.0) == pytest.approx((0.0, 0.7))


def test_fnmr_at_fmr_when_nothing_can_be_accepted():
    fnmr, thr = fnmr_at_fmr([0.5, 0.6], [0.1, 0.7], 0.0)
    assert fnmr == 1.0
    assert thr < 0.1
    assert rates_at_threshold([0.5, 0.6], [0.1, 0.7], thr) == (0.0, 1.0)


def test_overlapping_uniform_distributions_match_the_analytic_values():
    # genuine ~ U(0, 1), impostor ~ U(0.5, 1.5): FMR(t) = t - 0.5, FNMR(t) = 1 - t on [0.5, 1],
    # so EER = 0.25 at t = 0.75, and FMR = 1% at t = 0.51 where FNMR = 0.49.
    rng = np.random.default_rng(12345)
    gen = rng.uniform(0.0, 1.0, 40_000)
    imp = rng.uniform(0.5, 1.5, 40_000)
    rate, t = eer(gen, imp)
    assert rate == pytest.approx(0.25, abs=0.01)
    assert t == pytest.approx(0.75, abs=0.01)
    fnmr, thr = fnmr_at_fmr(gen, imp, 1e-2)
    assert fnmr == pytest.approx(0.49, abs=0.01)
    assert thr == pytest.approx(0.51, abs=0.01)
    fmr_t, _ = rates_at_threshold(gen, imp, thr)
    assert fmr_t <= 1e-2


def test_invalid_inputs_are_refused():
    with pytest.raises(ValueError):
        eer([], [0.5])
    with pytest.raises(ValueError):
        rates_at_threshold([0.1], [], 0.5)
    with pytest.raises(ValueError):
        det_points([0.1, float("nan")], [0.5])
    with pytest.raises(ValueError):
        fnmr_at_fmr([0.1], [0.5], 1.5)
    with pytest.raises(ValueError):
        rank1_leave_one_out(np.zeros((3, 4)), ["a", "b"])


def _clustered_embeddings():
    """Three identities x 3 images around far-apart centres, one singleton; one image of 'a' sits
    inside 'b''s cluster, so it alone is misidentified."""
    dim = 128
    eye = np.eye(dim)
    emb, labels = [], []
    for k, name in enumerate("abc"):
        for j in range(3):
            emb.append(10.0 * eye[k] + 0.1 * eye[10 + 3 * k + j])
            labels.append(name)
    emb[2] = 10.0 * eye[1] + 3.0 * eye[60]  # an 'a' image next to 'b's, but not between them
    emb.append(-10.0 * eye[5])  # 'd': one image only: a gallery distractor, never a probe
    labels.append("d")
    return np.asarray(emb, dtype=np.float32), labels


def test_rank1_leave_one_out_one_wrong_neighbour():
    emb, labels = _clustered_embeddings()
    rate, probes = rank1_leave_one_out(emb, labels)
    assert probes == 9
    assert rate == pytest.approx(8 / 9)


def test_rank1_all_correct_and_numeric_labels():
    emb, labels = _clustered_embeddings()
    emb[2] = 10.0 * np.eye(128)[0] + 0.1 * np.eye(128)[100]
    rate, probes = rank1_leave_one_out(emb, [ord(x) for x in labels])
    assert (rate, probes) == (1.0, 9)


def test_rank1_singleton_distractor_counts_against_the_probe():
    eye = np.eye(4)
    emb = np.array([eye[0], eye[0] * 3, eye[0] * 1.1])  # 'x' at 1 and 3; singleton 'y' at 1.1
    rate, probes = rank1_leave_one_out(emb, ["x", "x", "y"])
    assert probes == 2
    assert rate == 0.0  # both 'x' images see 'y' first


def test_rank1_without_repeat_identities_has_no_probes():
    rate, probes = rank1_leave_one_out(np.eye(3), ["a", "b", "c"])
    assert probes == 0 and np.isnan(rate)


def test_pair_distances_splits_genuine_and_impostor():
    emb = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0], [6.0, 8.0]])
    gen, imp = pair_distances(emb, ["p", "q", "p", "q"])
    np.testing.assert_allclose(sorted(gen), [1.0, 5.0])
    np.testing.assert_allclose(sorted(imp), sorted([5.0, np.hypot(3, 3), 10.0, np.hypot(6, 7)]))
    n = 4
    assert gen.size + imp.size == n * (n - 1) // 2


# -- runner pieces that need no face models ---------------------------------------------------------


def test_scan_dataset_layouts(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ["subject01.happy", "subject01.sad", "subject02.normal", ".hidden", "README.txt"]:
        (flat / name).write_bytes(b"x")
    got = scan_dataset(flat)
    assert [(p.name, lab) for p, lab in got] == [
        ("subject01.happy", "subject01"), ("subject01.sad", "subject01"), ("subject02.normal", "subject02")]

    tree = tmp_path / "tree"
    for person, files in {"s1": ["1.pgm", "2.pgm"], "s2": ["1.pgm", ".DS_Store"]}.items():
        (tree / person).mkdir(parents=True)
        for f in files:
            (tree / person / f).write_bytes(b"x")
    (tree / "README.md").write_bytes(b"x")
    (tree / "empty").mkdir()
    got = scan_dataset(tree)
    assert [(p.relative_to(tree).as_posix(), lab) for p, lab in got] == [
        ("s1/1.pgm", "s1"), ("s1/2.pgm", "s1"), ("s2/1.pgm", "s2")]
    with pytest.raises(DatasetError):  # no files at the top level but the README
        scan_dataset(tree, layout="prefix")


def test_scan_dataset_errors(tmp_path):
    with pytest.raises(DatasetError):
        scan_dataset(tmp_path / "missing")
    with pytest.raises(DatasetError):
        scan_dataset(tmp_path)  # empty
    with pytest.raises(ValueError):
        scan_dataset(tmp_path, layout="csv")


def test_summarise_report_and_det_png(tmp_path):
    emb, labels = _clustered_embeddings()
    data = EmbeddedDataset(root=tmp_path / "synthetic", images=len(labels) + 1, identities=4,
                           embeddings=emb, labels=labels,
                           failures=[{"file": "a/bad.jpg", "code": "no_face"}])
    out = tmp_path / "det" / "curve.png"
    report = summarise(data, threshold=0.5, model="test-model@0", det_png=out)
    assert set(report) == {
        "eer", "eer_threshold", "fnmr_at_fmr", "threshold", "fmr_at_threshold", "fnmr_at_threshold",
        "rank1", "rank1_probes", "images", "identities", "failed_to_enrol", "failures",
        "genuine_pairs", "impostor_pairs", "model", "dataset"}
    assert set(report["fnmr_at_fmr"]) == {"1e-2", "1e-3"}
    assert report["genuine_pairs"] == 9 and report["impostor_pairs"] == 45 - 9
    assert report["rank1"] == pytest.approx(8 / 9) and report["rank1_probes"] == 9
    assert report["failed_to_enrol"] == 1 and report["failures"][0]["code"] == "no_face"
    json.dumps(report, allow_nan=False)  # plain floats and ints only
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summarise_needs_genuine_and_impostor_pairs(tmp_path):
    data = EmbeddedDataset(root=tmp_path, images=2, identities=2, embeddings=np.eye(2, 128),
                           labels=["a", "b"])
    with pytest.raises(DatasetError):
        summarise(data, threshold=0.5, model="m")
