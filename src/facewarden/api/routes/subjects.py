"""Subjects: enrolment, listing, passcodes, and the data subject's rights (export, erasure, consent withdrawal),
by an operator or by the person with their own credential (/v1/me). A subject credential reaches /v1/me only
(`SelfCaller`); on the operator routes (`Caller`) it is refused with 403 `self_service_only`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from facewarden.api.deps import Caller, SelfCaller, Service, read_photo
from facewarden.api.errors import ERROR_RESPONSES
from facewarden.api.responses import WAITING, accepted_if_pending
from facewarden.api.schemas import (
    BatchErasure,
    ConsentWithdrawal,
    Enrolled,
    EraseBatchBody,
    Erasure,
    PasscodeBody,
    PasscodeSet,
    SubjectExport,
    SubjectSummary,
)
from facewarden.api.schemas.subjects import PhotosAdded
from facewarden.service import EnrolRequest

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


@router.post("/subjects", status_code=201, tags=["subjects"], response_model=Enrolled)
async def enrol(
    who: Caller,
    service: Service,
    subject: Annotated[str, Form(description="The operator's reference for the person", max_length=200)],
    purpose: Annotated[str, Form(description="device-unlock, payment, login, ...", max_length=64)],
    legal_basis: Annotated[str, Form(description="consent, contract, law, vital-interest, public-task",
                                     max_length=32)],
    images: Annotated[list[UploadFile], File(description="1-10 photos of the person, one face each")],
    display_name: Annotated[str | None, Form(max_length=200)] = None,
    consent_given_at: Annotated[datetime | None, Form()] = None,
    consent_method: Annotated[str | None, Form(max_length=200)] = None,
    consent_text: Annotated[str | None, Form(max_length=20000)] = None,
    expires_at: Annotated[datetime | None, Form()] = None,
    passcode: Annotated[str | None, Form(max_length=128)] = None,
) -> dict[str, Any]:
    photos = [await read_photo(service, u) for u in images]
    req = EnrolRequest(subject, photos, purpose, legal_basis, display_name, consent_given_at,
                       consent_method, consent_text, expires_at, passcode)
    return await run_in_threadpool(service.matching.enrol, who, req)


@router.post("/subjects/{subject}/photos", status_code=201, tags=["subjects"], response_model=PhotosAdded)
async def add_photos(
    who: Caller, service: Service, subject: str,
    images: Annotated[list[UploadFile], File(description="1-10 more photos of the enrolled person, one face each")],
) -> dict[str, Any]:
    """Add templates to an enrolled subject; photos that do not match its enrolled face are refused (409)."""
    photos = [await read_photo(service, u) for u in images]
    return await run_in_threadpool(service.matching.add_photos, who, subject, photos)


@router.get("/subjects", tags=["subjects"], response_model=list[SubjectSummary])
def list_subjects(who: Caller, service: Service, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                  offset: Annotated[int, Query(ge=0, le=2**31)] = 0) -> list[dict[str, Any]]:
    """Identifiers and metadata only; never face data."""
    return service.rights.list_subjects(who, limit=limit, offset=offset)


@router.put("/subjects/{subject}/passcode", tags=["subjects"], response_model=PasscodeSet)
def set_passcode(who: Caller, service: Service, subject: str, body: PasscodeBody) -> dict[str, Any]:
    service.matching.set_passcode(who, subject, body.passcode)
    return {"subject": subject, "passcode_set": True}


@router.delete("/subjects/{subject}", tags=["rights"], response_model=Erasure)
def erase(who: Caller, service: Service, subject: str) -> dict[str, Any]:
    return service.rights.erase(who, subject)


@router.get("/subjects/{subject}/export", tags=["rights"], response_model=SubjectExport)
def export(who: Caller, service: Service, subject: str) -> dict[str, Any]:
    return service.rights.export(who, subject)


@router.post("/subjects/{subject}/withdraw-consent", tags=["rights"], response_model=ConsentWithdrawal)
def withdraw_consent(who: Caller, service: Service, subject: str) -> dict[str, Any]:
    """Matching stops at once and the templates the consent covered are destroyed."""
    return service.rights.withdraw_consent(who, subject)


@router.post("/subjects/erase-batch", tags=["rights"], response_model=BatchErasure, responses=WAITING)
def erase_batch(who: Caller, service: Service, body: EraseBatchBody) -> dict[str, Any] | JSONResponse:
    """Erase several subjects; above the configured threshold a second administrator must approve."""
    return accepted_if_pending(service.governance.erase_many(who, body.subjects))


@router.get("/me", tags=["rights"], response_model=SubjectExport)
def my_record(who: SelfCaller, service: Service) -> dict[str, Any]:
    """For the enrolled person, with their subject credential: everything held on them."""
    return service.rights.export(who, None)


@router.post("/me/withdraw-consent", tags=["rights"], response_model=ConsentWithdrawal)
def my_withdrawal(who: SelfCaller, service: Service) -> dict[str, Any]:
    return service.rights.withdraw_consent(who, None)


@router.delete("/me", tags=["rights"], response_model=Erasure)
def my_erasure(who: SelfCaller, service: Service) -> dict[str, Any]:
    return service.rights.erase(who, None)
