"""Liveness of the server itself (not of a face): for load balancers and `serve`'s start-up check."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from facewarden import __version__
from facewarden.api.schemas import Health

router = APIRouter(prefix="/v1")


@router.get("/health", response_model=Health)
def health() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}
