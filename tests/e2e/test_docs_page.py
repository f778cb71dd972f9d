"""/docs as a newcomer opens it on a server without internet: the real app over HTTPS, rendered by a real
browser (Debian's Chromium, driven by Playwright) that is refused every request leaving the server."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Route, sync_playwright

from facewarden.service import FaceService
from tests.e2e.test_report_browser import CHROMIUM, server  # noqa: F401 (the HTTPS server fixture)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_docs_render_every_operation_with_no_external_request(service: FaceService, server: str,  # noqa: F811
                                                                tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: run `make system-deps`.")
    origin = urlsplit(server).netloc
    external: list[str] = []
    local: list[str] = []

    def offline(route: Route) -> None:  # what a machine without internet does to a CDN request
        url = route.request.url
        if urlsplit(url).netloc == origin or url.startswith(("data:", "blob:")):
            local.append(url)
            route.continue_()
        else:
            external.append(url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(ignore_https_errors=True)
        context.route("**/*", offline)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        response = page.goto(f"{server}/docs")
        assert response is not None and response.status == 200
        # Swagger UI drew the API: its title and one block per operation, the verify operation among them.
        page.wait_for_selector(".opblock", timeout=30_000)
        assert "FaceWarden" in page.inner_text(".info .title")
        operations = page.locator(".opblock").count()
        assert operations >= 40, operations
        assert page.locator(".opblock-summary-path[data-path='/v1/subjects/{subject}/verify']").count() == 1
        page.screenshot(path=str(tmp_path / "docs.png"), full_page=False)
        assert errors == []  # no asset failed to load, no script error

        # ReDoc (whose bundle calls its vendor's CDN) is not offered.
        response = page.goto(f"{server}/redoc")
        assert response is not None and response.status == 404
        browser.close()

    assert external == []
    assert any(u.endswith("/docs/assets/swagger-ui-bundle.js") for u in local)
    assert any(u.endswith("/openapi.json") for u in local)
    assert (tmp_path / "docs.png").stat().st_size > 10_000
