"""Verification (1:1), unlocking, identification (1:N)."""

from __future__ import annotations

from pydantic import Field

from facewarden.api.schemas.common import ResponseModel


class Verification(ResponseModel):
    subject: str
    match: bool
    attempts_left: int
    locked: bool
    # Operators only: the service withholds scores from devices and apps, and then these keys are absent.
    distance: float | None = Field(default=None, description="Operators only")
    threshold: float | None = Field(default=None, description="Operators only")


class Unlocked(ResponseModel):
    subject: str
    locked: bool


class IdentifiedCandidate(ResponseModel):
    subject: str
    distance: float


class IdentifiedFace(ResponseModel):
    box: list[int] = Field(description="left, top, right, bottom in pixels of the photo")
    candidates: list[IdentifiedCandidate] = Field(description="Nearest first, within the threshold")


class Identification(ResponseModel):
    threshold: float
    faces: list[IdentifiedFace]
