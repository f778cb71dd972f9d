"""Liveness challenge sessions."""

from __future__ import annotations

from pydantic import BaseModel, Field

from facewarden.api.schemas.common import ResponseModel


class SessionBody(BaseModel):
    subject: str = Field(min_length=1, max_length=200)
    purpose: str = Field(min_length=1, max_length=64)


class LivenessChallenge(ResponseModel):
    session_id: str
    nonce: str
    actions: list[str]
    instructions: list[str]
    expires_at: str
    capture: str


class LivenessDecision(ResponseModel):
    """Pass or fail only."""

    session_id: str
    passed: bool
