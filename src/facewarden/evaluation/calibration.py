"""Calibration runs on labelled folders: the threshold of each target FMR with its intervals, a tuning/held-out
split by identity, and the held-out check of calibrated thresholds (used by `facewarden calibrate` and
`facewarden eval pairs`). Embeddings stay in memory (or in the private cache the caller names); nothing here
prints them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facewarden.evaluation.operating import DRAWS, check_points, operating_points, pair_table
from facewarden.evaluation.runner import DatasetError, EmbeddedDataset, embed_dataset, scan_dataset, summarise
from facewarden.governance import policy

if TYPE_CHECKING:
    from facewarden.vision.batch import EngineOptions

__all__ = ["LabelledSet", "calibrate", "evaluate_sets", "load_sets", "report_targets", "split_identities"]

REPORT_TARGETS = (1e-3, 1e-4)  # always reported by `eval pairs`, besides each purpose's target


def report_targets(extra: list[float] | None = None) -> list[float]:
    """1e-3, 1e-4, the default purposes' targets and the police searches' one, and ``extra``; strictest last."""
    found = {*REPORT_TARGETS, *(p.target_fmr for p in policy.DEFAULT_PURPOSES), policy.LAW_ENFORCEMENT_TARGET_FMR,
             *(extra or [])}
    return sorted(found, reverse=True)


@dataclass
class LabelledSet:
    """Photos of one or more folders, each label prefixed with its folder (``lfw/Some_Person``)."""

    name: str
    embeddings: np.ndarray
    labels: list[str]
    failed_labels: list[str]
    failures: list[dict[str, str]]
    photos: list[tuple[str, str]] = field(default_factory=list)  # (label, SHA-256 of the file), every photo tried

    @property
    def identities(self) -> list[str]:
        return sorted({lab for lab, _ in self.photos})

    def only(self, keep: set[str], name: str) -> LabelledSet:
        mask = np.array([lab in keep for lab in self.labels], dtype=bool)
        return LabelledSet(name, self.embeddings[mask] if mask.size else self.embeddings,
                           [lab for lab in self.labels if lab in keep],
                           [lab for lab in self.failed_labels if lab in keep],
                           [f for f, lab in zip(self.failures, self.failed_labels, strict=True) if lab in keep],
                           [(lab, d) for lab, d in self.photos if lab in keep])

    def digest(self) -> str:
        """SHA-256 over the sorted (label, photo digest) pairs: which photos, under which names."""
        h = hashlib.sha256()
        for lab, d in sorted(self.photos):
            h.update(f"{lab}\0{d}\n".encode())
        return h.hexdigest()

    def as_embedded(self) -> EmbeddedDataset:
        return EmbeddedDataset(root=Path(self.name), images=len(self.photos), identities=len(self.identities),
                               embeddings=self.embeddings, labels=self.labels, failures=self.failures,
                               failed_labels=self.failed_labels)


def load_sets(dirs: list[Path], *, opts: EngineOptions, workers: int = 2, cache: Path | None = None,
              layout: str = "auto", whole_image_fallback: bool = False, progress: bool = True) -> LabelledSet:
    vectors = []
    out = LabelledSet("+".join(Path(d).name for d in dirs), np.empty((0, 128), np.float32), [], [], [])
    for d in dirs:
        root = Path(d)
        data = embed_dataset(root, opts=opts, workers=workers, layout=layout, cache=cache,
                             whole_image_fallback=whole_image_fallback, progress=progress)
        pre = f"{root.name}/"
        vectors.append(data.embeddings)
        out.labels += [pre + lab for lab in data.labels]
        out.failed_labels += [pre + lab for lab in data.failed_labels]
        out.failures += [{**f, "file": pre + f["file"]} for f in data.failures]
        out.photos += [(pre + lab, hashlib.sha256(p.read_bytes()).hexdigest()) for p, lab in scan_dataset(root, layout)]
    if vectors:
        out.embeddings = np.vstack(vectors)
    return out


def split_identities(identities: list[str], *, split_seed: int | None = None, tune_half: str | None = None
                     ) -> tuple[set[str], str]:
    """The identities to tune on, and how they were chosen. ``tune_half`` ``even``/``odd``: by index in sorted
    order; ``split_seed``: a random half, seeded; neither: all of them."""
    ids = sorted(identities)
    if tune_half is not None:
        if tune_half not in ("even", "odd"):
            raise DatasetError("--tune-half is even or odd.")
        start = 0 if tune_half == "even" else 1
        return set(ids[start::2]), f"identities of {tune_half} index"
    if split_seed is not None:
        shuffled = [ids[i] for i in np.random.default_rng(split_seed).permutation(len(ids))]
        return set(shuffled[: (len(ids) + 1) // 2]), f"random half of the identities, seed {split_seed}"
    return set(ids), "all identities"


def _set_stats(s: LabelledSet, genuine: int, impostor: int) -> dict[str, Any]:
    return {"name": s.name, "digest": s.digest(), "identities": len(s.identities), "images": len(s.photos),
            "failed_to_enrol": len(s.failed_labels), "genuine_pairs": genuine, "impostor_pairs": impostor,
            "smallest_resolvable_fmr": 1.0 / impostor if impostor else None}


def calibrate(data: LabelledSet, targets: list[float], *, model_id: str, model_version: str,
              split_seed: int | None = None, tune_half: str | None = None, draws: int = DRAWS,
              seed: int = 0, conservative: bool = False) -> dict[str, Any]:
    """The operating point of each target FMR on the tuning identities; with a split, the check of those
    thresholds on the held-out identities."""
    tune_ids, how = split_identities(data.identities, split_seed=split_seed, tune_half=tune_half)
    tune = data.only(tune_ids, f"{data.name} ({how})")
    table = pair_table(tune.embeddings, tune.labels, tune.failed_labels)
    if table.genuine.size == 0 or table.impostor.size == 0:
        raise DatasetError(f"{len(tune.labels)} photos of {len(tune_ids)} identities enrolled: at least one genuine "
                           "and one impostor pair are needed to calibrate.")
    points = operating_points(table, targets, draws=draws, seed=seed, conservative=conservative)
    report: dict[str, Any] = {
        "model": f"{model_id}@{model_version}", "model_id": model_id, "model_version": model_version,
        "bootstrap_draws": draws, "split": how,
        "rule": "lower end of the threshold's 95 % interval" if conservative else "point estimate",
        "calibration_set": _set_stats(tune, int(table.genuine.size), int(table.impostor.size)),
        "operating_points": [p.to_json() for p in points],
        "tuning_identities": sorted(tune_ids)}
    held_ids = set(data.identities) - tune_ids
    if held_ids:
        report["held_out"] = held_out_check(data.only(held_ids, f"{data.name} (held out)"),
                                            [(p.target_fmr, p.threshold) for p in points], draws=draws, seed=seed)
    return report


def held_out_check(data: LabelledSet, thresholds: list[tuple[float, float]], *, draws: int = DRAWS,
                   seed: int = 0) -> dict[str, Any]:
    table = pair_table(data.embeddings, data.labels, data.failed_labels)
    if table.genuine.size == 0 or table.impostor.size == 0:
        raise DatasetError("The held-out photos give no genuine or no impostor pair.")
    return {"set": _set_stats(data, int(table.genuine.size), int(table.impostor.size)),
            "points": check_points(table, thresholds, draws=draws, seed=seed)}


def evaluate_sets(data: LabelledSet, *, threshold: float, model: str, targets: list[float],
                  calibration: dict[str, Any] | None = None, det_png: Path | None = None, draws: int = DRAWS,
                  seed: int = 0) -> dict[str, Any]:
    """`summarise`'s report, plus the FNMR at each target FMR with intervals and its end-to-end value, and,
    given a calibration report, the check of its thresholds on the identities it did not tune on."""
    if calibration is not None:
        tuned = set(calibration.get("tuning_identities") or [])
        data = data.only(set(data.identities) - tuned, f"{data.name} (held out)")
    report = summarise(data.as_embedded(), threshold=threshold, model=model, det_png=det_png)
    table = pair_table(data.embeddings, data.labels, data.failed_labels)
    report["operating_points"] = [p.to_json() for p in operating_points(table, targets, draws=draws, seed=seed)]
    genuine_all = int(np.sum(table.photos * (table.photos - 1) // 2))
    report["end_to_end"] = {
        "note": "failures to enrol count as false non-matches (NIST FRTE): FNMR over every genuine pair of the "
                "photos tried, not only those that enrolled",
        "images": len(data.photos), "failed_to_enrol": len(data.failed_labels),
        "failure_to_enrol_rate": len(data.failed_labels) / len(data.photos) if data.photos else None,
        "genuine_pairs": genuine_all,
        "fnmr_at_threshold": 1.0 - float(np.count_nonzero(table.genuine <= threshold)) / genuine_all
        if genuine_all else None}
    report["digest"] = data.digest()
    if calibration is not None:
        report["held_out_check"] = {
            "calibration_model": calibration.get("model"), "calibration_set": calibration.get("calibration_set"),
            "points": check_points(table, [(p["target_fmr"], p["threshold"])
                                           for p in calibration["operating_points"]], draws=draws, seed=seed)}
    return report
