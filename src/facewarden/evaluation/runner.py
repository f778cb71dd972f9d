"""Accuracy of the face pipeline on a labelled folder of photos: the data behind the match threshold.

Every image is embedded once (in worker processes); every unordered pair of enrolled images is then
a genuine pair (same person) or an impostor pair (different people). From their distances come the
EER, the FNMR at fixed FMRs, the error rates at the operating threshold and a DET curve; a
leave-one-out nearest-neighbour search gives the rank-1 identification rate.

Embeddings stay in memory only: nothing here prints, logs or writes them.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from facewarden.errors import InvalidInput
from facewarden.evaluation.metrics import (
    det_points,
    eer,
    fnmr_at_fmr,
    pair_distances,
    rank1_leave_one_out,
    rates_at_threshold,
)

if TYPE_CHECKING:  # the face pipeline (dlib) is imported only when a dataset is embedded
    from facewarden.vision.batch import EngineOptions

__all__ = ["FMR_TARGETS", "DatasetError", "EmbeddedDataset", "embed_dataset", "evaluate_dataset",
           "plot_det", "scan_dataset", "summarise"]

LAYOUTS = ("auto", "folders", "prefix")
# Key in the report -> target FMR.
FMR_TARGETS: dict[str, float] = {"1e-2": 1e-2, "1e-3": 1e-3}


class DatasetError(InvalidInput):
    code = "bad_dataset"


@dataclass
class EmbeddedDataset:
    """Embeddings of the images that enrolled, with their labels; the failures by relative path."""

    root: Path
    images: int
    identities: int
    embeddings: np.ndarray  # (M, 128) float32, M = images that enrolled
    labels: list[str]
    failures: list[dict[str, str]] = field(default_factory=list)
    failed_labels: list[str] = field(default_factory=list)  # the label of each failure, in the same order


NO_IDENTITY = "misc"  # the shared sets' folder of photos that belong to nobody in particular (groups, crowds)


def _is_candidate(p: Path) -> bool:
    return p.is_file() and not p.name.startswith(".") and not p.name.upper().startswith("README")


def scan_dataset(dataset_dir: Path, layout: str = "auto") -> list[tuple[Path, str]]:
    """(path, label) for every image of a dataset, sorted by label then file name.

    * ``folders``: one sub-folder per person; the folder name is the label (files directly inside).
    * ``prefix``: one flat folder; the label is the file name up to its first ``.``
      (``subject01.happy`` -> ``subject01``), so files need no image extension.
    * ``auto``: ``folders`` when some sub-folder holds files, else ``prefix``.

    Hidden files (leading ``.``) and ``README*`` are skipped, and so is a ``misc`` folder (photos of
    nobody in particular); everything else is tried as an image.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    root = Path(dataset_dir)
    if not root.is_dir():
        raise DatasetError(f"The dataset folder {str(root)!r} does not exist or is not a folder.")
    subdirs = sorted(d for d in root.iterdir()
                     if d.is_dir() and not d.name.startswith(".") and d.name != NO_IDENTITY)
    if layout == "auto":
        layout = "folders" if any(_is_candidate(f) for d in subdirs for f in d.iterdir()) else "prefix"
    items: list[tuple[Path, str]] = []
    if layout == "folders":
        for d in subdirs:
            items.extend((f, d.name) for f in sorted(d.iterdir()) if _is_candidate(f))
    else:
        items.extend((f, f.name.split(".", 1)[0]) for f in sorted(root.iterdir()) if _is_candidate(f))
    if not items:
        raise DatasetError(
            f"No image files found in {str(root)!r} (layout {layout!r}). Use one sub-folder per person, "
            "or a flat folder of files named LABEL.anything.")
    return items


def embed_dataset(dataset_dir: Path, *, opts: EngineOptions, workers: int = 2, layout: str = "auto",
                  whole_image_fallback: bool = False, progress: bool = True,
                  cache: Path | None = None) -> EmbeddedDataset:
    """Embed every image of the dataset (one face each); images that fail are recorded, not raised.

    ``cache``: a private folder (for example under /tmp) where each photo's result is kept, keyed by the
    photo's SHA-256 and the pipeline's options, so a photo is embedded once across runs."""
    from facewarden.evaluation.cache import EmbeddingCache
    from facewarden.vision.batch import BatchResult, embed_files

    root = Path(dataset_dir)
    items = scan_dataset(root, layout)
    paths = [p for p, _ in items]
    label_of = dict(items)
    vectors: list[np.ndarray] = []
    labels: list[str] = []
    failures: list[dict[str, str]] = []
    failed_labels: list[str] = []
    store = EmbeddingCache(cache, opts, whole_image_fallback) if cache is not None else None
    known = store.lookup(paths) if store is not None else {}
    todo = [p for p in paths if p not in known]
    fresh = {res.path: res for res in tqdm(
        embed_files(todo, opts, workers=workers, whole_image_fallback=whole_image_fallback) if todo else [],
        total=len(todo), desc=f"embedding {root.name}", unit="img", file=sys.stderr, disable=not progress)}
    if store is not None and fresh:
        store.save(fresh.values())
    for path in paths:
        res: BatchResult = fresh[path] if path in fresh else known[path]
        if res.face is None:
            failures.append({"file": res.path.relative_to(root).as_posix(),
                             "code": res.error_code or "error"})
            failed_labels.append(label_of[res.path])
        else:
            vectors.append(res.face.embedding)
            labels.append(label_of[res.path])
    dim = vectors[0].shape[0] if vectors else 128
    emb = np.vstack(vectors) if vectors else np.empty((0, dim), dtype=np.float32)
    return EmbeddedDataset(root=root, images=len(items), identities=len({lab for _, lab in items}),
                           embeddings=emb, labels=labels, failures=failures, failed_labels=failed_labels)


def _num(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def summarise(data: EmbeddedDataset, *, threshold: float, model: str,
              det_png: Path | None = None) -> dict[str, Any]:
    """The accuracy report of an embedded dataset (see `evaluate_dataset`)."""
    genuine, impostor = pair_distances(data.embeddings, data.labels)
    if genuine.size == 0 or impostor.size == 0:
        raise DatasetError(
            f"{len(data.labels)} of {data.images} images enrolled ({len(data.failures)} failed), giving "
            f"{genuine.size} genuine and {impostor.size} impostor pairs: at least one of each is needed "
            "(two enrolled images of one person, and a second person).")
    e, e_thr = eer(genuine, impostor)
    at_fmr = {}
    for key, target in FMR_TARGETS.items():
        fnmr, thr = fnmr_at_fmr(genuine, impostor, target)
        at_fmr[key] = {"fnmr": float(fnmr), "threshold": float(thr)}
    fmr_t, fnmr_t = rates_at_threshold(genuine, impostor, threshold)
    r1, probes = rank1_leave_one_out(data.embeddings, data.labels)
    report: dict[str, Any] = {
        "eer": float(e),
        "eer_threshold": float(e_thr),
        "fnmr_at_fmr": at_fmr,
        "threshold": float(threshold),
        "fmr_at_threshold": float(fmr_t),
        "fnmr_at_threshold": float(fnmr_t),
        "rank1": _num(r1),
        "rank1_probes": int(probes),
        "images": int(data.images),
        "identities": int(data.identities),
        "failed_to_enrol": len(data.failures),
        "failures": [dict(f) for f in data.failures],
        "genuine_pairs": int(genuine.size),
        "impostor_pairs": int(impostor.size),
        "model": model,
        "dataset": str(data.root),
    }
    if det_png is not None:
        plot_det(genuine, impostor, report, Path(det_png))
    return report


def plot_det(genuine: np.ndarray, impostor: np.ndarray, report: dict[str, Any], out: Path) -> None:
    """Write a DET curve (FMR vs FNMR, log-log) with the operating point and the EER marked."""
    # Figure + Agg canvas directly: no pyplot, so no GUI backend and no global figure state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    _, fmr, fnmr = det_points(genuine, impostor)
    # Rates of 0 cannot sit on a log axis: they are drawn on a floor a decade or so below the
    # smallest non-zero rate the pair counts allow (at most 1e-5 on the FMR axis).
    x_floor = min(1e-5, 10.0 ** math.floor(math.log10(0.5 / impostor.size)))
    y_floor = 10.0 ** math.floor(math.log10(0.5 / genuine.size))

    def clip_x(v: np.ndarray | float) -> np.ndarray:
        return np.clip(v, x_floor, 1.0)

    def clip_y(v: np.ndarray | float) -> np.ndarray:
        return np.clip(v, y_floor, 1.0)

    fig = Figure(figsize=(7.5, 6.5), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(clip_x(fmr), clip_y(fnmr), color="tab:blue", lw=1.8, label="DET curve")
    lo = max(x_floor, y_floor)
    ax.plot([lo, 1.0], [lo, 1.0], color="grey", lw=0.8, ls=":", label="FMR = FNMR")
    box = {"boxstyle": "round,pad=0.25", "fc": "white", "ec": "none", "alpha": 0.8}

    # The curve falls from upper left to lower right: below-left and above-right of it is free.
    e, e_t = report["eer"], report["eer_threshold"]
    ax.plot(clip_x(e), clip_y(e), "s", color="tab:orange", ms=8, label=f"EER {e:.2%} at t = {e_t:.3f}")
    ax.annotate(f"EER {e:.2%}\nt = {e_t:.3f}", (clip_x(e), clip_y(e)), textcoords="offset points",
                xytext=(-10, -10), ha="right", va="top", fontsize=9, color="tab:orange", bbox=box)

    t, f_m, f_nm = report["threshold"], report["fmr_at_threshold"], report["fnmr_at_threshold"]
    ax.plot(clip_x(f_m), clip_y(f_nm), "o", color="tab:red", ms=8,
            label=f"operating t = {t:.3f}: FMR {f_m:.3%}, FNMR {f_nm:.2%}")
    ax.annotate(f"t = {t:.3f}\nFMR {f_m:.3%}\nFNMR {f_nm:.2%}", (clip_x(f_m), clip_y(f_nm)),
                textcoords="offset points", xytext=(10, 10), ha="left", va="bottom", fontsize=9,
                color="tab:red", bbox=box)

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(x_floor, 1.0)
    ax.set_ylim(y_floor, 1.0)
    ax.set_xlabel("False match rate (FMR): impostor pairs accepted")
    ax.set_ylabel("False non-match rate (FNMR): genuine pairs rejected")
    ax.grid(True, which="major", alpha=0.5)
    ax.grid(True, which="minor", alpha=0.15)
    ax.legend(loc="lower left", fontsize=8.5)
    name = Path(report["dataset"]).name
    enrolled = report["images"] - report["failed_to_enrol"]
    ax.set_title(
        f"DET: {name}: {report['identities']} identities, {enrolled}/{report['images']} images enrolled\n"
        f"{report['genuine_pairs']:,} genuine / {report['impostor_pairs']:,} impostor pairs; "
        f"rank-1 {report['rank1']:.2%}", fontsize=10)
    ax.text(0.99, 0.99, f"{report['model']}\nrates of 0 drawn at the axis floor", transform=ax.transAxes,
            ha="right", va="top", fontsize=7, color="grey", bbox=box)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")


def evaluate_dataset(dataset_dir: Path, *, threshold: float, opts: EngineOptions, workers: int = 2,
                     layout: str = "auto", whole_image_fallback: bool = False, det_png: Path | None = None,
                     progress: bool = True) -> dict[str, Any]:
    """Embed a labelled dataset and report verification and identification accuracy.

    ``threshold`` is the operating match threshold (Euclidean distance, match when ``<=``).
    ``layout``: ``auto``, ``folders`` or ``prefix`` (see `scan_dataset`). ``whole_image_fallback``
    uses the whole image as the face box where no face is detected (tightly cropped sets like ORL).
    ``det_png``: where to write a DET curve. ``progress``: tqdm bar on stderr.

    Returns a JSON-serialisable dict: ``eer``, ``eer_threshold``, ``fnmr_at_fmr``
    (``{"1e-2": {"fnmr", "threshold"}, "1e-3": {...}}``), ``threshold``, ``fmr_at_threshold``,
    ``fnmr_at_threshold``, ``rank1``, ``rank1_probes``, ``images`` (files tried), ``identities``
    (labels among the files tried), ``failed_to_enrol``, ``failures`` (``[{"file", "code"}]``, path
    relative to the dataset), ``genuine_pairs``, ``impostor_pairs`` (over enrolled images), ``model``
    and ``dataset``. Raises `DatasetError` when there is no genuine or no impostor pair to measure.
    """
    from facewarden.vision.engine import model_info

    data = embed_dataset(dataset_dir, opts=opts, workers=workers, layout=layout,
                         whole_image_fallback=whole_image_fallback, progress=progress)
    return summarise(data, threshold=threshold, model=model_info().label, det_png=det_png)
