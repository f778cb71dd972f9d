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


class CpuMeter:
    """Who used the CPUs during a timed section: this process and its reaped children, everybody else, steal.

    Reads /proc/stat (Linux). Pool workers count as ours once they have exited and been waited for, so
    stop the meter after the pool is shut down; a long-lived child (the server) is named in extra_pids.
    """

    def __init__(self, extra_pids: tuple[int, ...] = ()) -> None:
        """extra_pids: live processes of ours that are not reaped before stop() (a server, say)."""
        self.extra_pids = extra_pids
        self._start = self._snap()

    def _snap(self) -> tuple[float, float, float, float]:
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system
        hz = os.sysconf("SC_CLK_TCK")
        for pid in self.extra_pids:
            try:  # utime, stime: fields 14 and 15 of /proc/PID/stat (after the parenthesised name)
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                own += (int(fields[11]) + int(fields[12])) / hz
            except (OSError, ValueError, IndexError):
                pass
        try:
            vals = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        except (OSError, ValueError):
            vals = [0] * 8
        idle, steal = vals[3] + vals[4], vals[7]
        busy = (sum(vals) - idle - steal) / hz
        return time.perf_counter(), own, busy, steal / hz

    def stop(self) -> dict[str, float]:
        w0, own0, busy0, steal0 = self._start
        w1, own1, busy1, steal1 = self._snap()
        wall = max(w1 - w0, 1e-9)
        own = own1 - own0
        return {"wall_s": round(wall, 3), "own_cores": round(own / wall, 2),
                "other_processes_cores": round(max(0.0, (busy1 - busy0) - own) / wall, 2),
                "steal_cores": round((steal1 - steal0) / wall, 2)}
