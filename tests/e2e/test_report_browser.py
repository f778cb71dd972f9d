"""The transparency report and the Art. 30 record as people read them: served over HTTPS by the real app and
rendered by a real browser (Debian's Chromium, driven by Playwright)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import sync_playwright

from facewarden.api import create_app
from facewarden.api.tls import ensure_self_signed
from facewarden.service import LOCAL_ADMIN, FaceService
from tests.api.test_reports import SINCE, UNTIL, write_quarter

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def server(service: FaceService, tmp_path: Path) -> Iterator[str]:
    cert, key = ensure_self_signed(tmp_path / "tls")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning",
                            ssl_certfile=str(cert), ssl_keyfile=str(key))
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.1)
    yield f"https://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_reports_render_in_a_real_browser(service: FaceService, server: str, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: run `make system-deps`.")
    with service.db.session() as s:  # creates the tenants dmv, police-a, police-b, ...
        write_quarter(s)
    person = service.accounts.create_person(LOCAL_ADMIN, name="DMV privacy office", person_roles={"auditor"}, tenant_id="dmv")
    _, secret = service.accounts.create_api_key(LOCAL_ADMIN, name="aud", key_roles={"auditor"}, person_id=person,
                                       tenant_id="dmv")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(ignore_https_errors=True,
                                      extra_http_headers={"Authorization": f"Bearer {secret}"})
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        url = f"{server}/v1/reports/transparency?since={SINCE.isoformat()}&until={UNTIL.isoformat()}&format=html"
        response = page.goto(url.replace("+", "%2B"))
        assert response is not None and response.status == 200
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert "transparency report" in page.title()
        # The table lists both requesting agencies; the chart is drawn, one visible bar per non-zero count.
        body = page.inner_text("body")
        assert "police-a" in body and "police-b" in body
        bars = page.locator("svg rect")
        assert bars.count() == 10  # 2 agencies x 5 counts
        heights = [bars.nth(i).bounding_box()["height"] for i in range(bars.count())]  # type: ignore[index]
        assert sum(h > 0 for h in heights) >= 6 and max(heights) > 50
        assert page.locator("svg").first.bounding_box()["width"] > 300  # type: ignore[index]
        page.screenshot(path=str(tmp_path / "transparency.png"), full_page=True)
        # The Art. 30 record, also a page a person can read.
        response = page.goto(f"{server}/v1/reports/processing-record?format=html")
        assert response is not None and response.status == 200
        assert "Art. 30" in page.inner_text("body") or "Article 30" in page.inner_text("body")
        assert errors == []
        browser.close()
    assert (tmp_path / "transparency.png").stat().st_size > 10_000
