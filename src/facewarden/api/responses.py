"""Responses shared by several areas: a proposal that waits for a second administrator."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from facewarden.api.schemas import PendingAction

WAITING: dict[int | str, dict[str, Any]] = {
    202: {"model": PendingAction, "description": "Proposed: waiting for a second administrator's approval"}}


def pending(result: dict[str, Any]) -> dict[str, Any]:
    """A proposal, with where to approve it: the service knows no URLs, the HTTP client needs one."""
    return {**result, "message": "Dual control: a second administrator must approve this at "
                                 f"/v1/approvals/{result['pending_action']}/approve."}


def accepted_if_pending(result: dict[str, Any]) -> dict[str, Any] | JSONResponse:
    """A proposal waiting for a second administrator is 202 Accepted, not done."""
    return JSONResponse(pending(result), status_code=202) if result.get("status") == "pending" else result
