"""Accuracy on the unconstrained identity sets: FaceWarden's pipeline against the plain dlib loop, same run.

Sets: the person folders (not misc/) of lfw, faceapi-bbt, opencv4nodejs-twd, compreface, human, openface,
each reported separately and pooled.

* FaceWarden: `FaceEngine()` with the defaults of the tree as it is when the bench runs, on the photo as
  `decode_image` gives it, the face enrolment and verification take (`probe_face`: the main face of a photo
  with several, vision/selection.py; quality gate). A refusal is a failure to enrol with its code.
  "facewarden_one_face_only" is the same with `enrol_main_face = false`: a photo with several faces is refused.
* Plain loop (what `face_recognition.face_encodings(img, model="small")` does, plus taking the face nearest
  the centre when there are several): PIL load -> RGB, HOG upsample 1 at full resolution, 5-point shape,
  150 px chip, descriptor. Photos over `--plain-max-side` px (compreface's 12-36 MP) are shrunk to it first,
  otherwise HOG upsampled once needs gigabytes; a failure is "no_face" only.

Pairs-only: every unordered pair of photos that both gave an embedding. End-to-end (NIST FRTE style): every
pair of photos; a genuine pair with a failed photo is a failed genuine comparison. Rank-1 end to end counts
a failed probe as a miss. FNMR at FMR 1e-3 comes with a 95 % bootstrap interval (identities resampled).

Tuning vs held-out: LFW's identities, sorted by name, are split: even positions = "lfw-tune", odd =
"lfw-heldout". The threshold for FMR 1e-3 is tuned on lfw-tune (pairs only, per pipeline) and reported on
lfw-heldout and on every other set (none of which tuned anything), with the default 0.5 beside it.

Embeddings are cached in --cache (default /tmp/facewarden-bench-emb.pkl), keyed by the SHA-1 of the
150 px chip and the jitter count: a photo (or a transformed probe) is embedded once across runs and across
the two pipelines when their chips agree. Nothing here prints embeddings.

Usage: .venv/bin/python bench/bench_accuracy.py [--sets lfw,human] [--lfw-people N] [--boot 500]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import time
from collections import Counter
from pathlib import Path
from typing import Any

import dlib
import face_recognition_models as frm
import numpy as np
from PIL import Image

from _common import CpuMeter, add_faces_arg, emit, log, machine, require_faces
from facewarden.config import Settings
from facewarden.errors import FaceWardenError
from facewarden.evaluation.metrics import eer, fnmr_at_fmr, rank1_leave_one_out, rates_at_threshold
from facewarden.evaluation.robustness import (
    PairScores,
    bootstrap_fnmr_at_fmr,
    pair_scores,
    rank1_end_to_end,
)
from facewarden.imaging import ImageLimits, decode_image
from facewarden.vision.engine import CHIP_PADDING, CHIP_SIZE, FaceEngine, model_info
from facewarden.vision.selection import probe_face

SETS = ("lfw", "faceapi-bbt", "opencv4nodejs-twd", "compreface", "human", "openface")
THRESHOLD = 0.5
TARGET = 1e-3
NOT_IMAGES = {".md", ".txt", ".csv", ".json"}


# -- embedding cache -------------------------------------------------------------------------------
class EmbeddingCache:
    """chip digest -> 128-D vector, pickled to a file under /tmp (never into the repository)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, np.ndarray] = {}
        if path.is_file():
            with path.open("rb") as fh:
                self.data = pickle.load(fh)  # our own file under /tmp
        self.hits = self.misses = 0

    def save(self) -> None:
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            pickle.dump(self.data, fh)
        tmp.replace(self.path)


class CachedEncoder:
    """Stands in for dlib's face_recognition_model_v1 on chips: same call, cached result."""

    def __init__(self, inner: Any, cache: EmbeddingCache) -> None:
        self.inner = inner
        self.cache = cache

    def compute_face_descriptor(self, chip: np.ndarray, num_jitters: int = 0, *args: Any) -> np.ndarray:
        arr = np.ascontiguousarray(chip)
        key = hashlib.sha1(arr.tobytes() + repr((arr.shape, num_jitters)).encode()).hexdigest()
        vec = self.cache.data.get(key)
        if vec is None:
            self.cache.misses += 1
            vec = np.asarray(self.inner.compute_face_descriptor(arr, num_jitters), dtype=np.float32)
            self.cache.data[key] = vec
        else:
            self.cache.hits += 1
        return vec


# -- the two pipelines -------------------------------------------------------------------------------
Outcome = tuple[np.ndarray | None, str | None]  # (embedding, failure code)


class FaceWardenPipe:
    name = "facewarden"

    def __init__(self, cache: EmbeddingCache, **engine_kw: Any) -> None:
        self.engine = FaceEngine(**engine_kw)
        if hasattr(self.engine, "_encoder"):
            self.engine._encoder = CachedEncoder(self.engine._encoder, cache)
        self.limits = ImageLimits()
        defaults = Settings()
        self.main_face, self.margin = defaults.enrol_main_face, defaults.dominant_face_margin
        self.faces_seen: list[int] = []  # per embedded photo, in order: faces the detector found (0: failed)

    def load(self, path: Path) -> np.ndarray:
        return decode_image(path.read_bytes(), self.limits)

    def embed(self, rgb: np.ndarray) -> Outcome:
        """What enrolment and a verification probe do with the tree's default settings."""
        try:
            face = probe_face(self.engine, rgb, dominant=self.main_face, margin=self.margin)
        except FaceWardenError as exc:
            self.faces_seen.append(0)
            return None, exc.code
        self.faces_seen.append(face.faces_in_photo)
        return np.asarray(face.embedding, dtype=np.float32), None

    def embed_file(self, path: Path) -> Outcome:
        try:
            rgb = self.load(path)
        except FaceWardenError as exc:
            return None, exc.code
        return self.embed(rgb)


class PlainLoop:
    """The face_recognition-style loop; `landmarks` also serves the robustness transforms."""

    name = "plain_dlib"

    def __init__(self, cache: EmbeddingCache, max_side: int = 2000) -> None:
        self.detector = dlib.get_frontal_face_detector()
        self.shape = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self.encoder = CachedEncoder(dlib.face_recognition_model_v1(frm.face_recognition_model_location()), cache)
        self.max_side = max_side

    def load(self, path: Path) -> np.ndarray:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if max(im.size) > self.max_side:
                im.thumbnail((self.max_side, self.max_side), Image.Resampling.BILINEAR)
            return np.ascontiguousarray(np.asarray(im))

    def central(self, rgb: np.ndarray) -> tuple[dlib.rectangle, np.ndarray] | None:
        rects = self.detector(rgb, 1)
        if not rects:
            return None
        h, w = rgb.shape[:2]
        r = min(rects, key=lambda r: (r.center().x - w / 2) ** 2 + (r.center().y - h / 2) ** 2)
        shape = self.shape(rgb, r)
        return r, np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)

    def embed(self, rgb: np.ndarray, num_jitters: int = 0) -> Outcome:
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        rects = self.detector(rgb, 1)
        if not rects:
            return None, "no_face"
        h, w = rgb.shape[:2]
        r = min(rects, key=lambda r: (r.center().x - w / 2) ** 2 + (r.center().y - h / 2) ** 2)
        chip = dlib.get_face_chip(rgb, self.shape(rgb, r), size=CHIP_SIZE, padding=CHIP_PADDING)
        return self.encoder.compute_face_descriptor(chip, num_jitters), None

    def embed_file(self, path: Path) -> Outcome:
        try:
            rgb = self.load(path)
        except (OSError, ValueError) as exc:
            return None, f"unreadable:{type(exc).__name__}"
        return self.embed(rgb)


# -- data ---------------------------------------------------------------------------------------------
def person_photos(root: Path, name: str) -> list[tuple[Path, str]]:
    items = []
    for d in sorted(p for p in (root / name).iterdir() if p.is_dir() and p.name != "misc"):
        items += [(f, f"{name}/{d.name}") for f in sorted(d.iterdir())
                  if f.is_file() and not f.name.startswith(".") and f.suffix.lower() not in NOT_IMAGES]
    return items


def lfw_split(items: list[tuple[Path, str]]) -> tuple[set[str], set[str]]:
    people = sorted({lab for _, lab in items})
    return set(people[0::2]), set(people[1::2])


# -- metrics ---------------------------------------------------------------------------------------------
def _r(x: float, n: int = 5) -> float | None:
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else round(float(x), n)


def block(scores: PairScores, rank1: tuple[float, int], boot: int, t_tuned: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {"genuine_pairs": int(scores.genuine.size), "impostor_pairs": int(scores.impostor.size)}
    if scores.genuine.size == 0 or scores.impostor.size == 0:
        out["note"] = "no genuine or no impostor pair"
        return out
    e, e_t = eer(scores.genuine, scores.impostor)
    f, f_t = fnmr_at_fmr(scores.genuine, scores.impostor, TARGET)
    lo, hi = bootstrap_fnmr_at_fmr(scores, TARGET, n_boot=boot)
    fmr5, fnmr5 = rates_at_threshold(scores.genuine, scores.impostor, THRESHOLD)
    out.update({"eer": _r(e), "eer_threshold": _r(e_t, 4), "fnmr_at_fmr_1e-3": _r(f),
                "fnmr_at_fmr_1e-3_ci95": [_r(lo), _r(hi)], "threshold_at_fmr_1e-3": _r(f_t, 4),
                "fmr_resolution": _r(1.0 / scores.impostor.size, 7),
                "at_0.5": {"fmr": _r(fmr5, 6), "fnmr": _r(fnmr5)},
                "rank1": _r(rank1[0]), "rank1_probes": rank1[1]})
    if t_tuned is not None:
        fmr_t, fnmr_t = rates_at_threshold(scores.genuine, scores.impostor, t_tuned)
        out["at_tuned_threshold"] = {"threshold": _r(t_tuned, 4), "fmr": _r(fmr_t, 6), "fnmr": _r(fnmr_t)}
    return out


def evaluate(vectors: list[np.ndarray | None], codes: list[str | None], labels: list[str], boot: int,
             t_tuned: float | None) -> dict[str, Any]:
    fails = Counter(c for c in codes if c is not None)
    ok = [i for i, v in enumerate(vectors) if v is not None]
    emb = np.stack([vectors[i] for i in ok]) if ok else np.empty((0, 128))
    r1_pairs = rank1_leave_one_out(emb, [labels[i] for i in ok]) if len(ok) >= 2 else (float("nan"), 0)
    return {
        "images": len(vectors), "identities": len(set(labels)),
        "failed_to_enrol": sum(fails.values()), "fte_rate": _r(sum(fails.values()) / max(1, len(vectors)), 4),
        "fte_codes": dict(sorted(fails.items())),
        "pairs_only": block(pair_scores(vectors, labels, end_to_end=False), r1_pairs, boot, t_tuned),
        "end_to_end": block(pair_scores(vectors, labels, end_to_end=True), rank1_end_to_end(vectors, labels),
                            boot, t_tuned),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_faces_arg(ap)
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--lfw-people", type=int, default=0, help="use only the first N LFW people (0: all 140)")
    ap.add_argument("--boot", type=int, default=500, help="bootstrap replicates")
    ap.add_argument("--plain-max-side", type=int, default=2000)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/facewarden-bench-emb.pkl"))
    args = ap.parse_args()
    sets = [s for s in args.sets.split(",") if s]
    root = require_faces(args.faces, *sets)
    cache = EmbeddingCache(args.cache)
    pipes = [FaceWardenPipe(cache), PlainLoop(cache, args.plain_max_side)]
    items: list[tuple[Path, str]] = []
    for s in sets:
        found = person_photos(root, s)
        if s == "lfw" and args.lfw_people:
            keep = sorted({lab for _, lab in found})[: args.lfw_people]
            found = [it for it in found if it[1] in keep]
        items += found
    log(f"{len(items)} photos in {len(sets)} sets; cache {len(cache.data)} embeddings")
    meter = CpuMeter()
    results: dict[str, list[Outcome]] = {}
    t0 = time.perf_counter()
    for pipe in pipes:
        outs = []
        for k, (p, _) in enumerate(items):
            outs.append(pipe.embed_file(p))
            if k % 100 == 99:
                log(f"{pipe.name}: {k + 1}/{len(items)}")
                cache.save()
        results[pipe.name] = outs
    cache.save()
    cpu = meter.stop()
    log(f"embedded in {time.perf_counter() - t0:.0f} s (cache hits {cache.hits}, misses {cache.misses})")
    # The same pipeline with `enrol_main_face = false` (exactly one face per photo, the behaviour before the
    # main-face rule): every photo in which a main face was picked among several becomes `multiple_faces`.
    fw_pipe = pipes[0]
    assert isinstance(fw_pipe, FaceWardenPipe)
    results["facewarden_one_face_only"] = [(None, "multiple_faces") if n > 1 else out for out, n in
                                           zip(results[fw_pipe.name], fw_pipe.faces_seen, strict=True)]

    labels = [lab for _, lab in items]
    tune, held = lfw_split([it for it in items if it[1].startswith("lfw/")])
    groups: dict[str, list[int]] = {s: [i for i, lab in enumerate(labels) if lab.startswith(s + "/")] for s in sets}
    if "lfw" in sets:
        groups["lfw-tune"] = [i for i, lab in enumerate(labels) if lab in tune]
        groups["lfw-heldout"] = [i for i, lab in enumerate(labels) if lab in held]
    groups["pooled"] = list(range(len(items)))
    groups["pooled-heldout"] = [i for i, lab in enumerate(labels) if lab not in tune]
    report: dict[str, Any] = {"bench": "accuracy", "model": model_info().label, "machine": machine(),
                              "cpu": cpu, "threshold": THRESHOLD, "target_fmr": TARGET, "bootstrap": args.boot,
                              "tuned_on": "lfw-tune (even-position LFW people, pairs only)",
                              "held_out": [g for g in groups if g not in ("lfw", "lfw-tune", "pooled")],
                              "plain_max_side": args.plain_max_side, "sets": {}}
    tuned: dict[str, float | None] = {}
    for name in results:
        vec = [v for v, _ in results[name]]
        idx = groups.get("lfw-tune", [])
        sc = pair_scores([vec[i] for i in idx], [labels[i] for i in idx], end_to_end=False) if idx else None
        tuned[name] = (fnmr_at_fmr(sc.genuine, sc.impostor, TARGET)[1]
                       if sc is not None and sc.genuine.size and sc.impostor.size else None)
    report["tuned_threshold_fmr_1e-3"] = {k: _r(v, 4) for k, v in tuned.items()}
    for g, idx in groups.items():
        log(f"metrics: {g} ({len(idx)} photos)")
        report["sets"][g] = {
            name: evaluate([res[i][0] for i in idx], [res[i][1] for i in idx], [labels[i] for i in idx], args.boot,
                           tuned[name])
            for name, res in results.items()}
    emit(report)


if __name__ == "__main__":
    main()
