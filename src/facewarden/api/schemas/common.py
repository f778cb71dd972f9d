"""What every area shares: the error body, the response base, a proposal waiting for a second administrator."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


class ResponseModel(BaseModel):
    """A use case's answer as clients see it. Every known field is declared; one the service adds later still
    passes through (extra="allow") rather than being dropped by the response filter."""

    model_config = ConfigDict(extra="allow")


class PendingAction(ResponseModel):
    """202: dual control; a second administrator approves it at /v1/approvals/{pending_action}/approve."""

    pending_action: str
    kind: str
    status: str  # "pending"
    message: str


class Health(ResponseModel):
    status: str
    version: str
