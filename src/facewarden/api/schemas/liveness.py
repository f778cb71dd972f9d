"""Liveness challenge sessions."""

from __future__ import annotations

from typing import Any

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
    light: dict[str, Any] | None = Field(None, description="the light challenge's colours, when the purpose asks for "
                                         "it: show each full-screen for its `ms`, from `start_ms` after recording "
                                         "starts")
    capture_token: str = Field(description="lets the capture page (/capture/) read this challenge and send one clip; "
                               "hand it only to the device that films")
    capture_url: str = Field(description="the capture page for this session (open it on the filming device)")
    capture: str


class CaptureChallenge(ResponseModel):
    """What the capture page needs: the actions, their instructions, the colours."""

    session_id: str
    actions: list[str]
    instructions: list[str]
    baseline_ms: int = Field(description="how long to face the camera before the first prompt")
    prompt_ms: int = Field(description="how long each action's prompt is shown")
    light: dict[str, Any] | None
    expires_at: str
    max_seconds: float
    needs_reference: bool


class LivenessDecision(ResponseModel):
    """Pass or fail only."""

    session_id: str
    passed: bool
