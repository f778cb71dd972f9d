"""The quality score and its gate (vision/quality.py) and the error-versus-reject curve (evaluation/quality.py), on
made-up numbers: no dlib, no photos."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from facewarden import errors
from facewarden.evaluation.quality import erc_area_gain, error_versus_reject, fit_logistic, genuine_pairs
from facewarden.vision import quality as q

# A frontal face: eye corners level, the nose base centred below the eyes at the frontal pitch.
FRONTAL = np.array([[140.0, 100.0], [120.0, 100.0], [60.0, 100.0], [80.0, 100.0], [100.0, 100.0 + 0.78 * 60]])
CHIP = np.tile(np.linspace(40, 200, 150), (150, 1)) + np.random.default_rng(0).normal(0, 20, (150, 150))


def _face(**kw: float) -> q.QualityFeatures:
    base = q.QualityFeatures(iod_px=60.0, yaw=0.0, pitch=0.78, sharpness=200.0, contrast=50.0, brightness=120.0,
                             detector_score=1.5)
    return replace(base, **kw)


def test_landmark_pose_and_size() -> None:
    f = q.measure(FRONTAL, CHIP, 1.2)
    assert f.iod_px == pytest.approx(60.0) and f.yaw == pytest.approx(0.0) and f.pitch == pytest.approx(0.78)
    assert f.detector_score == 1.2 and f.sharpness > 100 and 0 < f.contrast < 128
    turned = FRONTAL.copy()
    turned[4, 0] += 15  # the nose moves a quarter of the eye distance along the eye line
    assert q.measure(turned, CHIP).yaw == pytest.approx(-0.25)  # the sign says which way
    rotated = FRONTAL @ np.array([[0.0, 1.0], [-1.0, 0.0]])  # in-plane rotation changes neither yaw nor pitch
    g = q.measure(rotated, CHIP)
    assert g.yaw == pytest.approx(0.0, abs=1e-9) and g.pitch == pytest.approx(0.78)
    assert q.quality_score(q.measure(np.zeros((5, 2)), CHIP)) == 0.0  # degenerate landmarks: no quality


def test_the_score_is_a_probability_and_moves_the_right_way() -> None:
    good = q.quality_score(_face())
    assert 0.0 <= good <= 1.0
    assert q.quality_score(_face(detector_score=0.2)) < good < q.quality_score(_face(detector_score=2.5))
    assert q.quality_score(_face(pitch=0.5)) < good and q.quality_score(_face(pitch=1.1)) < good
    assert q.quality_score(_face(contrast=20.0)) < good
    # Extreme inputs are clipped: the score never leaves [0, 1] and never becomes NaN.
    for f in (_face(detector_score=1e9, contrast=1e9), _face(detector_score=-1e9, pitch=-1e9, contrast=0.0)):
        assert 0.0 <= q.quality_score(f) <= 1.0


def test_the_gate_refuses_only_the_unusable_with_a_cause() -> None:
    assert q.gate_failure(_face(), q.quality_score(_face())) is None
    soft = _face(sharpness=12.0)  # a soft LFW photo: refused by the old gate (25), it matches fine
    assert q.gate_failure(soft, q.quality_score(soft)) is None
    code, message = q.gate_failure(_face(sharpness=3.0), 0.9) or ("", "")
    assert code == "face_blurred" and "blurred" in message
    bad = _face(detector_score=-1.0, pitch=1.3)
    code, message = q.gate_failure(bad, q.quality_score(bad)) or ("", "")
    assert code == "face_low_quality" and ("frontal" in message or "tilted" in message)
    for c in ("face_blurred", "face_too_small", "face_low_quality"):
        assert c in errors.CATALOGUE


def test_error_versus_reject_beats_random_only_when_quality_predicts_failure() -> None:
    rng = np.random.default_rng(1)
    dist = rng.uniform(0.2, 0.7, 2000)
    fractions = [0.0, 0.1, 0.2]
    informative = error_versus_reject(dist, -dist + rng.normal(0, 0.05, 2000), 0.5, fractions, draws=50)
    assert informative[0]["fnmr_quality"] == informative[0]["fnmr_random"]
    assert informative[2]["fnmr_quality"] < informative[1]["fnmr_quality"] < informative[0]["fnmr_quality"]
    assert all(abs(p["fnmr_random"] - informative[0]["fnmr_random"]) < 0.02 for p in informative)
    assert erc_area_gain(informative) > 0.05
    noise = error_versus_reject(dist, rng.random(2000), 0.5, fractions, draws=50)
    assert abs(erc_area_gain(noise)) < 0.02


def test_pairs_and_the_logistic_fit() -> None:
    a, b = genuine_pairs(["x", "y", "x", "x", "y"], np.array([True, True, True, False, True]))
    assert sorted(zip(a.tolist(), b.tolist(), strict=True)) == [(0, 2), (1, 4)]
    rng = np.random.default_rng(2)
    x = rng.normal(size=(500, 2))
    y = (1 / (1 + np.exp(-(2 * x[:, 0] - 1 * x[:, 1] + 0.5))) > rng.random(500)).astype(float)
    w, bias = fit_logistic(x, y, np.ones(500))
    assert w[0] > 1 and w[1] < -0.4 and 0 < bias < 1.2
