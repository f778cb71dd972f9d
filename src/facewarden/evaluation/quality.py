"""Does the quality score predict matching failure? ISO/IEC 29794-1's error-versus-reject curve, and the data for it.

`measure_photos` runs the pipeline without its gate over labelled photos (`<set>/<person>/<n>.<ext>`) and caches
per photo the embedding and the quality features in an .npz (never in the repository: pass a path under /tmp);
`error_versus_reject` drops the lowest-quality x % of genuine comparisons (pair quality = the lower of the two)
and compares the FNMR left at the threshold with dropping x % at random; `fit_logistic` fits the score's weights.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facewarden.vision.quality import QualityFeatures

if TYPE_CHECKING:
    from facewarden.vision.engine import FaceEngine

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".pgm", ".bmp"}


@dataclass
class PhotoSet:
    """Measured photos, row-aligned. `ok` False: no face found (the other rows hold zeros)."""

    paths: list[str]
    people: list[str]
    ok: np.ndarray  # bool (n,)
    n_faces: np.ndarray  # int (n,)
    box_px: np.ndarray  # int (n,): the smaller side of the chosen face box
    feats: np.ndarray  # float (n, 7): QualityFeatures fields in order
    emb: np.ndarray  # float32 (n, 128)

    def features(self, i: int) -> QualityFeatures:
        return QualityFeatures(*(float(v) for v in self.feats[i]))

    def subset(self, mask: np.ndarray) -> PhotoSet:
        idx = np.flatnonzero(mask)
        return PhotoSet([self.paths[i] for i in idx], [self.people[i] for i in idx], self.ok[idx],
                        self.n_faces[idx], self.box_px[idx], self.feats[idx], self.emb[idx])


def labelled_photos(root: Path, folders: Iterable[str]) -> list[tuple[str, str]]:
    """(relative path, person) of every photo in `<folder>/<person>/`, `misc/` left out, sorted."""
    out = []
    for folder in folders:
        for person in sorted(p for p in (root / folder).iterdir() if p.is_dir() and p.name != "misc"):
            out += [(str(f.relative_to(root)), f"{folder}/{person.name}") for f in sorted(person.iterdir())
                    if f.suffix.lower() in IMAGE_SUFFIXES]
    return out


def _choose(found: Sequence[tuple[object, float]], shape: tuple[int, ...], centred: bool) -> int:
    """The labelled face: the largest (found is largest first), or for centred sets (LFW) the nearest the centre."""
    if not centred or len(found) == 1:
        return 0
    cy, cx = shape[0] / 2, shape[1] / 2

    def off(i: int) -> float:
        r = found[i][0]
        return float(np.hypot((r.left() + r.right()) / 2 - cx, (r.top() + r.bottom()) / 2 - cy))  # type: ignore[attr-defined]

    return min(range(len(found)), key=off)


def measure_photos(engine: FaceEngine, root: Path, photos: list[tuple[str, str]], cache: Path,
                   decode: Callable[[bytes], np.ndarray], log: Callable[[str], None] = lambda _m: None) -> PhotoSet:
    """Measure each photo once; the cache is keyed by relative path and the engine's detection settings."""
    settings = f"{engine.detector_kind}/{engine.detect_max_side}/{engine.model.version}"
    key = hashlib.sha256(settings.encode()).hexdigest()[:12]
    store: dict[str, tuple[bool, int, int, np.ndarray, np.ndarray]] = {}
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            if str(z["key"]) == key:
                for j, p in enumerate(z["paths"]):
                    store[str(p)] = (bool(z["ok"][j]), int(z["n_faces"][j]), int(z["box_px"][j]), z["feats"][j],
                                     z["emb"][j])
    added = 0
    for k, (rel, _person) in enumerate(photos):
        if rel in store:
            continue
        rgb = engine.checked(decode((root / rel).read_bytes()))
        found = engine.detect(rgb)
        if not found:
            store[rel] = (False, 0, 0, np.zeros(7), np.zeros(128, np.float32))
        else:
            rect, score = found[_choose(found, rgb.shape, rel.startswith("lfw/"))]
            vec, f = engine.measure_box(rgb, rect, score)
            store[rel] = (True, len(found), min(rect.width(), rect.height()),
                          np.array([f.iod_px, f.yaw, f.pitch, f.sharpness, f.contrast, f.brightness,
                                    f.detector_score]), vec)
        added += 1
        if added % 50 == 0:
            log(f"measured {k + 1}/{len(photos)}")
    if added:
        names = sorted(store)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, key=key, paths=np.array(names), ok=np.array([store[n][0] for n in names]),
                 n_faces=np.array([store[n][1] for n in names]), box_px=np.array([store[n][2] for n in names]),
                 feats=np.stack([store[n][3] for n in names]), emb=np.stack([store[n][4] for n in names]))
    rows = [store[rel] for rel, _ in photos]
    return PhotoSet([r for r, _ in photos], [p for _, p in photos], np.array([r[0] for r in rows]),
                    np.array([r[1] for r in rows]), np.array([r[2] for r in rows]),
                    np.stack([r[3] for r in rows]), np.stack([r[4] for r in rows]).astype(np.float32))


def genuine_pairs(people: Sequence[str], usable: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) of the same person among usable photos."""
    idx = np.flatnonzero(usable)
    lab = np.array(people, dtype=object)[idx]
    i, j = np.triu_indices(len(idx), k=1)
    same = lab[i] == lab[j]
    return idx[i[same]], idx[j[same]]


def impostor_distances(ps: PhotoSet, usable: np.ndarray) -> np.ndarray:
    idx = np.flatnonzero(usable)
    lab = np.array(ps.people, dtype=object)[idx]
    e = ps.emb[idx].astype(np.float64)
    d = np.sqrt(np.maximum(((e[:, None, :] - e[None, :, :]) ** 2).sum(-1), 0.0))
    i, j = np.triu_indices(len(idx), k=1)
    return d[i, j][lab[i] != lab[j]]


def pair_distances(ps: PhotoSet, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(ps.emb[a].astype(np.float64) - ps.emb[b], axis=1)


def error_versus_reject(dist: np.ndarray, pair_quality: np.ndarray, threshold: float,
                        fractions: Sequence[float], *, draws: int = 500, seed: int = 0) -> list[dict[str, float]]:
    """FNMR left after rejecting the lowest-quality fraction of genuine comparisons, against the mean over
    `draws` random rejections of the same fraction (ISO/IEC 29794-1 ERC). Ties are broken at random."""
    rng = np.random.default_rng(seed)
    n = len(dist)
    fail = dist > threshold
    order = np.lexsort((rng.random(n), pair_quality))  # lowest quality first
    out = []
    for x in fractions:
        k = round(x * n)
        kept = order[k:]
        rand = [fail[rng.permutation(n)[k:]].mean() for _ in range(draws)] if k < n else [0.0]
        out.append({"rejected": round(float(x), 4), "fnmr_quality": round(float(fail[kept].mean()), 4) if len(kept)
                    else 0.0, "fnmr_random": round(float(np.mean(rand)), 4)})
    return out


def erc_area_gain(points: list[dict[str, float]]) -> float:
    """Mean over the points of (random FNMR - quality FNMR): positive when quality beats random."""
    return round(float(np.mean([p["fnmr_random"] - p["fnmr_quality"] for p in points])), 4)


def fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, *, l2: float = 1e-2,
                 iterations: int = 50) -> tuple[np.ndarray, float]:
    """Weighted L2-regularised logistic regression (IRLS) on standardised rows; y in [0, 1] (soft labels)."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    beta = np.zeros(d + 1)
    reg = np.eye(d + 1) * l2
    reg[-1, -1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(xb @ beta)))
        grad = xb.T @ (w * (p - y)) + reg @ beta
        hess = (xb * (w * p * (1 - p))[:, None]).T @ xb + reg
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return beta[:-1], float(beta[-1])


def gate_codes(ps: PhotoSet, *, min_face_px: int, min_sharpness: float, min_quality: float | None) -> list[str]:
    """What a gate would answer for each measured photo at enrolment: "" (enrolled) or the error code.
    `min_quality` None: the old gate (size and raw sharpness only)."""
    from facewarden.vision.quality import gate_failure, quality_score

    codes = []
    for i in range(len(ps.paths)):
        if not ps.ok[i]:
            codes.append("no_face")
        elif ps.n_faces[i] > 1:
            codes.append("multiple_faces")
        elif ps.box_px[i] < min_face_px:
            codes.append("face_too_small")
        elif min_quality is None:
            codes.append("face_blurred" if ps.feats[i, 3] < min_sharpness else "")
        else:
            f = ps.features(i)
            refusal = gate_failure(f, quality_score(f), floor=min_quality, min_sharpness=min_sharpness)
            codes.append(refusal[0] if refusal else "")
    return codes
