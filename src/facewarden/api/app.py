"""The FastAPI application: middleware, state, error handlers and the routers of every area."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette import formparsers
from starlette.concurrency import run_in_threadpool

from facewarden import __version__
from facewarden.api.access_log import AccessLog
from facewarden.api.capture_page import install_capture_page
from facewarden.api.deps import RateLimits
from facewarden.api.docs import install_docs
from facewarden.api.errors import CatchAll, install_error_handlers
from facewarden.api.limits import MAX_FRAMES_UPLOADED, BodySizeLimit, SlowBodyGuard
from facewarden.api.metrics import install_metrics
from facewarden.api.nul_guard import NulGuard
from facewarden.api.routes import ROUTERS
from facewarden.service import FaceService


def create_app(service: FaceService, *, on_shutdown: Callable[[], None] | None = None) -> FastAPI:
    """`on_shutdown` runs when the server stops (serve: stop the background jobs, sign a last tree head)."""
    settings = service.settings

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if on_shutdown is not None:
            await run_in_threadpool(on_shutdown)

    # Uploads stay in memory (bounded by the body limit) instead of spilling raw photos into temp files.
    formparsers.MultiPartParser.spool_max_size = settings.max_request_bytes
    app = FastAPI(
        title="FaceWarden", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,  # local assets
        description="Face enrolment, verification and identification with encrypted, erasable templates.",
        form_limits={"max_files": max(settings.max_images_per_enrolment, MAX_FRAMES_UPLOADED), "max_fields": 32,
                     "max_part_size": 64 * 1024},
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    # Added innermost first: the access log sees every answer, the catch-all turns any escaped exception into JSON.
    app.add_middleware(SlowBodyGuard, idle_s=settings.body_idle_timeout_s, total_s=settings.body_timeout_s,
                       max_uploads=settings.max_concurrent_uploads)
    app.add_middleware(CatchAll)
    app.add_middleware(NulGuard)  # outside the body guards: refuses before any body is read
    app.add_middleware(AccessLog)  # outermost of ours: it logs every answer, the NUL guard's too
    app.state.service = service
    app.state.rate_limits = RateLimits.from_settings(settings)
    install_metrics(app)  # outermost middleware: every answer is counted, refusals included
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    install_docs(app)  # /docs and /redoc without a CDN
    install_capture_page(app)  # /capture/: the liveness capture client
    return app
