"""The long fuzzing campaign of issue 10: the image decoder, the video decoder (clips and still-frame lists) and
every API endpoint as every role, on SQLite and PostgreSQL. The CI fuzz tests run the same generators and checks
with a few hundred cases (tests/unit/test_fuzz_imaging.py, tests/api/test_fuzz_api.py).

Cases: mutated real photos and clips of the shared data (bit flips, truncation, insertion, huge declared sizes,
damaged codec tags and display matrices, splices), fresh pictures of odd sizes and modes (strips included), random
bytes, one decoded photo in ten then through the real face engine's detection and embedding; for the
API, schemathesis' valid and invalid requests from the app's own OpenAPI document, each sent as one of the roles
(every API-key role, a data subject's credential, an unknown key, nobody) to an in-process app over a real service
(real dlib engine, real database) in which a subject is enrolled.

Counted: cases per target, 5xx (for the decoders: any exception other than a FaceWardenError of a client kind),
hangs (a case over its time bound), answers that do not conform to the OpenAPI document, elapsed time.

Usage:  .venv/bin/python bench/fuzz.py [--images 10000] [--videos 1000] [--api 5000] [--backends sqlite,postgresql]
        [--seed 0] [--faces DIR]      (also `make fuzz`)
        .venv/bin/python bench/fuzz.py --server-rss 300 [--idle 30]
            instead: schemathesis over HTTPS against a real `facewarden serve` (SQLite, TLS) for that many seconds,
            as an admin and an operator key made with the CLI, sampling the server's RSS each second. The baseline
            is its RSS after a warm-up fuzz; "after" is after --idle seconds of quiet (tests/e2e/fuzz_rss.py).
Prints JSON to stdout, progress to stderr; exit status 1 when any 5xx or hang was seen. Never prints case bodies.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests.* holds the generators

from _common import add_faces_arg, emit, log, machine, require_faces


def fuzz_decoders(faces: Path, images: int, videos: int, seed: int, engine: Any) -> dict[str, Any]:
    from tests.fuzz_cases import frames_case, image_case, image_seeds, run_case, video_case, video_seeds

    from facewarden.imaging import decode_image
    from facewarden.imaging.video import decode_frames, decode_video

    photo_seeds, clip_seeds = image_seeds(faces), video_seeds(faces)
    out: dict[str, Any] = {}

    def photo(rng: random.Random) -> Any:
        data = image_case(photo_seeds, rng)
        through_engine = engine is not None and rng.random() < 0.1  # what every use case does next: detection

        def case() -> None:
            rgb = decode_image(data)
            if through_engine:
                engine.faces(rgb)
        return case

    plan = (("images", images, 10.0, photo),
            ("videos", videos, 30.0, lambda rng: (lambda d=video_case(clip_seeds, rng): decode_video(d))),
            ("frame_lists", videos // 4, 30.0,
             lambda rng: (lambda items=frames_case(photo_seeds, rng): decode_frames(items))))
    for target, n, bound, make in plan:
        codes: Counter[str] = Counter()
        crashes: list[str] = []
        hangs = 0
        slowest = 0.0
        t0 = time.perf_counter()
        for i in range(n):
            rng = random.Random(f"{seed}-{target}-{i}")
            try:
                outcome = run_case(make(rng), bound)
                codes[outcome.code or "decoded"] += 1
                slowest = max(slowest, outcome.seconds)
            except Exception as exc:  # Hang, or anything that would have been a 500
                if type(exc).__name__ == "Hang":
                    hangs += 1
                else:
                    crashes.append(f"case {i}: {type(exc).__name__}")
            if (i + 1) % 1000 == 0:
                log(f"{target}: {i + 1}/{n}")
        out[target] = {"cases": n, "5xx": len(crashes), "hangs": hangs, "elapsed_s": round(time.perf_counter() - t0, 1),
                       "slowest_case_s": round(slowest, 3), "outcomes": dict(codes.most_common()),
                       "crashes": crashes[:20]}
    return out


def _database(backend: str) -> tuple[str | None, Any]:
    if backend == "sqlite":
        return None, lambda: None
    import psycopg
    from tests.conftest import PG_ADMIN_DSN, _pg_dsn_for

    name = f"fw_fuzz_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return _pg_dsn_for(name).replace("postgresql://", "postgresql+psycopg://"), drop


def fuzz_api(faces: Path, backend: str, n: int, seed: int, engine: Any) -> dict[str, Any]:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st
    from tests.conftest import Api, make_settings
    from tests.fuzz_api import build_world, fuzz_one, roles_strategy, strategy

    from facewarden.service import build_service

    url, drop = _database(backend)
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as home:
            # per-person limits raised so that the campaign keeps reaching the use cases behind them
            service = build_service(make_settings(Path(home) / "home", url, person_search_limit_per_day=10**6,
                                                  person_verify_limit_per_hour=10**6,
                                                  person_export_limit_per_day=10**6),
                                    create=True, engine_factory=lambda: engine)
            try:
                world = build_world(Api(service), faces)

                @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
                          suppress_health_check=list(HealthCheck), derandomize=False)
                @given(case=strategy(world.schema), role=roles_strategy(world),
                       real_subject=st.booleans(), tweak=st.none() | st.integers(0, 2**32 - 1))
                def campaign(case: Any, role: str, real_subject: bool, tweak: int | None) -> None:
                    with contextlib.suppress(AssertionError):  # counted in world.stats and world.failures
                        fuzz_one(world, case, role, real_subject=real_subject, tweak=tweak)
                    if world.stats["cases"] % 500 == 0:
                        log(f"api {backend}: {world.stats['cases']}/{n}")

                random.seed(seed)
                campaign()
            finally:
                service.db.dispose()
                service.keyring.store.engine.dispose()
    finally:
        drop()
    stats = dict(world.stats)
    return {"cases": stats.get("cases", 0), "5xx": stats.get("5xx", 0), "hangs": stats.get("hangs", 0),
            "nonconforming": stats.get("nonconforming", 0), "elapsed_s": round(time.perf_counter() - t0, 1),
            "status_classes": {k: v for k, v in stats.items() if k.endswith("xx")},
            "slowest_request_ms": stats.get("max_ms", 0), "operations_answered_below_400": len(world.operations),
            "cases_by_caller": dict(world.roles.most_common()),
            "error_codes": dict(world.codes.most_common(25)), "failures": world.failures[:30]}


def fuzz_server_rss(faces: Path, seconds: float, idle_s: float, seed: int) -> dict[str, Any]:
    from tests.e2e.fuzz_rss import measure
    from tests.e2e.server import Server

    with tempfile.TemporaryDirectory(prefix="fw-fuzz-rss-") as tmp:
        log("starting the server")
        server = Server(Path(tmp) / "home")
        try:
            log(f"fuzzing it for {seconds:.0f} s, then {idle_s:.0f} s idle")
            out = measure(server, faces, seconds, idle_s=idle_s, seed=seed)
        finally:
            lines = server.stop().splitlines()
    # where a 5xx came from: the server's error lines and each traceback's last line (exception types and
    # messages, never request bodies)
    out["server_errors"] = [line for i, line in enumerate(lines) if " ERROR " in line or (
        i + 1 < len(lines) and lines[i + 1].startswith("20") and i > 0 and lines[i - 1].startswith("  "))][:20]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_faces_arg(parser)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--videos", type=int, default=1_000)
    parser.add_argument("--api", type=int, default=5_000, help="API cases per backend")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--server-rss", type=float, default=0, metavar="SECONDS",
                        help="only fuzz a real server over HTTPS for SECONDS and report its RSS")
    parser.add_argument("--idle", type=float, default=30.0, help="with --server-rss: quiet seconds before 'after'")
    args = parser.parse_args()
    if args.server_rss:
        out = fuzz_server_rss(require_faces(args.faces, "people"), args.server_rss, args.idle, args.seed)
        emit({"machine": machine(), "server_rss": out})
        sys.exit(1 if out["5xx"] or out["connection_errors"] or out["ratio_after_before"] > 1.2 else 0)
    faces = require_faces(args.faces, "people", "video")
    t0 = time.perf_counter()
    result: dict[str, Any] = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()}}
    from facewarden.vision.engine import FaceEngine

    engine = FaceEngine()
    log(f"decoders: {args.images} images (one in ten then through the face engine), {args.videos} videos")
    result["decoders"] = fuzz_decoders(faces, args.images, args.videos, args.seed, engine)
    result["api"] = {}
    if args.api:
        for backend in [b for b in args.backends.split(",") if b]:
            log(f"api on {backend}: {args.api} cases")
            result["api"][backend] = fuzz_api(faces, backend, args.api, args.seed, engine)
    result["elapsed_s"] = round(time.perf_counter() - t0, 1)
    parts = [*result["decoders"].values(), *result["api"].values()]
    result["total"] = {"cases": sum(p["cases"] for p in parts), "5xx": sum(p["5xx"] for p in parts),
                       "hangs": sum(p["hangs"] for p in parts)}
    emit(result)
    sys.exit(1 if result["total"]["5xx"] or result["total"]["hangs"] else 0)


if __name__ == "__main__":
    main()
