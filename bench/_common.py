"""Helpers shared by the benchmarks: data location, statistics, machine facts, JSON output.

Benchmarks print one JSON document to stdout and their progress to stderr. They never print
embeddings or image data.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def default_faces() -> Path:
    """$FACEWARDEN_SHARED/faces if set, else ../shared/faces beside the repository (as the tests do)."""
    shared = os.environ.get("FACEWARDEN_SHARED")
    return (Path(shared) if shared else REPO.parent / "shared") / "faces"


def add_faces_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--faces", type=Path, default=default_faces(),
                        help="the shared face data folder (default: $FACEWARDEN_SHARED/faces or ../shared/faces)")


def require_faces(root: Path, *needed: str) -> Path:
    """Fail loudly (exit 2) when the face data, or one of the sub-folders the benchmark needs, is missing."""
    root = root.expanduser().resolve()
    missing = [n for n in needed if not (root / n).is_dir()]
    if not root.is_dir() or missing:
        sys.exit(f"error: the shared face data is missing at {root} (need {', '.join(missing or needed)}). "
                 "Put the project's shared/ folder beside the repository, set FACEWARDEN_SHARED, or pass --faces.")
    return root


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict[str, Any]:
    import dlib
    import numpy as np

    info: dict[str, Any] = {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpu_model": None,
        "python": platform.python_version(),
        "dlib": dlib.__version__,
        "numpy": np.__version__,
        "loadavg_1_5_15_at_start": loadavg(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary_ms(seconds: list[float]) -> dict[str, float | int]:
    ms = [s * 1000 for s in seconds]
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 2), "p95_ms": round(percentile(ms, 95), 2),
            "mean_ms": round(statistics.fmean(ms), 2), "min_ms": round(min(ms), 2), "max_ms": round(max(ms), 2)}


def emit(result: dict[str, Any]) -> None:
    result.setdefault("machine", {})["loadavg_1_5_15_at_end"] = loadavg()
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    sys.stdout.flush()
