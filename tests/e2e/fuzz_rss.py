"""Schemathesis against a real `facewarden serve` over HTTPS while its RSS is sampled every second (issue 10,
item 8: "under fuzzing the RSS went from 227 MB to 2.1 GB"). Shared by tests/e2e/test_fuzz_memory.py (bounded)
and `bench/fuzz.py --server-rss SECONDS` (long). Never prints or logs request bodies (they may hold photos)."""

from __future__ import annotations

import json
import random
import ssl
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import FlakyFailure
from schemathesis import GenerationMode
from schemathesis.transport.prepare import get_exclude_headers

from tests.e2e.server import FACEWARDEN, Server

SUBJECT = "obama"


class _TimeUp(Exception):
    """Ends hypothesis' generation loop when the time is spent (it has no time bound of its own)."""


class RssSampler:
    """The server's VmRSS once a second in a thread: its peak, and every sample for a trend."""

    def __init__(self, server: Server, every_s: float = 1.0) -> None:
        self.server, self.every_s = server, every_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.samples.append((time.monotonic() - self._t0, self.server.rss_mib()))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def operator_key(server: Server) -> str:
    """An operator key made with the CLI, as an operator would (the server has the same home)."""
    out = subprocess.run([*FACEWARDEN, "apikey", "create", "fuzz operator", "--role", "operator"], env=server.env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return str(json.loads(out.stdout)["api_key"])


class _TlsAdapter(requests.adapters.HTTPAdapter):
    """The harness's SSL context (it trusts the server's self-signed certificate, which urllib3's own checks
    refuse as a CA)."""

    def __init__(self, ctx: ssl.SSLContext, source: str) -> None:
        self.ctx, self.source = ctx, source
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"], kwargs["source_address"] = self.ctx, (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


class _Client(requests.Session):
    """One client address and its keep-alive connection. `authorization` goes on every request it sends, over
    whatever schemathesis generated (its negative cases also set an auth object that requests applies last)."""

    def __init__(self, ctx: ssl.SSLContext, source: str) -> None:
        super().__init__()
        self.mount("https://", _TlsAdapter(ctx, source))
        self.authorization: str | None = None

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        prepared = super().prepare_request(request)
        if self.authorization is not None:
            prepared.headers["Authorization"] = self.authorization
        return prepared


class ServerFuzz:
    """Generated requests (valid three times in four) for every operation of the server's own OpenAPI document,
    each sent as the administrator or an operator, over keep-alive HTTPS connections."""

    CLIENTS = 16

    def __init__(self, server: Server, faces: Path, operator: str) -> None:
        self.server = server
        # Negative cases leave out the Authorization header now and then: each is a failed login, and the
        # failed-login throttle (30 a minute per address) would soon answer 429 to every case from that address.
        # Those go from an address of their own; the others from CLIENTS addresses in turn, each with its own
        # keep-alive connection, as real clients do.
        self.sessions = [_Client(server.ctx, source)
                         for source in [f"127.0.1.{i + 1}" for i in range(self.CLIENTS)] + ["127.0.2.1"]]
        self.turn = 0
        doc = self.sessions[0].get(f"{server.base}/openapi.json", timeout=30).json()
        self.schema = schemathesis.openapi.from_dict(doc)
        self.keys = {"admin": f"Bearer {server.key}", "operator": f"Bearer {operator}"}
        self.stats: Counter[str] = Counter()
        self.answers: Counter[str] = Counter()  # "status error-code"
        self.failures: list[str] = []  # "METHOD /template: status": no bodies, no subject names
        with server.client() as c:  # a real subject, so that some generated requests reach stored data
            photo = faces / "people" / "train" / SUBJECT / "obama.jpg"
            r = c.post("/v1/subjects", data={"subject": SUBJECT, "purpose": "login", "legal_basis": "contract"},
                       files=[("images", (photo.name, photo.read_bytes()))])
            assert r.status_code == 201, r.status_code

    def one(self, case: Any, role: str, real_subject: bool) -> None:
        if real_subject and isinstance(case.path_parameters, dict) and "subject" in case.path_parameters:
            case.path_parameters["subject"] = SUBJECT
        label = f"{case.operation.method.upper()} {case.operation.path}"
        self.turn += 1
        anonymous = "Authorization" in get_exclude_headers(case)
        session = self.sessions[-1 if anonymous else self.turn % self.CLIENTS]
        session.authorization = None if anonymous else self.keys[role]
        try:
            response = case.call(base_url=self.server.base, session=session, timeout=30)
        except requests.RequestException as exc:  # a dropped connection or a hang: as bad as a 5xx
            self.stats["errors"] += 1
            self.failures.append(f"{label}: {type(exc).__name__}")
            return
        self.stats["cases"] += 1
        self.stats[f"{response.status_code // 100}xx"] += 1
        self.answers[f"{response.status_code} {_error_code(response)}"] += 1
        if response.status_code >= 500:
            self.failures.append(f"{label}: {response.status_code}")

    def run(self, seconds: float, seed: int = 0) -> None:
        """Fuzz for `seconds` (the case in flight finishes)."""
        positive = self.schema.as_strategy(GenerationMode.POSITIVE)
        cases = st.one_of(positive, positive, positive, self.schema.as_strategy(GenerationMode.NEGATIVE))
        end = time.monotonic() + seconds

        @settings(max_examples=10**9, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck), derandomize=False)
        @given(case=cases, role=st.sampled_from(["admin", "operator"]), real_subject=st.booleans())
        def campaign(case: Any, role: str, real_subject: bool) -> None:
            if time.monotonic() >= end:
                raise _TimeUp
            self.one(case, role, real_subject)

        random.seed(seed)
        try:
            campaign()
        except _TimeUp:
            pass
        except FlakyFailure as exc:  # hypothesis replayed the case that found the time spent: still just time up
            if exc.subgroup(_TimeUp) is None:
                raise


def _error_code(response: requests.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except Exception:
        return "-"


def measure(server: Server, faces: Path, seconds: float, *, warmup_s: float = 20.0, idle_s: float = 30.0,
            seed: int = 0) -> dict[str, Any]:
    """Warm up (lazy model loads, pools and caches belong to the baseline), note the RSS, fuzz for `seconds`
    sampling RSS each second, idle `idle_s`, note it again."""
    fuzz = ServerFuzz(server, faces, operator_key(server))
    rss_cold = server.rss_mib()
    fuzz.run(warmup_s, seed)
    warm_cases = fuzz.stats["cases"]
    time.sleep(5)
    rss_before = server.rss_mib()
    with RssSampler(server) as sampler:
        fuzz.run(seconds, seed + 1)
        fuzz_samples = list(sampler.samples)
        time.sleep(idle_s)
    rss_after = server.rss_mib()
    peak = max((rss for _, rss in fuzz_samples), default=rss_before)
    quarter = max(len(fuzz_samples) // 4, 1)  # growth between the first and the last quarter of the fuzzing
    first = sum(r for _, r in fuzz_samples[:quarter]) / quarter
    last = sum(r for _, r in fuzz_samples[-quarter:]) / quarter
    per_minute: dict[int, float] = {}  # the highest sample of each minute: does it level off?
    for t, rss in fuzz_samples:
        per_minute[int(t // 60)] = max(per_minute.get(int(t // 60), 0.0), rss)
    stats = fuzz.stats
    return {"seconds": seconds, "warmup_cases": warm_cases, "cases": stats["cases"] - warm_cases,
            "5xx": stats["5xx"], "connection_errors": stats["errors"],
            "status_classes": {k: v for k, v in stats.items() if k.endswith("xx")},
            "rss_cold_mib": round(rss_cold, 1), "rss_before_mib": round(rss_before, 1),
            "rss_peak_mib": round(peak, 1), "rss_after_mib": round(rss_after, 1),
            "ratio_after_before": round(rss_after / rss_before, 3), "ratio_peak_before": round(peak / rss_before, 3),
            "rss_first_quarter_mib": round(first, 1), "rss_last_quarter_mib": round(last, 1),
            "rss_peak_by_minute_mib": [round(v, 1) for _, v in sorted(per_minute.items())],
            "answers": dict(fuzz.answers.most_common(20)), "failures": fuzz.failures[:30]}
