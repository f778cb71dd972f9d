"""The README's governance walk-through (`make scenario`) runs end to end over real HTTPS and keeps working."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_governance_walkthrough_runs_end_to_end(shared_faces: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEWARDEN_")}
    env["FACEWARDEN_SHARED"] = str(shared_faces.parent)
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "governance_scenario.py"), "--keep",
                        str(tmp_path / "home")], env=env, capture_output=True, text=True, timeout=600)
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    # Each step's outcome, in order.
    expected = ['"match": true', '"purpose_mismatch"', '"status": "pending"', '"grant_required"',
                '"status": "approved"', "INVESTIGATIVE LEAD - NOT A POSITIVE IDENTIFICATION", '"subject": "licence-0001"',
                '"same_reviewer"', '"confirmed": true', '"consent_withdrawn": true', '"not_found"',
                '"confirmed_leads": 1', "OK: the log is intact."]
    positions = [out.find(text) for text in expected]
    assert -1 not in positions, [t for t, p in zip(expected, positions, strict=True) if p == -1]
    assert positions == sorted(positions)
    html = (tmp_path / "home" / "transparency.html").read_text()
    assert "<svg" in html and "police" in html
