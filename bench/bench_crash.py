"""Crash consistency under kill -9 (issue 10, items 5-6): the long run of tests/e2e/test_crash_consistency.py.

A real `facewarden serve` (HTTPS subprocess) enrols, erases and rotates its KEK under dual control while it is
killed with SIGKILL: half of the kills at a random moment (0.3-4 s into a random stream of operations), half at a
named crash point between the key store's commit and the main database's (facewarden/faults.py: enrol.key_created,
enrol.committed, erase.intent_written, erase.committed, rotate.rewrapped). After each kill the server is restarted
and checked: every acknowledged enrolment still verifies, every acknowledged erasure is gone with its key and has
its audit entry, no subject is listed without its key (half-done), no data key is left that no subject uses
(orphan), no intent is left pending, and `facewarden audit verify` exits 0.

Baseline in the same run: the same kills with the start-up and periodic key-intent recovery turned off
(FACEWARDEN_TEST_FAULTS=no-recovery), which shows what the recovery pass resolves.

Usage:  .venv/bin/python bench/bench_crash.py [--sqlite-kills 20] [--pg-kills 10] [--baseline-kills 10] [--seed 7]
Prints JSON to stdout, progress to stderr. Needs PostgreSQL at FACEWARDEN_TEST_PG (default
postgresql://postgres@127.0.0.1:5432/test) unless --pg-kills 0. Takes ~8-10 s per kill on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.crash_harness import CrashLab, Findings

from _common import add_faces_arg, require_faces

POINTS: list[tuple[str, list[str]]] = [
    ("enrol.key_created:2", ["enrol", "enrol"]),
    ("enrol.committed:2", ["enrol", "rotate", "enrol"]),
    ("erase.intent_written:2", ["erase", "erase"]),
    ("erase.committed:2", ["erase", "erase"]),
    ("rotate.rewrapped:2", ["enrol", "enrol", "rotate"]),
]


def plan_cycles(n: int, rng: random.Random) -> list[tuple[str, float | None, list[str]]]:
    cycles: list[tuple[str, float | None, list[str]]] = []
    for i in range(n):
        if i % 2 == 0:
            point, plan = POINTS[(i // 2) % len(POINTS)]
            cycles.append((point, None, plan))
        else:
            ops = rng.choices(["enrol", "erase", "rotate"], weights=[45, 40, 15], k=6)
            cycles.append(("", rng.uniform(0.3, 4.0), ops))
    return cycles


def run(label: str, home: Path, faces: Path, database_url: str | None, kills: int, seed: int, *,
        recovery: bool) -> dict[str, Any]:
    lab = CrashLab(home, faces, database_url, seed=seed)
    if not recovery:
        lab.env["FACEWARDEN_TEST_FAULTS"] = "no-recovery"
    cycles = plan_cycles(kills, random.Random(seed))
    if not recovery:  # keep the baseline flag beside each crash point
        cycles = [(f"no-recovery,{f}" if f else "no-recovery", d, p) for f, d, p in cycles]
    started = time.monotonic()
    lab.init()

    def progress(i: int, found: Findings) -> None:
        print(f"[{label}] kill {i + 1}/{kills}: {found.problems() or 'consistent'}", file=sys.stderr)

    try:
        checks = lab.run_cycles(cycles, audit_every=True, on_cycle=progress)
        final = lab.check(verify_all=True, audit_verify=True)
    finally:
        lab.stop()
    return {
        "main_database": "postgresql" if database_url else "sqlite",
        "recovery": recovery,
        "kills": lab.kills,
        "kills_at_crash_points": lab.self_kills,  # the others: at a random moment, or between requests
        "acknowledged": {"enrolments": len(lab.acked_enrols), "erasures": len(lab.acked_erases),
                         "rotations": lab.rotations},
        "cut_off_operations": len(lab.unacked),
        "cut_off_erasures_that_committed": len(lab.erased_unacked),
        "checks_with_problems": sum(1 for c in checks if c.problems()),
        "max_orphan_keys": max((len(c.orphans) for c in checks), default=0),
        "max_half_done": max((len(c.half_done) for c in checks), default=0),
        "max_pending_intents": max((c.pending_intents for c in checks), default=0),
        "acked_enrolments_lost": max((len(c.acked_enrol_missing) for c in checks), default=0),
        "acked_erasures_incomplete": max((len(c.acked_erase_left) for c in checks), default=0),
        "audit_verify_failures": sum(1 for c in [*checks, final] if c.audit_verify_rc not in (None, 0)),
        "final": {"orphan_keys": len(final.orphans), "half_done": len(final.half_done),
                  "pending_intents": final.pending_intents, "acked_enrolments_lost": len(final.acked_enrol_missing),
                  "acked_erasures_incomplete": len(final.acked_erase_left),
                  "audit_verify_rc": final.audit_verify_rc},
        "seconds": round(time.monotonic() - started, 1),
    }


def _pg_database() -> tuple[str, str]:
    admin = os.environ.get("FACEWARDEN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"fw_crash_{uuid.uuid4().hex[:10]}"
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin, name


def _drop(admin: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    import json

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_faces_arg(parser)
    parser.add_argument("--sqlite-kills", type=int, default=20)
    parser.add_argument("--pg-kills", type=int, default=10)
    parser.add_argument("--baseline-kills", type=int, default=10, help="SQLite, with recovery off")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    faces = require_faces(args.faces, "people/train", "people/test")
    results: dict[str, Any] = {"bench": "crash_consistency", "runs": []}
    with tempfile.TemporaryDirectory(prefix="fw-crash-") as tmp:
        if args.sqlite_kills:
            results["runs"].append(run("sqlite", Path(tmp) / "sqlite", faces, None, args.sqlite_kills, args.seed,
                                       recovery=True))
        if args.pg_kills:
            admin, name = _pg_database()
            try:
                url = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + name
                results["runs"].append(run("postgresql", Path(tmp) / "pg", faces, url, args.pg_kills,
                                           args.seed + 1, recovery=True))
            finally:
                _drop(admin, name)
        if args.baseline_kills:
            results["runs"].append(run("baseline", Path(tmp) / "baseline", faces, None, args.baseline_kills,
                                       args.seed, recovery=False))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
