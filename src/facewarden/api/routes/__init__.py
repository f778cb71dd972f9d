"""The HTTP routes, one module per area. Each parses the request, names the caller, calls one use case and
renders its answer; policy lives in the service."""

from __future__ import annotations

from fastapi import APIRouter

from facewarden.api.routes import (
    accounts,
    audit,
    compare,
    governance,
    health,
    keys,
    liveness,
    matching,
    police,
    reports,
    subjects,
)

ROUTERS: tuple[APIRouter, ...] = (health.router, subjects.router, matching.router, keys.router, accounts.router,
                                  governance.router, reports.router, police.router, liveness.router, audit.router,
                                  audit.public_router, compare.router, liveness.capture_router)

__all__ = ["ROUTERS"]
