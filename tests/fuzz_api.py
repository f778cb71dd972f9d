"""The world the API fuzzing runs in, shared by tests/api/test_fuzz_api.py and bench/fuzz.py: a real service (the
`api` fixture's), a key for every role, a data subject's credential, an enrolled subject for the generated
requests to reach now and then, and the app's own OpenAPI document as schemathesis sees it."""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from facewarden.api.limits import RateLimiter
from facewarden.governance import roles
from facewarden.service import LOCAL_ADMIN
from tests.conftest import Api
from tests.fuzz_cases import time_bound

HANG_S = 30.0  # one request, on a loaded 2-core machine: far above any real answer
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SUBJECT = "obama"


@dataclass
class FuzzWorld:
    api: Api
    schema: Any
    headers: dict[str, dict[str, str]]
    stats: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    operations: set[str] = field(default_factory=set)  # reached with an answer below 400
    codes: Counter[str] = field(default_factory=Counter)  # error codes answered
    roles: Counter[str] = field(default_factory=Counter)  # cases sent as each caller


def build_world(api: Api, faces: Path) -> FuzzWorld:
    service = api.service
    headers = {name: h for name, h in api.keys.items() if name != "admin2"}
    for role in sorted(roles.ALL_ROLES - {"admin", "operator", "verifier", "auditor"}):
        person = (service.accounts.create_person(LOCAL_ADMIN, name=f"{role} person", person_roles={role})
                  if role in roles.PERSONAL_ROLES else None)
        _, secret = service.accounts.create_api_key(LOCAL_ADMIN, name=f"fuzz {role}", key_roles={role},
                                                    person_id=person)
        headers[role] = {"Authorization": f"Bearer {secret}"}
    r = api.enrol(SUBJECT, [faces / "people" / "train" / "obama" / "obama.jpg"])
    assert r.status_code == 201, r.text
    headers["subject"] = {"Authorization": f"Bearer {r.json()['subject_credential']}"}
    headers["wrong_key"] = {"Authorization": "Bearer fw_not-a-key-of-this-deployment"}
    headers["nobody"] = {}
    # Every fuzz request comes from one address; the failed-login throttle (tested on its own) would soon answer
    # 429 to all of them, before any endpoint is reached. The deployment's budget is raised, not bypassed.
    app = api.client.app
    app.state.rate_limits = replace(app.state.rate_limits, failed_auth=RateLimiter(10**9))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return FuzzWorld(api, schema, headers)


def strategy(schema: Any) -> st.SearchStrategy[Any]:
    """Valid requests (three in four) and invalid ones for every operation of the document."""
    positive = schema.as_strategy(GenerationMode.POSITIVE)
    return st.one_of(positive, positive, positive, schema.as_strategy(GenerationMode.NEGATIVE))


# The role an operation is meant for, by path: half the cases are sent as it, so that they get past the role check
# to the use case; the other half as any caller, so that every role meets every endpoint.
_LIKELY = (("/v1/me", "subject"), ("/v1/audit", "auditor"), ("/v1/le/requests/{request_id}/review", "reviewer"),
           ("/v1/le/candidates", "reviewer"), ("/v1/le/policy", "admin"), ("/v1/le", "investigator"),
           ("/v1/liveness", "verifier"), ("/verify", "verifier"), ("/unlock", "verifier"), ("/v1/subjects", "operator"),
           ("/v1/identify", "operator"), ("/v1/reports", "auditor"), ("/metrics", "metrics"), ("/v1/", "admin"))


def roles_strategy(world: FuzzWorld) -> st.SearchStrategy[str]:
    return st.one_of(st.just("likely"), st.sampled_from(sorted(world.headers)))


def likely_role(path: str, world: FuzzWorld) -> str:
    role = next((r for prefix, r in _LIKELY if prefix in path), "admin")
    return role if role in world.headers else "admin"


# Values that broke services like this one (issue 10: NUL on PostgreSQL, path-like ids, dates at the calendar's
# edge), put into one text field, query parameter or path parameter of a generated request now and then:
# schemathesis alone rarely sends them to a field that reaches the database.
HOSTILE = ("\x00", "a\x00b", "\x00" * 3, "' OR '1'='1' --", "'; DROP TABLE subjects; --", "../../etc/passwd", "/",
           ".", "..", "....//....//", " obama ", "OBAMA", "ｏｂａｍａ", "\u202eamabo", "\u200b", "\r\nX-Injected: 1",
           "%00", "%2e%2e%2f", "x" * 5000, "-1", "0", "1e309", "NaN", "9999-12-31T23:59:59+14:00",
           "0001-01-01T00:00:00-14:00", "🙂" * 50, "null", "[]", "{}")


def _hostile(case: Any, rng: random.Random) -> None:
    slots: list[tuple[Any, Any]] = []
    for container in (case.body, case.query, case.path_parameters):
        if isinstance(container, dict):
            slots += [(container, k) for k, v in container.items() if isinstance(v, str | int | float | None)]
            for v in container.values():
                if isinstance(v, list):
                    slots += [(v, i) for i, x in enumerate(v) if isinstance(x, str)]
    if slots:
        container, key = rng.choice(slots)
        value = rng.choice(HOSTILE)
        old = container[key]
        container[key] = (old[:len(old) // 2] + value + old[len(old) // 2:]) if isinstance(old, str) and \
            rng.random() < 0.5 else value


def fuzz_one(world: FuzzWorld, case: Any, role: str, *, real_subject: bool = False, validate: bool = True,
             tweak: int | None = None) -> int:
    """Send one generated request as `role`; count it; raise AssertionError on a 5xx, a hang or (with `validate`)
    an answer that does not conform to the document. `tweak` (a seed) puts a hostile value into one field. Never
    prints request bodies (they may hold photos)."""
    if real_subject and isinstance(case.path_parameters, dict) and "subject" in case.path_parameters:
        case.path_parameters["subject"] = SUBJECT
    if tweak is not None:
        _hostile(case, random.Random(tweak))
        validate = False  # a value put in by hand may break the document's own constraints: 5xx and hangs only
    if role == "likely":
        role = likely_role(case.operation.path, world)
    label = f"{case.operation.method.upper()} {case.operation.path} as {role}"
    world.roles[role] += 1
    if world.headers[role]:  # the role's key, in place of any Authorization header schemathesis generated
        headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        case.headers = {**headers, **world.headers[role]}
    t0 = time.perf_counter()
    try:
        with time_bound(HANG_S):
            response = case.call()
    except Exception as exc:
        world.stats["hangs" if type(exc).__name__ == "Hang" else "5xx"] += 1
        world.failures.append(f"{label}: {type(exc).__name__}")
        raise AssertionError(f"{label}: the app raised {type(exc).__name__}") from None
    elapsed = time.perf_counter() - t0
    world.stats["cases"] += 1
    world.stats[f"{response.status_code // 100}xx"] += 1
    world.stats["max_ms"] = max(world.stats["max_ms"], round(elapsed * 1000))
    if response.status_code < 400:
        world.operations.add(f"{case.operation.method.upper()} {case.operation.path}")
    else:
        world.codes[f"{response.status_code} {_error_code(response)} {role}"] += 1
    if response.status_code >= 500:
        code = _error_code(response)
        world.failures.append(f"{label}: {response.status_code} {code}")
        raise AssertionError(f"{label}: answered {response.status_code} ({code})")
    if validate:
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup is a BaseExceptionGroup
            world.stats["nonconforming"] += 1
            world.failures.append(f"{label}: {response.status_code} does not conform: {str(exc)[:300]}")
            raise AssertionError(f"{label}: {response.status_code} does not conform to the OpenAPI document: "
                                 f"{str(exc)[:1500]}") from None
    return int(response.status_code)


def _error_code(response: Any) -> str:
    try:
        return str(response.json()["error"]["code"])
    except Exception:
        return "not JSON"
