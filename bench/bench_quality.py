"""Face quality (ISO/IEC 29794-1 style): does the quality score predict matching failure, and what does the gate
built on it refuse?

Tune part: LFW people with an even index (sorted by name) + faceapi-bbt. Report part: LFW people with an odd index
+ human + compreface + opencv4nodejs-twd + openface. The score's weights (vision/quality.py) were fitted on the tune
part only (`--fit` prints that fit again); the report part is held out.

Prints one JSON object: the error-versus-reject curve (FNMR at the threshold after rejecting the lowest-quality x %
of genuine comparisons, pair quality = the lower of the two photos, against the mean of `--draws` random rejections
of the same x %, and against the old sharpness measure), and failure to enrol under the old gate (Laplacian
sharpness >= 25) and the new one, with FMR and FNMR over the photos each gate lets in. Writes the ERC plot to --plot.

Usage:  .venv/bin/python bench/bench_quality.py [--plot /tmp/erc.png] [--cache /tmp/fw_quality_cache.npz] [--fit]
Each photo is measured once and cached (embeddings and quality features, never printed) in --cache.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from _common import add_faces_arg, emit, log, machine, require_faces
from facewarden.evaluation import quality as ev
from facewarden.imaging import ImageLimits, decode_image
from facewarden.vision import quality as vq
from facewarden.vision.engine import FaceEngine

TUNE_SETS = ("faceapi-bbt",)
REPORT_SETS = ("human", "compreface", "opencv4nodejs-twd", "openface")
FRACTIONS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
OLD_MIN_SHARPNESS = 25.0


def split(ps: ev.PhotoSet) -> dict[str, np.ndarray]:
    lfw = sorted({p for p in ps.people if p.startswith("lfw/")})
    even = {p for k, p in enumerate(lfw) if k % 2 == 0}
    tune = np.array([p in even or p.split("/")[0] in TUNE_SETS for p in ps.people])
    return {"tune": tune, "report": ~tune}


def fte(codes: list[str], part: np.ndarray, lfw: np.ndarray) -> dict[str, Any]:
    sel = [c for c, m in zip(codes, part, strict=True) if m]
    lfw_sel = [c for c, m, is_lfw in zip(codes, part, lfw, strict=True) if m and is_lfw]
    quality_codes = {"face_blurred", "face_too_small", "face_low_quality"}

    def rate(cs: list[str], which: set[str] | None) -> float:
        return round(sum(1 for c in cs if c and (which is None or c in which)) / max(len(cs), 1), 4)

    return {"photos": len(sel), "fte_all_codes": rate(sel, None), "fte_quality_codes": rate(sel, quality_codes),
            "lfw_photos": len(lfw_sel), "lfw_fte_quality_codes": rate(lfw_sel, quality_codes),
            "by_code": dict(Counter(c for c in sel if c))}


def accuracy(ps: ev.PhotoSet, usable: np.ndarray, threshold: float) -> dict[str, Any]:
    """FNMR and FMR at the threshold over the photos a gate lets in (one face each; multi-face photos kept, as
    another gate handles them)."""
    a, b = ev.genuine_pairs(ps.people, usable)
    gen = ev.pair_distances(ps, a, b)
    imp = ev.impostor_distances(ps, usable)
    return {"genuine_pairs": len(gen), "impostor_pairs": len(imp), "fnmr": round(float((gen > threshold).mean()), 4),
            "fmr": round(float((imp <= threshold).mean()), 6)}


def plot(curves: dict[str, dict[str, list[dict[str, float]]]], threshold: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(6 * len(curves), 4.5), sharey=False)
    for ax, (part, c) in zip(np.atleast_1d(axes), curves.items(), strict=True):
        x = [100 * p["rejected"] for p in c["quality"]]
        ax.plot(x, [100 * p["fnmr_quality"] for p in c["quality"]], "o-", label="quality score (vision/quality.py)")
        ax.plot(x, [100 * p["fnmr_random"] for p in c["quality"]], "k--", label="random rejection (mean)")
        ax.plot(x, [100 * p["fnmr_quality"] for p in c["old_sharpness"]], "s:", label="old gate: Laplacian sharpness")
        ax.set_title(f"{part} part: error versus reject")
        ax.set_xlabel("genuine comparisons rejected (lowest quality first), %")
        ax.set_ylabel(f"FNMR at distance {threshold}, %")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def refit(ps: ev.PhotoSet, tune: np.ndarray, threshold: float) -> dict[str, Any]:
    """The fit behind vision/quality.py's weights: per tune photo, the share of its genuine comparisons that match,
    weighted by their number, on detector score, |pitch - frontal| and contrast (standardised as in vision/quality)."""
    a, b = ev.genuine_pairs(ps.people, tune)
    d = ev.pair_distances(ps, a, b)
    n, fails = np.zeros(len(ps.paths)), np.zeros(len(ps.paths))
    for idx in (a, b):
        np.add.at(n, idx, 1)
        np.add.at(fails, idx, d > threshold)
    rows = np.flatnonzero(n > 0)
    x = np.array([ps.features(i).vector() for i in rows])
    z = np.clip((x - np.array(vq.MEANS)) / np.array(vq.SCALES), -4.0, 4.0)
    cols = [vq.FEATURES.index(f) for f in ("detector_score", "pitch_dev", "contrast")]
    w, bias = ev.fit_logistic(z[:, cols], 1 - fails[rows] / n[rows], n[rows], l2=10.0)
    weights = np.zeros(len(vq.FEATURES))
    weights[cols] = w
    return {"features": list(vq.FEATURES), "weights": [round(float(v), 3) for v in weights], "bias": round(bias, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_faces_arg(ap)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/fw_quality_cache.npz"))
    ap.add_argument("--plot", type=Path, default=Path("/tmp/erc.png"))
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--draws", type=int, default=500, help="random rejections averaged per point")
    ap.add_argument("--fit", action="store_true", help="refit the weights on the tune part and print them")
    args = ap.parse_args()
    root = require_faces(args.faces, "lfw", *TUNE_SETS, *REPORT_SETS)
    t0 = time.perf_counter()
    engine = FaceEngine()
    photos = ev.labelled_photos(root, ("lfw", *TUNE_SETS, *REPORT_SETS))
    limits = ImageLimits(64 * 1024 * 1024, 80_000_000)  # the 36 MP compreface photos
    ps = ev.measure_photos(engine, root, photos, args.cache, lambda b: decode_image(b, limits), log)
    log(f"{len(photos)} photos measured in {time.perf_counter() - t0:.0f} s")
    q = np.array([vq.quality_score(ps.features(i)) if ps.ok[i] else 0.0 for i in range(len(ps.paths))])
    sharp = ps.feats[:, 3]
    lfw = np.array([p.startswith("lfw/") for p in ps.paths])
    old = ev.gate_codes(ps, min_face_px=engine.min_face_px, min_sharpness=OLD_MIN_SHARPNESS, min_quality=None)
    new = ev.gate_codes(ps, min_face_px=engine.min_face_px, min_sharpness=engine.min_sharpness,
                        min_quality=engine.min_quality)
    out: dict[str, Any] = {
        "benchmark": "quality", "threshold": args.threshold, "draws": args.draws,
        "tune_sets": ["lfw (even person index)", *TUNE_SETS], "report_sets": ["lfw (odd person index)", *REPORT_SETS],
        "gate": {"old": {"min_sharpness": OLD_MIN_SHARPNESS, "min_face_px": engine.min_face_px},
                 "new": {"min_sharpness": engine.min_sharpness, "min_quality": engine.min_quality,
                         "min_face_px": engine.min_face_px}},
        "parts": {}, "machine": machine()}
    curves: dict[str, dict[str, list[dict[str, float]]]] = {}
    for part, mask in split(ps).items():
        a, b = ev.genuine_pairs(ps.people, mask & ps.ok)
        d = ev.pair_distances(ps, a, b)
        erc = ev.error_versus_reject(d, np.minimum(q[a], q[b]), args.threshold, FRACTIONS, draws=args.draws)
        erc_old = ev.error_versus_reject(d, np.minimum(sharp[a], sharp[b]), args.threshold, FRACTIONS,
                                         draws=args.draws)
        curves[part] = {"quality": erc, "old_sharpness": erc_old}
        keep_old = mask & np.array([c in ("", "multiple_faces") for c in old])
        keep_new = mask & np.array([c in ("", "multiple_faces") for c in new])
        out["parts"][part] = {
            "photos": int(mask.sum()), "genuine_pairs": len(d),
            "quality_percentiles_1_5_50": [round(float(v), 3) for v in np.percentile(q[mask], [1, 5, 50])],
            "erc_quality": erc, "erc_gain_quality": ev.erc_area_gain(erc),
            "erc_gain_old_sharpness": ev.erc_area_gain(erc_old),
            "fte_old_gate": fte(old, mask, lfw), "fte_new_gate": fte(new, mask, lfw),
            "accuracy_old_gate": accuracy(ps, keep_old, args.threshold),
            "accuracy_new_gate": accuracy(ps, keep_new, args.threshold)}
    if args.fit:
        out["fit_on_tune"] = refit(ps, split(ps)["tune"] & ps.ok, args.threshold)
    plot(curves, args.threshold, args.plot)
    out["plot"] = str(args.plot)
    out["elapsed_s"] = round(time.perf_counter() - t0, 1)
    log(f"ERC plot written to {args.plot}")
    emit(out)


if __name__ == "__main__":
    main()
