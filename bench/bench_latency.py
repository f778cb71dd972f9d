"""Verify and identify latency over real HTTPS, and what the security layers cost on verify.

Set-up: a temporary FACEWARDEN_HOME, `facewarden init` (admin API key), `facewarden enroll --folder
people/train`, then `facewarden serve --port <free>` as a subprocess, spoken to with httpx and the
generated self-signed certificate (keep-alive connection).

Measured, interleaved round by round with the same probe photos (people/test single-face photos of
enrolled people), after a warm-up:
  * HTTPS POST /v1/subjects/{subject}/verify and POST /v1/identify: p50/p95;
  * in process, baseline: decode + engine.single_face + distance to the subject's plaintext embeddings
    held in a numpy array (no auth, no database, no decryption);
  * in process, secured: service.accounts.authenticate(api_key) + service.matching.verify(actor, subject, photo)
    (API-key lookup, database read with row lock, data-key unwrap, AES-GCM decryption, lockout update,
    commit). Overhead = secured / baseline - 1 (goal: under 10 %);
  * the security layers alone (authenticate + verify with the face pipeline's result precomputed),
    a low-noise estimate of the same overhead;
  * transport: HTTPS verify vs in-process secured verify.

The server's rate limit is raised for the run (FACEWARDEN_RATE_LIMIT_PER_MINUTE) so that the limiter is
still consulted on every request but never answers 429.

Usage:  .venv/bin/python bench/bench_latency.py [--faces DIR] [--n 30] [--warmup 5]
Prints JSON to stdout, progress to stderr. Embeddings are never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from _common import CpuMeter, add_faces_arg, emit, log, machine, require_faces, summary_ms
from facewarden.config import Settings
from facewarden.imaging import decode_image
from facewarden.service import LOCAL_ADMIN, build_service

FACEWARDEN = [sys.executable, "-m", "facewarden.cli"]
# Single-face photos in people/test and the enrolled subject each one shows.
PROBES = [("obama1.jpg", "obama"), ("johnsnow_test1.jpg", "kit_harington"), ("alex_lacamoire1.jpg", "alex_lacamoire")]
GOAL_OVERHEAD = 0.10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(FACEWARDEN + args, env=env, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        sys.exit(f"error: `facewarden {args[0]}` failed ({r.returncode}): {r.stderr[-2000:]}")
    return r


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_faces_arg(ap)
    ap.add_argument("--n", type=int, default=30, help="timed requests per kind")
    ap.add_argument("--warmup", type=int, default=5, help="untimed rounds first")
    args = ap.parse_args()
    root = require_faces(args.faces, "people/train", "people/test")
    info = machine()

    # One configuration for the server and for this process: nothing inherited from the caller's environment.
    for k in [k for k in os.environ if k.startswith("FACEWARDEN_") and k != "FACEWARDEN_SHARED"]:
        del os.environ[k]
    tmp = tempfile.TemporaryDirectory(prefix="fw-bench-")
    home = Path(tmp.name) / "home"
    # Photo verification: the purpose needs no liveness session here (bench_liveness.py times liveness).
    os.environ.update({"FACEWARDEN_HOME": str(home), "FACEWARDEN_WORKERS": "2",
                       "FACEWARDEN_RATE_LIMIT_PER_MINUTE": "1000000", "FACEWARDEN_LIVENESS_REQUIRED_PURPOSES": "[]",
                       "FACEWARDEN_PERSON_VERIFY_LIMIT_PER_HOUR": "1000000",
                       "FACEWARDEN_PERSON_SEARCH_LIMIT_PER_DAY": "1000000"})
    env = dict(os.environ)
    proc: subprocess.Popen[bytes] | None = None
    server_log = Path(tmp.name) / "server.log"
    result: dict[str, Any] = {"benchmark": "verify_identify_latency", "machine": info}
    try:
        log("facewarden init")
        key = cli(["init"], env).stdout.strip().splitlines()[-1]
        if not key.startswith("fw_"):
            sys.exit("error: `facewarden init` did not print an API key as its last line")
        log("facewarden enroll --folder people/train")
        enrol_s, enrol = timed(lambda: cli(["enroll", "--folder", str(root / "people" / "train"),
                                            "--consent-method", "bench"], env))
        enrolled = json.loads(enrol.stdout)
        subjects = {e["subject"]: e["templates"] for e in enrolled["enrolled"]}

        port = free_port()
        log(f"facewarden serve --port {port}")
        with server_log.open("wb") as fh:
            proc = subprocess.Popen([*FACEWARDEN, "serve", "--port", str(port)], env=env, stdout=fh,
                                    stderr=subprocess.STDOUT)
        cert = home / "tls" / "cert.pem"
        ctx = ssl.create_default_context(cafile=str(cert))
        base = f"https://127.0.0.1:{port}"
        t_up = time.perf_counter()
        while True:
            if proc.poll() is not None:
                sys.exit(f"error: the server exited ({proc.returncode}): {server_log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/v1/health", verify=ctx, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.perf_counter() - t_up > 180:
                sys.exit("error: the server did not come up in 180 s")
            time.sleep(0.25)
        server_start_s = time.perf_counter() - t_up

        # In-process: the same home, keys and database as the server.
        log("in-process service and engine")
        service = build_service(Settings())
        engine = service.embedder
        limits = service.ctx.limits
        plain = {s: np.stack([np.asarray(t["embedding"], dtype=np.float32)
                              for t in service.rights.export(LOCAL_ADMIN, s)["templates"]]) for s in subjects}
        probes = []
        for fname, subject in PROBES:
            p = root / "people" / "test" / fname
            if not p.is_file() or subject not in subjects:
                sys.exit(f"error: probe {p} or subject {subject} is missing")
            data = p.read_bytes()
            r = service.matching.verify(service.accounts.authenticate(key), subject, data, purpose="login")
            if not r.match:  # a non-match counts towards the lockout: leave such a probe out
                log(f"  probe {fname} does not match {subject} (distance {r.distance:.3f}); left out")
                continue
            probes.append((fname, subject, data))
        if not probes:
            sys.exit("error: no probe photo matches its subject")

        def baseline_verify(subject: str, data: bytes) -> bool:
            face = engine.single_face(decode_image(data, limits))
            distance = np.linalg.norm(plain[subject] - face.embedding, axis=1).min()
            return bool(distance <= service.settings.match_threshold)

        def secured_verify(subject: str, data: bytes) -> bool:
            return service.matching.verify(service.accounts.authenticate(key), subject, data, purpose="login").match

        client = httpx.Client(base_url=base, verify=ctx, headers={"Authorization": f"Bearer {key}"}, timeout=60)

        def https_verify(subject: str, data: bytes) -> bool:
            r = client.post(f"/v1/subjects/{subject}/verify", files={"image": ("probe.jpg", data, "image/jpeg")},
                            data={"purpose": "login"})
            if r.status_code != 200:
                raise SystemExit(f"error: verify over HTTPS answered {r.status_code}: {r.text[:500]}")
            return bool(r.json()["match"])

        def https_identify(subject: str, data: bytes) -> bool:
            r = client.post("/v1/identify", files={"image": ("probe.jpg", data, "image/jpeg")},
                            data={"purpose": "login"})
            if r.status_code != 200:
                raise SystemExit(f"error: identify over HTTPS answered {r.status_code}: {r.text[:500]}")
            cands = r.json()["faces"][0]["candidates"]
            return bool(cands) and cands[0]["subject"] == subject

        def inproc_identify(subject: str, data: bytes) -> bool:
            faces = service.matching.identify(service.accounts.authenticate(key), data, purpose="login")
            return bool(faces[0].candidates) and faces[0].candidates[0].subject == subject

        verify_ops: dict[str, Callable[[str, bytes], bool]] = {
            "https": https_verify, "baseline": baseline_verify, "secured": secured_verify}
        identify_ops: dict[str, Callable[[str, bytes], bool]] = {
            "https": https_identify, "in_process": inproc_identify}

        def rounds(ops: dict[str, Callable[[str, bytes], bool]],
                   label: str) -> tuple[dict[str, list[float]], dict[str, int], list[str]]:
            """Warm-up, then n rounds; each round runs every op once on the same probe, rotating the order."""
            times: dict[str, list[float]] = {k: [] for k in ops}
            used: list[str] = []
            ok: dict[str, int] = dict.fromkeys(ops, 0)
            names = list(ops)
            for i in range(args.warmup + args.n):
                fname, subject, data = probes[i % len(probes)]
                if i >= args.warmup:
                    used.append(fname)
                k = (i // len(probes)) % len(names)  # every probe meets every order
                order = names[k:] + names[:k]
                for name in order:
                    t0 = time.perf_counter()
                    good = ops[name](subject, data)
                    dt = time.perf_counter() - t0
                    if i >= args.warmup:
                        times[name].append(dt)
                        ok[name] += int(good)
                if i + 1 == args.warmup:
                    log(f"  {label}: warm-up done, {args.n} timed rounds")
            return times, ok, used

        meter = CpuMeter(extra_pids=(proc.pid,))
        log("verify: HTTPS, in-process baseline, in-process secured (interleaved)")
        v_times, v_ok, v_probes = rounds(verify_ops, "verify")
        log("identify: HTTPS, in-process (interleaved)")
        i_times, i_ok, _ = rounds(identify_ops, "identify")

        log("security layers alone and authentication alone")
        cached = {data: engine.single_face(decode_image(data, limits)) for _, _, data in probes}
        service.ctx.probe = cached.__getitem__  # type: ignore[method-assign]  # face pipeline precomputed
        try:
            layers, auth = [], []
            for i in range(args.warmup + args.n):
                _, subject, data = probes[i % len(probes)]
                dt, _ = timed(lambda subject=subject, data=data: secured_verify(subject, data))
                da, _ = timed(lambda: service.accounts.authenticate(key))
                if i >= args.warmup:
                    layers.append(dt)
                    auth.append(da)
        finally:
            del service.ctx.probe
        log("health: keep-alive and new TLS connections")
        health_keep, health_new = [], []
        for i in range(args.warmup + args.n):
            dk, _ = timed(lambda: client.get("/v1/health").raise_for_status())
            dn, _ = timed(lambda: httpx.get(f"{base}/v1/health", verify=ctx).raise_for_status())
            if i >= args.warmup:
                health_keep.append(dk)
                health_new.append(dn)
        contention = meter.stop()
        client.close()

        def per_probe(kind: str) -> dict[str, float]:
            return {f: round(statistics.median(t for t, g in zip(v_times[kind], v_probes, strict=True)
                                               if g == f) * 1000, 2) for f, _, _ in probes}

        b50 = statistics.median(v_times["baseline"])
        s50 = statistics.median(v_times["secured"])
        h50 = statistics.median(v_times["https"])
        sb = summary_ms(v_times["baseline"])
        ss = summary_ms(v_times["secured"])
        layers_50 = statistics.median(layers)
        paired = [s / b - 1 for s, b in zip(v_times["secured"], v_times["baseline"], strict=True)]
        result.update({
            "setup": {
                "gallery_subjects": len(subjects), "gallery_templates": sum(subjects.values()),
                "enroll_cli_s": round(enrol_s, 2), "server_ready_s": round(server_start_s, 2),
                "probes": [f"people/test/{f} -> {s}" for f, s, _ in probes],
                "timed_per_kind": args.n, "warmup_rounds": args.warmup,
                "server": "facewarden serve (uvicorn, TLS with the generated self-signed certificate), "
                          "httpx keep-alive client, loopback",
                "rate_limit_per_minute": "raised to 1000000 for the run (limiter still consulted)",
                "detector": service.settings.detector, "detect_max_side": service.settings.detect_max_side,
            },
            "https": {
                "verify": summary_ms(v_times["https"]) | {"matches": v_ok["https"]},
                "identify": summary_ms(i_times["https"]) | {"top1_correct": i_ok["https"]},
                "health_keepalive": summary_ms(health_keep),
                "health_new_tls_connection": summary_ms(health_new),
            },
            "in_process": {
                "verify_baseline_no_security": sb | {"matches": v_ok["baseline"]},
                "verify_secured": ss | {"matches": v_ok["secured"]},
                "identify_secured": summary_ms(i_times["in_process"]) | {"top1_correct": i_ok["in_process"]},
                "security_layers_only": summary_ms(layers),
                "authenticate_only": summary_ms(auth),
                "verify_p50_ms_per_probe": {k: per_probe(k) for k in ("baseline", "secured", "https")},
            },
            "security_overhead_verify": {
                "overhead_p50": round(s50 / b50 - 1, 4),
                "overhead_p95": round(ss["p95_ms"] / sb["p95_ms"] - 1, 4),
                "overhead_median_of_paired_rounds": round(statistics.median(paired), 4),
                "difference_p50_ms": round((s50 - b50) * 1000, 2),
                "security_layers_only_p50_over_baseline_p50": round(layers_50 / b50, 4),
                "goal_under": GOAL_OVERHEAD,
                "meets_goal": s50 / b50 - 1 < GOAL_OVERHEAD,
            },
            "transport_verify": {
                "https_p50_ms": round(h50 * 1000, 2), "in_process_secured_p50_ms": round(s50 * 1000, 2),
                "difference_ms": round((h50 - s50) * 1000, 2), "https_over_in_process": round(h50 / s50, 4),
            },
            "cpu_contention": contention,
        })
    finally:
        if proc is not None and proc.poll() is None:
            log("stopping the server (SIGTERM)")
            t0 = time.perf_counter()
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            text = server_log.read_text(errors="replace")
            # uvicorn shuts down gracefully, then re-raises the signal: exit status -SIGTERM is normal.
            graceful = "Application shutdown complete" in text and "Finished server process" in text
            result["server_shutdown"] = {
                "signal": "SIGTERM", "exit_code": code, "seconds": round(time.perf_counter() - t0, 2),
                "clean": graceful and code in (0, -signal.SIGTERM),
                "log_mentions_embedding": "embedding" in text.lower()}
        tmp.cleanup()
    emit(result)


if __name__ == "__main__":
    main()
