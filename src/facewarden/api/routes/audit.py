"""The audit log: entries, exports, signed tree heads, inclusion and consistency proofs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from facewarden.api.deps import Caller, Service
from facewarden.api.errors import ERROR_RESPONSES
from facewarden.api.schemas import (
    AuditEntries,
    AuditExport,
    ConsistencyProof,
    InclusionProof,
    SignedHead,
    TreeHead,
    TreeHeads,
)
from facewarden.audit import AuditQuery
from facewarden.audit.entries import utc_timestamp
from facewarden.errors import InvalidInput

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=ERROR_RESPONSES)
public_router = APIRouter(prefix="/v1/audit", tags=["audit"])  # no caller, nothing refused: no error answers


def _utc(when: datetime | None) -> str | None:
    try:
        return utc_timestamp(when) if when else None
    except OverflowError:  # 9999-12-31T23:59-14:00 is past the calendar's edge once moved to UTC
        raise InvalidInput("`since` and `until` must lie within the years 1-9999 in UTC.",
                           code="invalid_period") from None


def _query(actor: str | None, subject_id: str | None, case: str | None, operation: str | None,
           since: datetime | None, until: datetime | None, after_seq: int, limit: int) -> AuditQuery:
    return AuditQuery(actor=actor, subject_id=subject_id, case_id=case, operation=operation,
                      since=_utc(since), until=_utc(until), after_seq=after_seq, limit=limit)


@router.get("/entries", response_model=AuditEntries)
def entries(who: Caller, service: Service, actor: str | None = None, subject: str | None = None,
            subject_id: str | None = None, case: str | None = None, operation: str | None = None,
            since: datetime | None = None, until: datetime | None = None,
            after_seq: Annotated[int, Query(ge=-1, le=2**62)] = -1,
            limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> dict[str, Any]:
    """Entries by person (`actor`), subject, case, operation and time (`since` inclusive, `until` exclusive).
    Page with `after_seq` set to the last `seq` you received."""
    q = _query(actor, subject_id, case, operation, since, until, after_seq, limit)
    return {"entries": service.auditing.query(who, q, subject=subject)}


@router.get("/export", response_model=AuditExport)
def export(who: Caller, service: Service, since: datetime | None = None, until: datetime | None = None,
           actor: str | None = None, subject: str | None = None, subject_id: str | None = None,
           case: str | None = None, operation: str | None = None,
           limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000) -> dict[str, Any]:
    """A period's entries with a signed tree head and an inclusion proof for each: check it offline with
    `facewarden audit verify-export FILE --public-key log.pem`."""
    q = _query(actor, subject_id, case, operation, since, until, -1, limit)
    return service.auditing.export(who, q, subject=subject)


@public_router.get("/public-key", response_class=PlainTextResponse)
def public_key(service: Service) -> str:
    """The log's Ed25519 public key (PEM); its SHA-256 is the log id. Public: anyone may check the log."""
    return service.auditing.public_key_pem()


@router.get("/tree-heads/latest", response_model=TreeHead)
def latest_head(who: Caller, service: Service) -> dict[str, Any]:
    return service.auditing.latest_head(who)


@router.post("/tree-heads", response_model=SignedHead)
def sign_head(who: Caller, service: Service) -> dict[str, Any]:
    """Sign a head for the current size now and hand it to the witnesses."""
    return service.auditing.sign_head(who)


@router.get("/tree-heads", response_model=TreeHeads)
def list_heads(who: Caller, service: Service) -> dict[str, Any]:
    return {"heads": service.auditing.heads(who)}


@router.get("/proofs/inclusion", response_model=InclusionProof)
def inclusion(who: Caller, service: Service, seq: Annotated[int, Query(ge=0, le=2**62)],
              tree_size: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> dict[str, Any]:
    """RFC 9162 inclusion proof of entry `seq` in the signed tree of `tree_size` (default: the latest)."""
    return service.auditing.inclusion_proof(who, seq, tree_size)


@router.get("/proofs/consistency", response_model=ConsistencyProof)
def consistency(who: Caller, service: Service, first: Annotated[int, Query(ge=0, le=2**62)],
                second: Annotated[int | None, Query(ge=0, le=2**62)] = None) -> dict[str, Any]:
    """RFC 9162 consistency proof between two signed tree heads (default second: the latest)."""
    return service.auditing.consistency_proof(who, first, second)
