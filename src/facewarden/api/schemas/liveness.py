"""Liveness challenge sessions."""

from __future__ import annotations

from pydantic import BaseModel, Field

from facewarden.api.schemas.common import ResponseModel


class SessionBody(BaseModel):
    subject: str | None = Field(default=None, min_length=1, max_length=200,
                                description="The enrolled subject to verify; leave it out for a comparison of two "
                                            "photos (POST /v1/compare): the reference photo then comes with the clip")
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
