"""Accuracy evaluation: DET/EER metrics on embedding distances, and a runner over labelled datasets."""

from facewarden.evaluation.metrics import (
    det_points,
    eer,
    fnmr_at_fmr,
    pair_distances,
    rank1_leave_one_out,
    rates_at_threshold,
)
from facewarden.evaluation.runner import DatasetError, evaluate_dataset, scan_dataset

__all__ = [
    "DatasetError",
    "det_points",
    "eer",
    "evaluate_dataset",
    "fnmr_at_fmr",
    "pair_distances",
    "rank1_leave_one_out",
    "rates_at_threshold",
    "scan_dataset",
]
