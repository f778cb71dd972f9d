"""Schemathesis over HTTPS against a real `facewarden serve` (SQLite, TLS) while its RSS is sampled each second
(issue 10, item 8): no 5xx, no dropped connection, and its memory comes back within 20 % of the level after
warm-up. Bounded: about a minute on two shared cores; `bench/fuzz.py --server-rss 300` is the long run."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REPORT
from tests.e2e.fuzz_rss import measure
from tests.e2e.server import Server


def test_fuzzing_a_real_server_answers_no_5xx_and_its_memory_comes_back(tmp_path: Path,
                                                                         shared_faces: Path) -> None:
    server = Server(tmp_path / "home")
    try:
        result = measure(server, shared_faces, 25.0, warmup_s=10.0, idle_s=10.0)
    finally:
        log = server.stop()
    assert result["cases"] >= 300, result  # the fuzzing really ran (a few hundred cases even on a busy box)
    assert result["5xx"] == 0 and result["connection_errors"] == 0, result["failures"]
    assert result["ratio_after_before"] <= 1.2, result
    assert "Traceback" not in log
    REPORT.append(f"fuzz memory: {result['cases']} schemathesis cases over HTTPS, RSS {result['rss_before_mib']:.0f} "
                  f"MiB before, {result['rss_peak_mib']:.0f} peak, {result['rss_after_mib']:.0f} after")
