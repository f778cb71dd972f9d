"""Verification (1:1), unlocking, identification (1:N)."""

from __future__ import annotations

from pydantic import Field

from facewarden.api.schemas.common import ResponseModel


class Verification(ResponseModel):
    subject: str
    match: bool
    attempts_left: int
    locked: bool
    face_box: list[int] | None = Field(default=None, description="The face used: left, top, right, "
                                       "bottom in pixels of the photo (the largest, where it clearly dominates)")
    # Operators only: the service withholds scores from devices and apps, and then these keys are absent.
    distance: float | None = Field(default=None, description="Operators only")
    threshold: float | None = Field(default=None, description="Operators only")
    quality: float | None = Field(default=None, description="Operators only: the photo's quality in [0, 1], the "
                                  "predicted chance that a genuine comparison matches")
    threshold_source: str | None = Field(default=None, description="Operators only: where the threshold comes "
                                         "from: calibration, calibration_extrapolated or configured")


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
    threshold_source: str = Field(description="calibration, calibration_extrapolated or configured")
    faces: list[IdentifiedFace]
