"""Schema-driven fuzzing of every endpoint with schemathesis, in process, on SQLite and PostgreSQL, as every kind
of caller: each role's API key, a data subject's credential, a revoked-looking key and nobody. Valid and invalid
requests drawn from the app's own OpenAPI document must never be answered with a 5xx, must answer within a time
bound, and must conform to the document (status codes, content types, response bodies).

Bounded for CI; bench/fuzz.py (`make fuzz`) runs the long campaign with the same world and checks."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import REPORT, Api
from tests.fuzz_api import FuzzWorld, build_world, fuzz_one, roles_strategy, strategy

CI = settings(max_examples=250, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))


def test_the_world_answers_each_role(api: Api, shared_faces: Path) -> None:
    world = build_world(api, shared_faces)
    assert set(world.headers) >= {"admin", "operator", "verifier", "auditor", "reviewer", "investigator",
                                  "subject", "wrong_key", "nobody"}
    for role, headers in world.headers.items():
        r = api.client.get("/v1/subjects", headers=headers)
        assert r.status_code in (200, 401, 403), (role, r.status_code)


def test_no_endpoint_answers_5xx_to_any_role(api: Api, shared_faces: Path) -> None:
    world: FuzzWorld = build_world(api, shared_faces)

    @CI
    @given(case=strategy(world.schema), role=roles_strategy(world),
           real_subject=st.booleans(), tweak=st.none() | st.integers(0, 2**32 - 1))
    def fuzz(case, role: str, real_subject: bool, tweak: int | None) -> None:  # type: ignore[no-untyped-def]
        fuzz_one(world, case, role, real_subject=real_subject, tweak=tweak)

    fuzz()
    REPORT.append(f"API fuzz ({'sqlite' if api.service.settings.database_url is None else 'postgresql'}): "
                  f"{dict(world.stats)}, operations reached: {len(world.operations)}")
    assert world.stats["cases"] >= 250
    assert world.stats["5xx"] == 0 and world.stats["hangs"] == 0, world.stats
    # the fuzz reached past authentication and validation, not only refusals at the door
    assert world.stats["2xx"] > 0, world.stats
