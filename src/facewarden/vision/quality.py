"""Face image quality: a score in [0, 1] that predicts whether a face will match, and the gate built on it.

Pure numpy (no dlib): the engine measures the features on the 5 landmarks and the aligned chip, this module turns
them into a score. The score is a logistic model over four transparent features, fitted on held-apart data
(`bench/bench_quality.py`, tune part: LFW people with an even index + faceapi-bbt) to the probability that a
genuine comparison of the photo succeeds at the default threshold:

- resolution: inter-ocular distance in pixels of the original photo (log2): faces blown up from few pixels fail;
- pose: |yaw| and |pitch - frontal| from the nose's position relative to the eye line (5-point landmarks);
- sharpness: Laplacian variance of the aligned chip divided by its intensity variance (contrast-normalised,
  so a soft but well-resolved news photo is not mistaken for a blurred one);
- contrast: the standard deviation of the chip's intensities (dark or washed-out faces).

The gate (`gate_failure`) refuses only what is truly unusable: a tiny face (the engine's `min_face_px`), a chip
with almost no detail (`face_blurred`: the raw Laplacian variance under `HARD_MIN_SHARPNESS`), or a quality under
`QUALITY_FLOOR`, below which genuine matches collapse on the tune data (`face_low_quality`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Fitted by bench/bench_quality.py --fit on the tune part (see the module docstring); standardised features.
FEATURES = ("detector_score", "abs_yaw", "pitch_dev", "log2_iod", "contrast")
MEANS = (1.5, 0.08, 0.08, 5.3, 50.0)
SCALES = (0.6, 0.07, 0.07, 0.2, 12.0)
WEIGHTS = (0.402, 0.0, -0.155, 0.0, 0.059)  # yaw and resolution got no weight on the tune data (see README)
BIAS = 1.751
FRONTAL_PITCH = 0.78  # nose-to-eye-line distance over inter-ocular distance of a frontal face (tune median)
MAX_LOG2_IOD = 6.0  # 64 px between the eyes is resolution enough: more does not help


QUALITY_FLOOR = 0.5  # the score is a predicted match probability: below 0.5 a failure is more likely than a match
HARD_MIN_SHARPNESS = 4.8  # raw Laplacian variance of the chip: a Gaussian blur of 6 px on a portrait gives 4.5;
# the softest LFW photo (5.0) still matches 2 of its 3 genuine comparisons


@dataclass(frozen=True)
class QualityFeatures:
    """What the score is made of, measured once per face (none of it identifies the person)."""

    iod_px: float  # inter-ocular distance in pixels of the original photo
    yaw: float  # nose offset along the eye line, in inter-ocular distances (0: frontal)
    pitch: float  # nose distance below the eye line, in inter-ocular distances
    sharpness: float  # Laplacian variance of the aligned grey chip
    contrast: float  # standard deviation of the chip's grey levels
    brightness: float  # mean grey level of the chip
    detector_score: float

    def vector(self) -> np.ndarray:
        """The model's raw inputs, in the order of FEATURES."""
        return np.array([self.detector_score, abs(self.yaw), abs(self.pitch - FRONTAL_PITCH),
                         min(math.log2(max(self.iod_px, 1.0)), MAX_LOG2_IOD), self.contrast], dtype=np.float64)


def laplacian_variance(gray: np.ndarray) -> float:
    g = gray.astype(np.float32)
    lap = (-4 * g[1:-1, 1:-1] + g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:])
    return float(lap.var())


def measure(landmarks: np.ndarray, chip_gray: np.ndarray, detector_score: float = 0.0) -> QualityFeatures:
    """Features from dlib's 5 landmarks (rows: two corners of one eye, two of the other, the nose base, in
    original pixels) and the aligned grey chip."""
    pts = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    eye_a, eye_b, nose = pts[0:2].mean(axis=0), pts[2:4].mean(axis=0), pts[4]
    axis = eye_b - eye_a
    iod = float(np.hypot(*axis))
    if iod < 1e-6:
        return QualityFeatures(0.0, 0.0, FRONTAL_PITCH, laplacian_variance(chip_gray),
                               float(chip_gray.std()), float(chip_gray.mean()), detector_score)
    unit = axis / iod
    rel = nose - (eye_a + eye_b) / 2
    yaw = float(rel @ unit) / iod
    pitch = abs(float(rel[0] * unit[1] - rel[1] * unit[0])) / iod
    return QualityFeatures(iod, yaw, pitch, laplacian_variance(chip_gray), float(chip_gray.std()),
                           float(chip_gray.mean()), detector_score)


def score_vector(x: np.ndarray, weights: tuple[float, ...] = WEIGHTS, bias: float = BIAS) -> np.ndarray:
    """The logistic model on raw feature rows (n, 5) or one row: values in (0, 1)."""
    z = (np.asarray(x, dtype=np.float64) - np.array(MEANS)) / np.array(SCALES)
    logit = np.clip(z, -4.0, 4.0) @ np.array(weights) + bias
    return 1.0 / (1.0 + np.exp(-logit))


def quality_score(f: QualityFeatures) -> float:
    """Predicted probability, in [0, 1], that a genuine comparison with this face succeeds."""
    if f.iod_px <= 0:
        return 0.0
    return round(float(score_vector(f.vector())), 4)


def main_cause(f: QualityFeatures) -> str:
    """The feature that pulls the score down most, in words, for the refusal message."""
    z = (f.vector() - np.array(MEANS)) / np.array(SCALES)
    pull = np.clip(z, -4.0, 4.0) * np.array(WEIGHTS)
    words = {"detector_score": "the face does not look like a clear frontal face", "abs_yaw": "the head is "
             "turned sideways", "pitch_dev": "the head is tilted up or down", "log2_iod": "the face is too small "
             "in the photo", "contrast": "the face is too dark or washed out"}
    return words[FEATURES[int(np.argmin(pull))]]


def gate_failure(f: QualityFeatures, quality: float, *, floor: float = QUALITY_FLOOR,
                 min_sharpness: float = HARD_MIN_SHARPNESS) -> tuple[str, str] | None:
    """None when the face is usable, else (error code, message). The size check stays in the engine."""
    if f.sharpness < min_sharpness:
        return "face_blurred", (f"The face is too blurred to recognise (sharpness {f.sharpness:.1f}, at least "
                                f"{min_sharpness:g} needed). Hold the camera still, focus and retake the photo.")
    if quality < floor:
        return "face_low_quality", (f"The face is unlikely to be recognised (quality {quality:.2f}, at least "
                                    f"{floor:g} needed): {main_cause(f)}. Retake a frontal, well-lit photo "
                                    "in which the face is large and sharp.")
    return None
