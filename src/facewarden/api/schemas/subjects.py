"""Enrolment and the data subject's rights: list, export, erase, withdraw consent, passcode."""

from __future__ import annotations

from pydantic import BaseModel, Field

from facewarden.api.schemas.common import ResponseModel


class Enrolled(ResponseModel):
    subject: str
    subject_id: str
    templates: int
    model: str
    purpose: str
    legal_basis: str
    expires_at: str | None  # the consent term, if one was given (ISO 8601)
    retain_until: str
    photo_quality: list[float] = Field(default_factory=list, description="Quality in [0, 1] of each photo, in "
                                       "the order sent: the predicted chance that a genuine comparison matches")
    subject_credential: str = Field(description="Handed to the person once: with it they export, withdraw "
                                                "consent or erase their own record at /v1/me")
    face_boxes: list[list[int]] = Field(default_factory=list, description="The face used in each photo, in the "
                                        "order sent: left, top, right, bottom in the photo's pixels")
    faces_in_photo: list[int] = Field(default_factory=list, description="Faces seen in each photo; above 1, the "
                                      "main face was taken (clearly the largest, or the one at the centre)")


class PhotosAdded(ResponseModel):
    subject: str
    subject_id: str
    templates_added: int
    templates: int = Field(description="Templates the subject holds now")
    model: str
    purpose: str
    face_boxes: list[list[int]] = Field(default_factory=list, description="The face used in each photo")
    faces_in_photo: list[int] = Field(default_factory=list, description="Faces seen in each photo")


class SubjectSummary(ResponseModel):
    subject: str
    purpose: str
    legal_basis: str
    templates: int
    locked: bool


class ConsentRecord(ResponseModel):
    given_at: str | None
    method: str | None
    text: str | None


class ExportedTemplate(ResponseModel):
    template_id: str
    model: str
    created_at: str | None
    quality: float
    embedding: list[float]


class SubjectExport(ResponseModel):
    """GDPR Art. 15/20: everything held on one subject, templates included."""

    subject: str
    subject_id: str
    tenant: str
    display_name: str | None
    purpose: str
    legal_basis: str
    consent: ConsentRecord
    expires_at: str | None
    retain_until: str | None
    created_at: str | None
    last_verified_at: str | None
    failed_attempts: int
    locked: bool
    has_passcode: bool
    raw_images_kept: bool
    templates: list[ExportedTemplate]


class Erasure(ResponseModel):
    subject: str
    erased: bool
    templates_destroyed: int
    data_key_destroyed: bool


class ConsentWithdrawal(Erasure):
    consent_withdrawn: bool


class EraseBatchBody(BaseModel):
    subjects: list[str] = Field(min_length=1, max_length=10_000)


class BatchErasure(ResponseModel):
    erased: int
    not_found: list[str]


class PasscodeBody(BaseModel):
    passcode: str = Field(min_length=1, max_length=128)


class PasscodeSet(ResponseModel):
    subject: str
    passcode_set: bool
