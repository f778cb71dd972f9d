"""Soak: a real `facewarden serve` under many slow and stalled connections plus mixed load, for longer than the
CI test (tests/e2e/test_soak.py). Prints one JSON document: RSS before, at peak and after the abuse; how many
stalled sockets the server closed, by kind; verify latency during the abuse against a quiet baseline.

    .venv/bin/python bench/bench_soak.py [--stalled 1500] [--duration 60]

Uses the server's default timeouts (10 s for a request head, 15 s of body silence) unless told otherwise.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from _common import REPO, add_faces_arg, emit, log, machine, require_faces, summary_ms

sys.path.insert(0, str(REPO))
from tests.e2e.server import Server, Stalled  # the same real-server harness as the e2e tests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_faces_arg(parser)
    parser.add_argument("--stalled", type=int, default=1500, help="stalled connections in all, opened in waves")
    parser.add_argument("--waves", type=int, default=5)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of abuse")
    parser.add_argument("--baseline", type=float, default=15.0, help="seconds of quiet verifies first")
    parser.add_argument("--header-timeout", type=float, default=None, help="FACEWARDEN_HEADER_TIMEOUT_S")
    parser.add_argument("--body-idle-timeout", type=float, default=None, help="FACEWARDEN_BODY_IDLE_TIMEOUT_S")
    args = parser.parse_args()
    faces = require_faces(args.faces, "people/train", "people/test")
    env = {}
    if args.header_timeout is not None:
        env["FACEWARDEN_HEADER_TIMEOUT_S"] = str(args.header_timeout)
    if args.body_idle_timeout is not None:
        env["FACEWARDEN_BODY_IDLE_TIMEOUT_S"] = str(args.body_idle_timeout)
    header_timeout = args.header_timeout or 10.0
    body_idle = args.body_idle_timeout or 15.0

    with tempfile.TemporaryDirectory(prefix="fw-soak-") as tmp:
        log("starting the server")
        server = Server(Path(tmp) / "home", **env)
        try:
            result = run(server, faces, args, header_timeout, body_idle)
        finally:
            server.stop()
    result["machine"] = machine()
    emit(result)


def run(server: Server, faces: Path, args: argparse.Namespace, header_timeout: float,
        body_idle: float) -> dict[str, object]:
    probe = (faces / "people" / "test" / "obama1.jpg").read_bytes()
    group = (faces / "people" / "test" / "kit_with_rose.jpg").read_bytes()
    senders: dict[str, Callable[[httpx.Client], httpx.Response]] = {
        "health": lambda c: c.get("/v1/health"),
        "verify": lambda c: c.post("/v1/subjects/obama/verify", files={"image": ("p.jpg", probe)},
                                   data={"purpose": "login"}),
        "identify": lambda c: c.post("/v1/identify", files={"image": ("g.jpg", group)},
                                     data={"purpose": "login", "all_faces": "true"}),
        "bad_upload": lambda c: c.post("/v1/identify", files={"image": ("x.jpg", b"\xff\xd8broken" * 5000)},
                                       data={"purpose": "login"}),
    }
    with server.client() as c:
        for name in ("obama", "biden"):
            folder = faces / "people" / "train" / name
            photos = [("images", (p.name, p.read_bytes())) for p in sorted(folder.iterdir())]
            c.post("/v1/subjects", data={"subject": name, "purpose": "login", "legal_basis": "contract"},
                   files=photos).raise_for_status()
        for _ in range(5):  # warm-up: lazy loads and pools belong to the baseline
            for send in senders.values():
                send(c)
        log(f"baseline: {args.baseline:.0f} s of quiet verifies")
        quiet: list[float] = []
        end = time.monotonic() + args.baseline
        while time.monotonic() < end:
            start = time.perf_counter()
            senders["verify"](c).raise_for_status()
            quiet.append(time.perf_counter() - start)
    rss_before, fds_before = server.rss_mib(), server.open_fds()

    statuses: dict[str, Counter[int]] = {kind: Counter() for kind in senders}
    loaded: list[float] = []
    stop = threading.Event()

    def load(kind: str) -> None:
        with server.client() as own:
            while not stop.is_set():
                start = time.perf_counter()
                try:
                    statuses[kind][senders[kind](own).status_code] += 1
                except httpx.HTTPError:
                    statuses[kind][0] += 1
                if kind == "verify":
                    loaded.append(time.perf_counter() - start)

    abuse = Stalled(server)
    threads = [threading.Thread(target=load, args=(kind,)) for kind in senders]
    for t in threads:
        t.start()
    per_wave = args.stalled // args.waves
    peak = rss_before
    log(f"abuse: {args.stalled} stalled connections in {args.waves} waves over {args.duration:.0f} s, mixed load")
    end = time.monotonic() + args.duration
    next_wave, waves = time.monotonic(), 0
    while time.monotonic() < end:
        if waves < args.waves and time.monotonic() >= next_wave:
            third = per_wave // 3
            abuse.open(no_tls=third, partial_heads=third, partial_bodies=per_wave - 2 * third)
            waves += 1
            next_wave += args.duration / args.waves
        peak = max(peak, server.rss_mib())
        time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    opened = Counter(kind for kind, _ in abuse.socks)
    log("waiting for the server to close the stalled sockets")
    start = time.monotonic()
    closed = abuse.wait_closed(within_s=header_timeout + body_idle + 10)
    closed_within = time.monotonic() - start
    abuse.close()
    time.sleep(5)
    rss_after, fds_after = server.rss_mib(), server.open_fds()
    q, a = summary_ms(quiet), summary_ms(loaded) if loaded else {}
    return {
        "benchmark": "soak",
        "config": {"stalled": args.stalled, "waves": args.waves, "duration_s": args.duration,
                   "header_timeout_s": header_timeout, "body_idle_timeout_s": body_idle},
        "rss_mib": {"before": round(rss_before, 1), "peak": round(peak, 1), "after": round(rss_after, 1),
                    "after_over_before": round(rss_after / rss_before, 3)},
        "open_fds": {"before": fds_before, "after": fds_after},
        "stalled": {"opened": dict(opened), "closed_by_server": closed, "all_closed": closed == dict(opened),
                    "seconds_waited_after_abuse": round(closed_within, 1)},
        "statuses": {kind: dict(counts) for kind, counts in statuses.items()},
        "verify_latency": {"quiet": q, "under_abuse": a,
                           "p50_ratio": round(a["p50_ms"] / q["p50_ms"], 2) if a else None,
                           "p95_ratio": round(a["p95_ms"] / q["p95_ms"], 2) if a else None},
    }


if __name__ == "__main__":
    main()
