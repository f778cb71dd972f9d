"""People and their API keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from facewarden.api.deps import Caller, Service
from facewarden.api.errors import ERROR_RESPONSES
from facewarden.api.responses import WAITING, accepted_if_pending
from facewarden.api.schemas import ApiKeyBody, ApiKeyCreated, ApiKeyRevoked, PersonBody, PersonCreated

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


@router.post("/persons", status_code=201, tags=["people"], response_model=PersonCreated, responses=WAITING)
def create_person(who: Caller, service: Service, body: PersonBody) -> dict[str, Any] | JSONResponse:
    """A named person in your tenant; issue their API keys with `person_id`. A person with a deciding role
    (admin, reviewer, investigator) needs a second administrator's approval."""
    return accepted_if_pending(service.accounts.add_person(who, name=body.name, person_roles=set(body.roles)))


@router.post("/api-keys", status_code=201, tags=["keys"], response_model=ApiKeyCreated)
def create_api_key(who: Caller, service: Service, body: ApiKeyBody) -> dict[str, Any]:
    key_id, secret = service.accounts.create_api_key(who, name=body.name, key_roles=set(body.roles),
                                                     person_id=body.person_id,
                                                     purposes=set(body.purposes) if body.purposes else None)
    return {"id": key_id, "api_key": secret, "roles": sorted(body.roles),
            "note": "Store this key now; it is not shown again."}


@router.delete("/api-keys/{key_id}", tags=["keys"], response_model=ApiKeyRevoked)
def revoke_api_key(who: Caller, service: Service, key_id: str) -> dict[str, Any]:
    service.accounts.revoke_api_key(who, key_id)
    return {"id": key_id, "revoked": True}
