"""Use cases: the one place where policy is enforced, for every adapter (HTTP API, CLI)."""

from facewarden.service.core import (
    Actor,
    EnrolRequest,
    FaceService,
    IdentifiedFace,
    VerifyResult,
    build_service,
)

__all__ = ["Actor", "EnrolRequest", "FaceService", "IdentifiedFace", "VerifyResult", "build_service"]
