"""People, API keys and the key-encryption keys."""

from __future__ import annotations

from pydantic import BaseModel, Field

from facewarden.api.schemas.common import ResponseModel


class PersonBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    roles: list[str] = Field(min_length=1, max_length=6)


class PersonCreated(ResponseModel):
    person_id: str
    roles: list[str]
    status: str  # "applied"


class ApiKeyBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    roles: list[str]
    person_id: str | None = None  # required for admin, reviewer and investigator keys
    purposes: list[str] | None = Field(default=None, max_length=20)  # bind a device key to these purposes


class ApiKeyCreated(ResponseModel):
    id: str
    api_key: str = Field(description="Shown once; only its hash is stored")
    roles: list[str]
    note: str


class ApiKeyRevoked(ResponseModel):
    id: str
    revoked: bool


class RotateBody(BaseModel):
    retire_old: bool = False


class KeyStatus(ResponseModel):
    provider: str
    current_version: int
    versions: list[int]
    data_keys_per_version: dict[int, int] = Field(description="Key-encryption-key version -> data keys under it")
    pending_intents: int = Field(description="Key-store changes journalled but not yet settled with the main "
                                             "database (in flight, or left by a crash until recovery runs)")
    orphan_keys: int = Field(description="Data keys no record uses; `facewarden keys recover --purge-orphans`")
