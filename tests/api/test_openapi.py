"""The OpenAPI document describes what every endpoint answers: a response schema for its success and the error
body for every error status. Needs neither the face models nor PostgreSQL: the app is built on SQLite and only
its document is read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from facewarden.api import create_app
from facewarden.api.errors import STATUS_BY_KIND, status_for
from facewarden.errors import (
    Conflict,
    ErrorKind,
    FaceWardenError,
    Gone,
    IntegrityFailure,
    InternalError,
    InvalidInput,
    KeyUnavailable,
    Locked,
    RateLimited,
    TooLarge,
    Unavailable,
    Unprocessable,
    Unsupported,
    UpstreamFailure,
)
from facewarden.service import build_service
from tests.conftest import make_settings

# Answers that are not JSON: the PEM of the log's public key.
NOT_JSON = {("get", "/v1/audit/public-key"), ("get", "/metrics")}  # PEM; Prometheus text
UNAUTHENTICATED = {("get", "/v1/health"), ("get", "/v1/audit/public-key")}  # no caller, nothing refused


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    service = build_service(make_settings(Path(tmp_path_factory.mktemp("openapi")) / "home"), create=True)
    try:
        yield TestClient(create_app(service)).get("/openapi.json").json()
    finally:
        service.close()


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, op in item.items():
            yield method, path, op


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def _models_in(spec: dict[str, Any], schema: dict[str, Any], seen: set[str]) -> Iterator[dict[str, Any]]:
    """Every model a schema refers to, nested ones included."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name in seen:
            return
        seen.add(name)
        schema = spec["components"]["schemas"][name]
        yield schema
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from _models_in(spec, schema[key], seen)
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            yield from _models_in(spec, option, seen)
    for prop in schema.get("properties", {}).values():
        yield from _models_in(spec, prop, seen)


def test_the_api_still_has_its_endpoints(spec: dict[str, Any]) -> None:
    ops = {(m, p) for m, p, _ in _operations(spec)}
    assert len(ops) >= 45  # issue 10 adds endpoints; none goes away
    for op in (("post", "/v1/subjects"), ("post", "/v1/subjects/{subject}/verify"), ("post", "/v1/identify"),
               ("put", "/v1/purposes/{name}"), ("post", "/v1/le/requests"), ("get", "/v1/le/searches/{search_id}"),
               ("post", "/v1/liveness/sessions/{session_id}"), ("get", "/v1/audit/proofs/consistency"),
               ("get", "/v1/reports/transparency"), ("delete", "/v1/me"), ("post", "/v1/keys/rotate")):
        assert op in ops


def test_every_success_has_a_response_schema(spec: dict[str, Any]) -> None:
    for method, path, op in _operations(spec):
        success = {code: r for code, r in op["responses"].items() if code.startswith("2")}
        assert success, (method, path)
        for code, response in success.items():
            content = response.get("content", {})
            if (method, path) in NOT_JSON:
                assert "application/json" not in content, (method, path)
                continue
            schema = content.get("application/json", {}).get("schema")
            assert schema, (method, path, code)
            top = _resolve(spec, schema)
            if top.get("type") == "array":
                top = _resolve(spec, top["items"])
            assert top.get("properties"), f"{method} {path} {code}: no described fields"
            for model in _models_in(spec, schema, set()):
                assert model.get("properties"), (method, path, model.get("title"))


def test_documented_fields_match_what_the_use_cases_return(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    verify = schemas["Verification"]
    assert set(verify["required"]) == {"subject", "match", "attempts_left", "locked"}  # scores: operators only
    assert {"distance", "threshold"} <= set(verify["properties"])
    assert set(schemas["SubjectExport"]["required"]) >= {"subject", "consent", "templates", "raw_images_kept"}
    assert set(schemas["SearchLeads"]["required"]) >= {"marking", "candidates", "searches_used"}
    assert "distance" not in str(schemas["SearchLeads"]) and "distance" not in str(schemas["Lead"])
    for model in ("Enrolled", "SubjectExport", "TransparencyReport", "AuditEntry"):
        assert schemas[model].get("additionalProperties") is True  # nothing the service adds is dropped
    # A proposal waiting for a second administrator is documented as 202.
    put_purpose = spec["paths"]["/v1/purposes/{name}"]["put"]["responses"]
    assert _resolve(spec, put_purpose["202"]["content"]["application/json"]["schema"])["title"] == "PendingAction"


def test_every_operation_lists_the_error_statuses_with_the_error_body(spec: dict[str, Any]) -> None:
    statuses = {str(s) for s in STATUS_BY_KIND.values()}
    for method, path, op in _operations(spec):
        if (method, path) in UNAUTHENTICATED:
            continue
        documented = {code for code in op["responses"] if not code.startswith("2")}
        assert statuses <= documented, (method, path, statuses - documented)
        for code in statuses:
            schema = op["responses"][code]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, code)
    error = spec["components"]["schemas"]["ErrorResponse"]
    assert _resolve(spec, error["properties"]["error"])["required"] == ["code", "message"]


def test_every_authenticated_operation_declares_the_bearer_scheme(spec: dict[str, Any]) -> None:
    """The Authorize button of /docs: one HTTP bearer scheme, on every operation that needs a caller."""
    schemes = spec["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {"type": "http", "scheme": "bearer",
                                     "description": schemes["HTTPBearer"]["description"]}
    # the capture page's two calls take a session's capture token, never an API key
    assert schemes["CaptureToken"] | {"description": ""} == {"type": "apiKey", "in": "header",
                                                             "name": "X-Capture-Token", "description": ""}
    assert set(schemes) == {"HTTPBearer", "CaptureToken"}
    for method, path, op in _operations(spec):
        if (method, path) in UNAUTHENTICATED:
            assert "security" not in op, (method, path)
        elif path.startswith("/v1/liveness/capture/"):
            assert op.get("security") == [{"CaptureToken": []}], (method, path)
        else:
            assert op.get("security") == [{"HTTPBearer": []}], (method, path)


def test_the_bearer_scheme_keeps_our_error_answers(tmp_path: Path) -> None:
    """Declaring the scheme changed no answer: a missing or malformed header is our JSON 401 `unauthorized`."""
    service = build_service(make_settings(tmp_path / "home"), create=True)
    try:
        client = TestClient(create_app(service))
        for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"},
                        {"Authorization": "Bearer fw_wrong"}):
            r = client.get("/v1/subjects", headers=headers)
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", (headers, r.text)
    finally:
        service.close()


def test_each_error_kind_has_one_status() -> None:
    assert set(STATUS_BY_KIND) == set(ErrorKind)
    cases = {InvalidInput("x"): 400, Locked("x"): 423, Conflict("x"): 409, IntegrityFailure("x"): 409,
             Gone("x"): 410, KeyUnavailable("x"): 410, TooLarge("x", code="too_many_pixels"): 413,
             Unsupported("x"): 415, Unprocessable("x"): 422, RateLimited("x"): 429, InternalError("x"): 500,
             UpstreamFailure("x"): 502, Unavailable("x"): 503, Unavailable("x", code="storage_full"): 503,
             FaceWardenError("x", code="request_timeout", kind=ErrorKind.TIMEOUT): 408,
             FaceWardenError("x", code="search_closed", kind=ErrorKind.GONE): 410}
    for exc, status in cases.items():
        assert status_for(exc) == status, exc
