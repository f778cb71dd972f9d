"""A typed Python client for the FaceWarden API. It imports nothing of the server, so it can be used alone."""

from facewarden.client.client import ClientError, FaceWardenClient, Photo
from facewarden.client.models import (
    Candidate,
    Enrolled,
    Erasure,
    ExportedTemplate,
    Health,
    Identification,
    IdentifiedFace,
    InclusionProof,
    LivenessChallenge,
    LivenessDecision,
    PhotosAdded,
    SubjectExport,
    SubjectSummary,
    TreeHead,
    Verification,
)

__all__ = [
    "Candidate",
    "ClientError",
    "Enrolled",
    "Erasure",
    "ExportedTemplate",
    "FaceWardenClient",
    "Health",
    "Identification",
    "IdentifiedFace",
    "InclusionProof",
    "LivenessChallenge",
    "LivenessDecision",
    "Photo",
    "PhotosAdded",
    "SubjectExport",
    "SubjectSummary",
    "TreeHead",
    "Verification",
]
