"""FastAPI application. Every endpoint authenticates, is rate-limited and calls one service use case."""


import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette import formparsers
from starlette.concurrency import run_in_threadpool

from facewarden import __version__
from facewarden.api.audit_routes import audit_router
from facewarden.api.governance_routes import governance_router
from facewarden.api.le_routes import le_router
from facewarden.api.limits import BodySizeLimit, RateLimiter, read_limited
from facewarden.api.liveness_routes import MAX_FRAMES_UPLOADED, liveness_router
from facewarden.errors import FaceWardenError
from facewarden.service import Actor, EnrolRequest, FaceService

log = logging.getLogger("facewarden.api")


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


class PasscodeBody(BaseModel):
    passcode: str = Field(min_length=1, max_length=128)


class ApiKeyBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    roles: list[str]
    person_id: str | None = None  # required for admin, reviewer and investigator keys
    purposes: list[str] | None = Field(default=None, max_length=20)  # bind a device key to these purposes


class RotateBody(BaseModel):
    retire_old: bool = False


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 409, 410, 413, 415, 422, 423, 429)}


def create_app(service: FaceService, *, on_shutdown: Callable[[], None] | None = None) -> FastAPI:
    """`on_shutdown` runs when the server stops (serve: stop the background jobs, sign a last tree head)."""
    settings = service.settings

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if on_shutdown is not None:
            await run_in_threadpool(on_shutdown)

    # Uploads stay in memory (bounded by the body limit) instead of spilling raw photos into temp files.
    formparsers.MultiPartParser.spool_max_size = settings.max_request_bytes
    app = FastAPI(
        title="FaceWarden", version=__version__, lifespan=lifespan,
        description="Face enrolment, verification and identification with encrypted, erasable templates.",
        form_limits={"max_files": max(settings.max_images_per_enrolment, MAX_FRAMES_UPLOADED), "max_fields": 32,
                     "max_part_size": 64 * 1024},
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    limiter = RateLimiter(settings.rate_limit_per_minute)
    auth_failures = RateLimiter(30)
    app.state.service = service

    @app.exception_handler(FaceWardenError)
    async def _fw_error(_: Request, exc: FaceWardenError) -> JSONResponse:
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Never echo the submitted values back (they may be face data); name the fields only.
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"error": {"code": "invalid_request", "message": f"Invalid request: {problems}"}},
                            status_code=422)

    def actor(request: Request) -> Actor:
        header = request.headers.get("authorization", "")
        secret = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
        client = request.client.host if request.client else "unknown"
        try:
            who = service.authenticate(secret)
        except FaceWardenError as exc:
            if (wait := auth_failures.check(f"ip:{client}")) > 0:
                raise FaceWardenError(f"Too many failed authentications; retry in {wait:.0f} s.",
                                      code="rate_limited", status=429) from None
            service.record_login_failure(client, exc.code)  # bounded by the limit above
            raise
        if (wait := limiter.check(who.principal)) > 0:
            raise FaceWardenError(f"Rate limit of {settings.rate_limit_per_minute} requests/minute exceeded; "
                                  f"retry in {wait:.1f} s.", code="rate_limited", status=429)
        return who

    Caller = Annotated[Actor, Depends(actor)]

    async def read_upload(upload: UploadFile) -> bytes:
        return await read_limited(upload, settings.max_upload_bytes)

    @app.get("/v1/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @app.post("/v1/subjects", status_code=201, responses=ERRORS, tags=["subjects"])
    async def enrol(
        who: Caller,
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
        photos = [await read_upload(u) for u in images]
        req = EnrolRequest(subject, photos, purpose, legal_basis, display_name, consent_given_at,
                           consent_method, consent_text, expires_at, passcode)
        return await run_in_threadpool(service.enrol, who, req)

    @app.get("/v1/subjects", tags=["subjects"], responses=ERRORS)
    def list_subjects(who: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                      offset: Annotated[int, Query(ge=0, le=2**31)] = 0) -> list[dict[str, Any]]:
        return service.list_subjects(who, limit=limit, offset=offset)

    @app.post("/v1/subjects/{subject}/verify", tags=["matching"], responses=ERRORS)
    async def verify(who: Caller, subject: str, image: Annotated[UploadFile, File()],
                     purpose: Annotated[str, Form(description="Why you verify; must be the template's purpose",
                                                  max_length=64)],
                     liveness_session: Annotated[str | None, Form(description="A passed liveness session, "
                                                                  "where the purpose requires one")] = None,
                     ) -> dict[str, Any]:
        photo = await read_upload(image)
        result = await run_in_threadpool(lambda: service.verify(who, subject, photo, purpose=purpose,
                                                                liveness_session=liveness_session))
        body: dict[str, Any] = {"subject": subject, "match": result.match,
                                "attempts_left": result.attempts_left, "locked": result.locked}
        if result.distance is not None:  # the service withholds scores from devices and apps
            body.update(distance=round(result.distance, 4), threshold=result.threshold)
        return body

    @app.post("/v1/subjects/{subject}/unlock", tags=["matching"], responses=ERRORS)
    def unlock(who: Caller, subject: str, body: PasscodeBody) -> dict[str, Any]:
        service.unlock(who, subject, body.passcode)
        return {"subject": subject, "locked": False}

    @app.put("/v1/subjects/{subject}/passcode", tags=["subjects"], responses=ERRORS)
    def set_passcode(who: Caller, subject: str, body: PasscodeBody) -> dict[str, Any]:
        service.set_passcode(who, subject, body.passcode)
        return {"subject": subject, "passcode_set": True}

    @app.post("/v1/identify", tags=["matching"], responses=ERRORS)
    async def identify(who: Caller, image: Annotated[UploadFile, File()],
                       purpose: Annotated[str, Form(description="Only templates enrolled for it are searched",
                                                    max_length=64)],
                       max_candidates: Annotated[int, Form()] = 5,
                       all_faces: Annotated[bool, Form()] = False) -> dict[str, Any]:
        photo = await read_upload(image)
        faces = await run_in_threadpool(lambda: service.identify(
            who, photo, purpose=purpose, max_candidates=max_candidates, all_faces=all_faces))
        return {"threshold": service.settings.match_threshold, "faces": [
            {"box": list(f.box), "candidates": [
                {"subject": c.subject, "distance": round(c.distance, 4)} for c in f.candidates]}
            for f in faces]}

    @app.delete("/v1/subjects/{subject}", tags=["rights"], responses=ERRORS)
    def erase(who: Caller, subject: str) -> dict[str, Any]:
        return service.erase(who, subject)

    @app.get("/v1/subjects/{subject}/export", tags=["rights"], responses=ERRORS)
    def export(who: Caller, subject: str) -> dict[str, Any]:
        return service.export(who, subject)

    @app.get("/v1/keys", tags=["keys"], responses=ERRORS)
    def key_status(who: Caller) -> dict[str, Any]:
        return service.key_status(who)

    @app.post("/v1/keys/rotate", tags=["keys"], responses=ERRORS, status_code=202)
    def rotate(who: Caller, body: RotateBody) -> dict[str, Any]:
        """Proposes a rotation; a second administrator approves it at /v1/approvals/{id}/approve."""
        return service.rotate_keys(who, retire_old=body.retire_old)

    @app.post("/v1/api-keys", status_code=201, tags=["keys"], responses=ERRORS)
    def create_api_key(who: Caller, body: ApiKeyBody) -> dict[str, Any]:
        key_id, secret = service.create_api_key(who, name=body.name, key_roles=set(body.roles),
                                                person_id=body.person_id,
                                                purposes=set(body.purposes) if body.purposes else None)
        return {"id": key_id, "api_key": secret, "roles": sorted(body.roles),
                "note": "Store this key now; it is not shown again."}

    @app.delete("/v1/api-keys/{key_id}", tags=["keys"], responses=ERRORS)
    def revoke_api_key(who: Caller, key_id: str) -> dict[str, Any]:
        service.revoke_api_key(who, key_id)
        return {"id": key_id, "revoked": True}

    app.include_router(audit_router(service, Depends(actor), ERRORS))
    app.include_router(governance_router(service, Depends(actor), ERRORS))
    app.include_router(le_router(service, Depends(actor), ERRORS))
    app.include_router(liveness_router(service, Depends(actor), ERRORS))
    return app
