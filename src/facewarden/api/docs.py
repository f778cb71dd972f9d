"""The interactive API docs (/docs, Swagger UI) served with their own assets.

FastAPI's default page loads Swagger UI from a CDN, so on a server without internet (where a face service often
lives) /docs is a blank page, and every visit tells the CDN who reads the docs. The same files ship in the
`fastapi-offline` package (Swagger UI 5, Apache-2.0; the package MIT); they are served from here. ReDoc is not
offered: its bundle fetches its logo from its vendor's CDN.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs/assets"
# Only this page and its assets; the page itself holds one inline script (Swagger UI's start-up).
DOCS_HEADERS = {"Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                                           "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                                           "worker-src 'self' blob:; frame-ancestors 'none'"}


def assets_dir() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def install_docs(app: FastAPI) -> None:
    """Wire /docs and /docs/oauth2-redirect to the local assets. Create the app with docs_url=None and
    redoc_url=None, so FastAPI's CDN pages are not registered."""
    openapi_url = app.openapi_url or "/openapi.json"
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")
    favicon = f"{ASSETS_URL}/favicon.png"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(openapi_url=openapi_url, title=f"{app.title} API",
                                   swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS_URL}/swagger-ui.css", swagger_favicon_url=favicon,
                                   oauth2_redirect_url="/docs/oauth2-redirect",
                                   swagger_ui_parameters={"validatorUrl": None})  # no call to the online validator
        page.headers.update(DOCS_HEADERS)
        return page

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
