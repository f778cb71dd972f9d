"""Accuracy on real faces (ORL, Yale) at the service's operating threshold, and the `eval pairs` report.

The shared faces are embedded once per test session (two worker processes), not once per test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from facewarden.config import Settings
from facewarden.evaluation.runner import EmbeddedDataset, embed_dataset, summarise
from facewarden.gallery import GalleryEntry, InMemoryGallery
from facewarden.vision.batch import EngineOptions
from facewarden.vision.engine import model_info
from tests.conftest import REPORT

THRESHOLD = Settings().match_threshold
REPORT_KEYS = {"eer", "fnmr_at_fmr", "threshold", "fmr_at_threshold", "fnmr_at_threshold", "rank1", "images",
               "failed_to_enrol"}


@pytest.fixture(scope="session")
def datasets(shared_faces: Path) -> dict[str, EmbeddedDataset]:
    opts = EngineOptions()
    return {
        "orl": embed_dataset(shared_faces / "orl", opts=opts, workers=2, whole_image_fallback=True, progress=False),
        "yale": embed_dataset(shared_faces / "yale", opts=opts, workers=2, progress=False),
    }


def _identification_rate(data: EmbeddedDataset, enrol_per_person: int) -> tuple[float, float, int]:
    """Enrol the first photos of each person; identify the rest through the shipped gallery search."""
    by_person: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(data.labels):
        by_person[label].append(i)
    gallery, probes = InMemoryGallery(), []
    for person, idx in by_person.items():
        gallery.add([GalleryEntry("t", person, f"{person}/{i}", "eval", data.embeddings[i])
                     for i in idx[:enrol_per_person]])
        probes += [(i, person) for i in idx[enrol_per_person:]]
    correct = wrong = 0
    for i, person in probes:
        found = gallery.search("t", data.embeddings[i], threshold=THRESHOLD, max_candidates=1)
        if found and found[0].subject_id == person:
            correct += 1
        elif found:
            wrong += 1
    return correct / len(probes), wrong / len(probes), len(probes)


@pytest.mark.parametrize(("name", "minimum"), [("orl", 0.95), ("yale", 0.90)])
def test_identities_identify_correctly_at_the_operating_threshold(
        datasets: dict[str, EmbeddedDataset], name: str, minimum: float) -> None:
    rate, wrong, probes = _identification_rate(datasets[name], enrol_per_person=3)
    REPORT.append(f"{name}: identification at threshold {THRESHOLD}: {rate:.1%} correct, {wrong:.1%} wrong "
                  f"candidate, over {probes} probes (3 photos enrolled per person)")
    assert rate >= minimum
    assert wrong <= 0.02


def test_eval_report_on_orl(datasets: dict[str, EmbeddedDataset], tmp_path: Path) -> None:
    png = tmp_path / "det.png"
    report = summarise(datasets["orl"], threshold=THRESHOLD, model=model_info().label, det_png=png)
    assert set(report) >= REPORT_KEYS
    assert report["images"] == 400 and report["failed_to_enrol"] == 0
    assert report["eer"] < 0.03 and report["rank1"] >= 0.98
    assert report["fmr_at_threshold"] < 0.01
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    REPORT.append(f"orl: EER {report['eer']:.2%}, FMR {report['fmr_at_threshold']:.3%} / FNMR "
                  f"{report['fnmr_at_threshold']:.2%} at {THRESHOLD}, rank-1 {report['rank1']:.1%}")
    # The threshold really moves the rates: a looser one admits more impostors.
    looser = summarise(datasets["orl"], threshold=THRESHOLD + 0.1, model="m")
    assert looser["fmr_at_threshold"] > report["fmr_at_threshold"]


def test_cli_eval_pairs_writes_json_and_det_curve(shared_faces: Path, tmp_path: Path) -> None:
    out = tmp_path / "johns.json"
    r = subprocess.run([sys.executable, "-m", "facewarden.cli", "eval", "pairs", str(shared_faces / "johns"),
                        "--json", str(out)], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "FACEWARDEN_HOME": str(tmp_path / "home")})
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    assert set(report) >= REPORT_KEYS and report["images"] == 54
    assert set(report["fnmr_at_fmr"]) == {"1e-2", "1e-3"}
    assert out.with_suffix(".png").stat().st_size > 10_000
    assert np.isfinite(report["eer"])
