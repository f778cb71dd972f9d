"""The key-encryption keys: their status, and rotation under dual control."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from facewarden.api.deps import Caller, Service
from facewarden.api.errors import ERROR_RESPONSES
from facewarden.api.responses import pending
from facewarden.api.schemas import KeyStatus, PendingAction, RotateBody

router = APIRouter(prefix="/v1/keys", tags=["keys"], responses=ERROR_RESPONSES)


@router.get("", response_model=KeyStatus)
def key_status(who: Caller, service: Service) -> dict[str, Any]:
    return service.keys.status(who)


@router.post("/rotate", status_code=202, response_model=PendingAction)
def rotate(who: Caller, service: Service, body: RotateBody) -> dict[str, Any]:
    """Proposes a rotation; a second administrator approves it at /v1/approvals/{id}/approve."""
    return pending(service.keys.rotate(who, retire_old=body.retire_old))
