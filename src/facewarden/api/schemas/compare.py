"""Comparing two photos (nothing stored)."""

from __future__ import annotations

from pydantic import Field

from facewarden.api.schemas.common import ResponseModel


class ComparedPhoto(ResponseModel):
    box: list[int] = Field(description="The face used: left, top, right, bottom in pixels of that photo (the "
                                       "largest, where it clearly dominates)")
    sharpness: float | None = Field(default=None, description="Operators only")
    detector_score: float | None = Field(default=None, description="Operators only")
    quality: float | None = Field(default=None, description="Operators only")


class Comparison(ResponseModel):
    match: bool
    purpose: str
    legal_basis: str
    a: ComparedPhoto
    b: ComparedPhoto
    stored: bool = Field(description="Always false: no subject, template or photo is kept")
    distance: float | None = Field(default=None, description="Operators only")
    threshold: float | None = Field(default=None, description="Operators only")
