"""What the API answers, as typed, frozen dataclasses mirroring `facewarden.api.schemas` (without importing it:
the client must work where only it is installed). Unknown keys are ignored, so a newer server still parses."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


def build(cls: type[T], doc: dict[str, Any], **nested: Any) -> T:
    """`cls` from a JSON object: known fields only, optional ones may be absent, `nested` overrides."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{**{k: v for k, v in doc.items() if k in names}, **nested})


@dataclass(frozen=True)
class Health:
    status: str
    version: str


@dataclass(frozen=True)
class Enrolled:
    subject: str
    subject_id: str
    templates: int
    model: str
    purpose: str
    legal_basis: str
    expires_at: str | None
    retain_until: str
    subject_credential: str  # hand it to the person once; it lets them see, withdraw or erase their record
    photo_quality: list[float] = dataclasses.field(default_factory=list)  # per photo, in [0, 1]
    face_boxes: list[list[int]] = dataclasses.field(default_factory=list)  # the face used in each photo
    faces_in_photo: list[int] = dataclasses.field(default_factory=list)  # above 1: the main face was taken


@dataclass(frozen=True)
class PhotosAdded:
    subject: str
    subject_id: str
    templates_added: int
    templates: int
    model: str
    purpose: str
    face_boxes: list[list[int]] = dataclasses.field(default_factory=list)
    faces_in_photo: list[int] = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class Verification:
    subject: str
    match: bool
    attempts_left: int
    locked: bool
    distance: float | None = None  # operators only: devices get the decision without a score
    threshold: float | None = None
    threshold_source: str | None = None  # operators only: calibration, calibration_extrapolated or configured
    quality: float | None = None  # operators only: the probe's quality in [0, 1]
    face_box: list[int] | None = None  # the face used (left, top, right, bottom) when the photo held several


@dataclass(frozen=True)
class Candidate:
    subject: str
    distance: float


@dataclass(frozen=True)
class IdentifiedFace:
    box: tuple[int, int, int, int]  # left, top, right, bottom
    candidates: list[Candidate]

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> IdentifiedFace:
        return cls(tuple(doc["box"]), [build(Candidate, c) for c in doc["candidates"]])  # type: ignore[arg-type]


@dataclass(frozen=True)
class Identification:
    threshold: float
    faces: list[IdentifiedFace]

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Identification:
        return cls(doc["threshold"], [IdentifiedFace.from_json(f) for f in doc["faces"]])


@dataclass(frozen=True)
class SubjectSummary:
    subject: str
    purpose: str
    legal_basis: str
    templates: int
    locked: bool


@dataclass(frozen=True)
class ExportedTemplate:
    template_id: str
    model: str
    created_at: str | None
    quality: float
    embedding: list[float]


@dataclass(frozen=True)
class SubjectExport:
    """GDPR Art. 15/20: everything held on one subject, templates included."""

    subject: str
    subject_id: str
    tenant: str
    display_name: str | None
    purpose: str
    legal_basis: str
    consent: dict[str, Any]
    expires_at: str | None
    retain_until: str | None
    created_at: str | None
    last_verified_at: str | None
    failed_attempts: int
    locked: bool
    has_passcode: bool
    raw_images_kept: bool
    templates: list[ExportedTemplate]

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> SubjectExport:
        return build(cls, doc, templates=[build(ExportedTemplate, t) for t in doc["templates"]])


@dataclass(frozen=True)
class Erasure:
    subject: str
    erased: bool
    templates_destroyed: int
    data_key_destroyed: bool
    consent_withdrawn: bool = False


@dataclass(frozen=True)
class LivenessChallenge:
    session_id: str
    nonce: str
    actions: list[str]
    instructions: list[str]
    expires_at: str
    capture: str


@dataclass(frozen=True)
class LivenessDecision:
    session_id: str
    passed: bool


@dataclass(frozen=True)
class TreeHead:
    log_id: str
    tree_size: int
    timestamp_ms: int
    root_hash: str  # base64
    signature: str  # base64


@dataclass(frozen=True)
class InclusionProof:
    seq: int
    leaf_hash: str  # base64
    tree_head: TreeHead
    audit_path: list[str]  # base64 hashes

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> InclusionProof:
        return build(cls, doc, tree_head=build(TreeHead, doc["tree_head"]))
