"""Audit endpoints: entries, exports, signed tree heads, inclusion and consistency proofs."""


from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from facewarden.audit import AuditQuery
from facewarden.audit.entries import utc_timestamp
from facewarden.service import Actor, FaceService


def _query(actor: str | None, subject_id: str | None, case: str | None, operation: str | None,
           since: datetime | None, until: datetime | None, after_seq: int, limit: int) -> AuditQuery:
    return AuditQuery(actor=actor, subject_id=subject_id, case_id=case, operation=operation,
                      since=utc_timestamp(since) if since else None, until=utc_timestamp(until) if until else None,
                      after_seq=after_seq, limit=limit)


def audit_router(service: FaceService, caller: Any, errors: dict[int | str, dict[str, Any]]) -> APIRouter:
    router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=errors)
    Caller = Annotated[Actor, caller]
    signer = service.audit.signer

    @router.get("/entries")
    def entries(who: Caller, actor: str | None = None, subject: str | None = None, subject_id: str | None = None,
                case: str | None = None, operation: str | None = None, since: datetime | None = None,
                until: datetime | None = None, after_seq: Annotated[int, Query(ge=-1, le=2**62)] = -1,
                limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> dict[str, Any]:
        """Entries by person (`actor`), subject, case, operation and time (`since` inclusive, `until` exclusive).
        Page with `after_seq` set to the last `seq` you received."""
        q = _query(actor, subject_id, case, operation, since, until, after_seq, limit)
        return {"entries": service.audit_query(who, q, subject=subject)}

    @router.get("/export")
    def export(who: Caller, since: datetime | None = None, until: datetime | None = None, actor: str | None = None,
               subject: str | None = None, subject_id: str | None = None, case: str | None = None,
               operation: str | None = None,
               limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000) -> dict[str, Any]:
        """A period's entries with a signed tree head and an inclusion proof for each: check it offline with
        `facewarden audit verify-export FILE --public-key log.pem`."""
        q = _query(actor, subject_id, case, operation, since, until, -1, limit)
        return service.audit_export(who, q, subject=subject)

    @router.get("/public-key", response_class=PlainTextResponse)
    def public_key() -> str:
        """The log's Ed25519 public key (PEM); its SHA-256 is the log id."""
        return signer.pem()

    @router.get("/tree-heads/latest")
    def latest_head(who: Caller) -> dict[str, Any]:
        return service.audit_latest_head(who)

    @router.post("/tree-heads")
    def sign_head(who: Caller) -> dict[str, Any]:
        """Sign a head for the current size now and hand it to the witnesses."""
        return service.audit_sign_head(who)

    @router.get("/tree-heads")
    def list_heads(who: Caller) -> dict[str, Any]:
        return {"heads": service.audit_heads(who)}

    @router.get("/proofs/inclusion")
    def inclusion(who: Caller, seq: Annotated[int, Query(ge=0, le=2**62)],
                  tree_size: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> dict[str, Any]:
        """RFC 9162 inclusion proof of entry `seq` in the signed tree of `tree_size` (default: the latest)."""
        return service.audit_inclusion_proof(who, seq, tree_size)

    @router.get("/proofs/consistency")
    def consistency(who: Caller, first: Annotated[int, Query(ge=0, le=2**62)],
                    second: Annotated[int | None, Query(ge=0, le=2**62)] = None) -> dict[str, Any]:
        """RFC 9162 consistency proof between two signed tree heads (default second: the latest)."""
        return service.audit_consistency_proof(who, first, second)

    return router
