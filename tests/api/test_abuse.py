"""Abuse through the API (issue 10): key guessing while throttled, subject credentials on operator endpoints,
exceptions nobody expected, personal data in the access log, the rate-limit buckets' memory."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from starlette.types import Receive, Scope, Send

from facewarden.api import create_app
from facewarden.api.deps import FAILED_AUTH_PER_MINUTE
from facewarden.api.limits import RateLimiter
from facewarden.audit import AuditQuery
from facewarden.service import FaceService, build_service
from tests.conftest import Api, make_settings


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[tuple[FaceService, TestClient, dict[str, str]]]:
    """SQLite, no face models: enough for authentication and errors."""
    from facewarden.service import LOCAL_ADMIN

    service = build_service(make_settings(tmp_path / "home"), create=True)
    _, secret = service.accounts.create_api_key(LOCAL_ADMIN, name="ops", key_roles={"operator"})
    try:
        yield service, TestClient(create_app(service)), {"Authorization": f"Bearer {secret}"}
    finally:
        service.close()


def _login_failures(service: FaceService) -> int:
    return len(service.audit.query(AuditQuery(operation="login", limit=10_000)))


def test_a_throttled_address_is_refused_before_its_guess_is_checked(
        bare: tuple[FaceService, TestClient, dict[str, str]]) -> None:
    service, client, good = bare
    answers = [client.get("/v1/subjects", headers={"Authorization": f"Bearer fw_guess{i}"}).status_code
               for i in range(40)]
    burst = FAILED_AUTH_PER_MINUTE // 4  # the bucket's size: guesses checked before the throttle bites
    assert answers[:burst] == [401] * burst and set(answers[burst + 1:]) == {429}
    evaluated = _login_failures(service)
    assert burst <= evaluated <= burst + 2  # 40 guesses, only the budget's worth looked at (and audited)
    # While throttled, even the right key is not looked at: the answer does not tell a guess from the key.
    r = client.get("/v1/subjects", headers=good)
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    assert _login_failures(service) == evaluated
    time.sleep(60 / FAILED_AUTH_PER_MINUTE + 0.2)  # one token back: one guess is checked again
    assert client.get("/v1/subjects", headers=good).status_code == 200


def test_a_subject_credential_is_refused_on_every_operator_endpoint(api: Api, shared_faces: Path) -> None:
    """Every operation but the three /v1/me ones, with the credential of obama naming biden (or anything)."""
    train = shared_faces / "people" / "train"
    obama = api.enrol("obama", [sorted((train / "obama").iterdir())[0]]).json()["subject_credential"]
    api.enrol("biden", [sorted((train / "biden").iterdir())[0]])
    me = {"Authorization": f"Bearer {obama}"}
    spec = api.client.get("/openapi.json").json()
    tried = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if op.get("security") != [{"HTTPBearer": []}] or path.startswith("/v1/me"):
                continue  # no bearer (health, the capture page's token routes) or the credential's own routes
            url = re.sub(r"\{[^}]+\}", "biden", path)
            r = api.client.request(method, url, headers=me)
            assert r.status_code == 403, (method, path, r.text)
            assert r.json()["error"]["code"] == "self_service_only" and "/v1/me" in r.json()["error"]["message"]
            tried.append((method, path))
    subject_routes = {(m, p) for m, p in tried if "{subject}" in p}
    assert {("delete", "/v1/subjects/{subject}"), ("get", "/v1/subjects/{subject}/export"),
            ("post", "/v1/subjects/{subject}/withdraw-consent"), ("post", "/v1/subjects/{subject}/verify"),
            ("post", "/v1/subjects/{subject}/unlock"), ("put", "/v1/subjects/{subject}/passcode")} <= subject_routes
    assert len(tried) >= 40
    # Nobody was touched, and the credential still does what it is for.
    listed = {s["subject"] for s in api.client.get("/v1/subjects", headers=api.keys["operator"]).json()}
    assert listed == {"obama", "biden"}
    assert api.client.get("/v1/me", headers=me).json()["subject"] == "obama"
    assert api.client.delete("/v1/me", headers=me).json()["erased"] is True


def test_an_unexpected_exception_is_a_json_500_without_internals(
        bare: tuple[FaceService, TestClient, dict[str, str]], caplog: pytest.LogCaptureFixture) -> None:
    service, client, key = bare
    with service.db.engine.begin() as conn:  # a broken deployment: the audit table is gone
        conn.execute(text("DROP TABLE audit_entries"))
    with caplog.at_level(logging.ERROR, logger="facewarden.api"):
        r = client.get("/v1/subjects", headers=key)
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    assert r.json()["error"]["code"] == "internal_error"
    assert "audit_entries" not in r.text and "sqlite" not in r.text.lower() and "Traceback" not in r.text
    logged = "\n".join(rec.getMessage() + str(rec.exc_info) for rec in caplog.records)
    assert "GET /v1/subjects" in logged and "audit_entries" in logged  # the operator gets the cause, not the client
    assert client.get("/v1/health").status_code == 200  # and the app still answers


def test_the_access_log_names_route_templates_never_subjects_or_queries(
        bare: tuple[FaceService, TestClient, dict[str, str]], caplog: pytest.LogCaptureFixture) -> None:
    _, client, key = bare
    with caplog.at_level(logging.INFO, logger="facewarden.access"):
        client.get("/v1/subjects/Jane%20Doe/export?why=Jane+Doe+search", headers=key)
        client.delete("/v1/subjects/Jane Doe", headers=key)
        client.get("/v1/no/such/Jane-Doe/page", headers=key)
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "facewarden.access"]
    assert len(lines) == 3
    assert '"GET /v1/subjects/{subject}/export" 404' in lines[0] and "apikey:" in lines[0]
    assert '"DELETE /v1/subjects/{subject}" 404' in lines[1]
    assert '"GET <unmatched>" 404' in lines[2]
    assert not any("Jane" in line or "why" in line for line in lines)


def test_rate_limit_buckets_are_pruned_once_refilled() -> None:
    limiter = RateLimiter(per_minute=6_000_000)  # refills within microseconds
    for i in range(3 * RateLimiter.PRUNE_EVERY):
        limiter.check(f"ip:10.0.{i // 256}.{i % 256}")
    assert len(limiter) < RateLimiter.PRUNE_EVERY  # every sweep dropped the full buckets
    slow = RateLimiter(per_minute=1, burst=1)
    assert slow.check("a") == 0 and slow.check("a") > 0 and slow.wait("a") > 0  # a debt is kept, not pruned
    slow._prune(time.monotonic())
    assert slow.wait("a") > 0


def test_a_full_disk_is_recognised_from_each_driver() -> None:
    """What `storage_full` (503) recognises; the real full disk is tests/e2e/test_full_disk.py."""
    import errno
    import sqlite3

    import psycopg
    from sqlalchemy.exc import OperationalError

    from facewarden.api.errors import storage_full

    def raised_from(cause: BaseException) -> BaseException:
        try:
            raise RuntimeError("wrapped") from cause
        except RuntimeError as exc:
            return exc

    assert storage_full(OperationalError("INSERT", (), sqlite3.OperationalError("database or disk is full")))
    assert storage_full(OperationalError("INSERT", (), psycopg.errors.DiskFull("could not extend file")))
    assert storage_full(raised_from(OSError(errno.ENOSPC, "No space left on device")))
    assert not storage_full(OperationalError("SELECT", (), sqlite3.OperationalError("no such table: x")))
    assert not storage_full(raised_from(OSError(errno.EACCES, "Permission denied")))


def test_the_connection_guard_cuts_stalled_heads_and_refuses_beyond_its_limit(tmp_path: Path) -> None:
    """`serve`'s protocol on a real uvicorn socket (a trivial app, so no models): connections beyond the limit are
    cut at once, the others when their head is late. The full server under load is tests/e2e/test_soak.py."""
    import asyncio
    import socket
    import ssl
    import threading

    import uvicorn

    from facewarden.api.connections import configured
    from facewarden.api.tls import ensure_self_signed, uvicorn_context_factory

    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    cert, key = ensure_self_signed(tmp_path / "tls")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(ok, host="127.0.0.1", port=port, ssl_certfile=str(cert), ssl_keyfile=str(key),
                            ssl_context_factory=uvicorn_context_factory, http=configured(3.0, 10),
                            lifespan="off", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    ctx = ssl.create_default_context(cafile=str(cert))
    socks = []
    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        for _ in range(15):
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="127.0.0.1")
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Never-Ends: ")
            socks.append(s)

        def closed(s: ssl.SSLSocket, wait: float) -> bool:
            s.settimeout(wait)
            try:
                return s.recv(100) == b""
            except TimeoutError:
                return False
            except OSError:
                return True

        assert all(closed(s, 1.0) for s in socks[10:])  # beyond the limit: cut at once
        assert [closed(s, 0.01) for s in socks[:10]] == [False] * 10  # within it, and still on time
        assert all(closed(s, 4.0) for s in socks[:10])  # then their head is late: cut
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                             server_hostname="127.0.0.1") as s:  # and the server still answers
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 200")
    finally:
        for s in socks:
            s.close()
        server.should_exit = True
        thread.join(timeout=10)


def test_a_stalled_upload_is_answered_408_and_uploads_beyond_the_cap_503(tmp_path: Path) -> None:
    """The app itself, driven as uvicorn drives it, by clients that send the start of a multipart body and then
    nothing: the body guard answers 408 and frees the slot; beyond the per-address cap the answer is 503 at once."""
    import asyncio

    service = build_service(make_settings(tmp_path / "home", body_idle_timeout_s=0.5, max_concurrent_uploads=2),
                            create=True)
    app = create_app(service)

    async def stalled_upload(client: str) -> tuple[int, dict[bytes, bytes], bytes]:
        sent: list[dict] = []
        first = True

        async def receive() -> dict:
            nonlocal first
            if first:
                first = False
                return {"type": "http.request", "body": b"--b\r\nContent-Disposition: form-data; name=", "more_body": True}
            await asyncio.Event().wait()  # and then nothing, ever
            return {}

        async def send(msg: dict) -> None:
            sent.append(msg)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "https", "path": "/v1/identify", "raw_path": b"/v1/identify", "query_string": b"",
                 "root_path": "", "client": (client, 1234), "server": ("127.0.0.1", 8443), "state": {},
                 "headers": [(b"content-type", b"multipart/form-data; boundary=b"), (b"content-length", b"5000")]}
        await asyncio.wait_for(app(scope, receive, send), 10)
        start = next(m for m in sent if m["type"] == "http.response.start")
        return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in sent[1:])

    async def scenario() -> list[tuple[int, dict[bytes, bytes], bytes]]:
        return list(await asyncio.gather(stalled_upload("10.0.0.1"), stalled_upload("10.0.0.1"),
                                         stalled_upload("10.0.0.2")))

    try:
        (s1, h1, b1), (s2, h2, b2), (s3, _, b3) = asyncio.run(scenario())
    finally:
        service.close()
    assert sorted([s1, s2]) == [408, 503]  # one slot per address (half the cap): the second waits for nothing
    timed_out, busy = (h1, b1) if s1 == 408 else (h2, b2), (h2, b2) if s1 == 408 else (h1, b1)
    assert b'"request_timeout"' in timed_out[1] and timed_out[0][b"connection"] == b"close"
    assert b'"server_busy"' in busy[1] and busy[0][b"retry-after"] == b"2"
    assert s3 == 408 and b'"request_timeout"' in b3  # another address had its own slot
