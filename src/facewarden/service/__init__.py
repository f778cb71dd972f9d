"""Use cases: the one place where policy is enforced, for every adapter (HTTP API, CLI)."""

from facewarden.governance.actors import LOCAL_ADMIN, Actor
from facewarden.service.matching import EnrolRequest, IdentifiedFace, VerifyResult
from facewarden.service.wiring import FaceService, build_service

__all__ = ["LOCAL_ADMIN", "Actor", "EnrolRequest", "FaceService", "IdentifiedFace", "VerifyResult", "build_service"]
