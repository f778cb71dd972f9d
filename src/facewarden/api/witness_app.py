"""HTTP adapter for a witness run by another party (`facewarden witness serve`)."""


from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from facewarden import __version__
from facewarden.api.errors import error_body, status_for
from facewarden.api.limits import BodySizeLimit, RateLimiter
from facewarden.audit.witness import WitnessLedger
from facewarden.errors import FaceWardenError, RateLimited


class HeadSubmission(BaseModel):
    head: dict[str, Any]
    proof: list[str] = Field(default_factory=list, max_length=128)  # a consistency proof is O(log n) hashes


def create_witness_app(ledger: WitnessLedger, *, rate_limit_per_minute: int = 600) -> FastAPI:
    app = FastAPI(title="FaceWarden witness", version=__version__,
                  description="Keeps signed tree heads of FaceWarden audit logs and refuses rewritten history.")
    app.add_middleware(BodySizeLimit, max_bytes=64 * 1024)
    limiter = RateLimiter(rate_limit_per_minute)

    @app.exception_handler(FaceWardenError)
    async def _fw_error(_: Request, exc: FaceWardenError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message), status_code=status_for(exc))

    def _limit(request: Request) -> None:
        client = request.client.host if request.client else "unknown"
        if (wait := limiter.check(client)) > 0:
            raise RateLimited(f"Rate limit exceeded; retry in {wait:.1f} s.", code="rate_limited")

    @app.get("/v1/logs/{log_id}/heads")
    def heads(log_id: str, request: Request) -> dict[str, Any]:
        _limit(request)
        return {"heads": ledger.heads(log_id), "witness_id": ledger.signer.log_id}

    @app.post("/v1/logs/{log_id}/heads")
    def submit(log_id: str, body: HeadSubmission, request: Request) -> dict[str, Any]:
        _limit(request)
        return ledger.accept(log_id, body.head, body.proof)

    @app.get("/v1/public-key")
    def public_key() -> dict[str, str]:
        return {"witness_id": ledger.signer.log_id, "public_key": ledger.signer.pem()}

    return app
