"""GET /metrics: Prometheus text format, route templates only (never a subject's name), outcome counts from the
audit log, a dedicated `metrics` role, deployment tenant only, one registry per app."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from facewarden.api import create_app
from facewarden.service import LOCAL_ADMIN
from tests.conftest import Api


def _key(api: Api, roles: set[str], tenant: str = "default") -> dict[str, str]:
    _, secret = api.service.accounts.create_api_key(LOCAL_ADMIN, name="scraper", key_roles=roles, tenant_id=tenant)
    return {"Authorization": f"Bearer {secret}"}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_routes_by_template_and_outcomes_without_anything_personal(api: Api,
                                                                                  shared_faces: Path) -> None:
    name = "Jane-Secret-Doe"
    train = shared_faces / "people" / "train" / "obama"
    assert api.enrol(name, sorted(train.iterdir())).status_code == 201
    probe = (shared_faces / "people" / "test" / "obama1.jpg").read_bytes()
    assert api.verify(name, probe).json()["match"] is True
    assert api.verify(name, (shared_faces / "people" / "train" / "biden" / "biden.jpg").read_bytes()
                      ).json()["match"] is False
    assert api.identify(probe).status_code == 200
    assert api.client.get(f"/v1/subjects/{name}-missing/export", headers=api.keys["operator"]).status_code == 404
    assert api.client.get(f"/nowhere/{name}", headers=api.keys["operator"]).status_code == 404
    assert api.client.get("/v1/subjects", headers={"Authorization": "Bearer fw_wrong"}).status_code == 401

    r = api.client.get("/metrics", headers=_key(api, {"metrics"}))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert name.lower() not in r.text.lower() and "obama" not in r.text  # no subject reference anywhere
    m = _samples(r.text)
    verify = (("method", "POST"), ("route", "/v1/subjects/{subject}/verify"), ("status", "2xx"))
    assert m[("facewarden_http_requests_total", verify)] == 2
    assert m[("facewarden_http_request_duration_seconds_count", verify)] == 2
    assert m[("facewarden_http_requests_total",
              (("method", "GET"), ("route", "/v1/subjects/{subject}/export"), ("status", "4xx")))] == 1
    assert m[("facewarden_http_requests_total", (("method", "GET"), ("route", "unmatched"), ("status", "4xx")))] == 1

    def outcome(operation: str, result: str) -> float:
        return m.get(("facewarden_operations_total", (("operation", operation), ("outcome", result))), 0)

    assert outcome("enrol", "enrolled") == 1 and outcome("verify", "match") == 1
    assert outcome("verify", "no_match") == 1 and outcome("identify", "candidates") == 1
    assert outcome("export", "not_found") == 1 and outcome("login", "unauthorized") >= 1
    assert m[("facewarden_gallery_templates", ())] == 2 and m[("facewarden_subjects", ())] == 1
    assert m[("facewarden_audit_log_entries", ())] >= 6
    assert m[("facewarden_data_keys", (("kek_version", "1"),))] == 1
    assert m[("facewarden_kek_current_version", (("provider", "local"),))] == 1
    assert m[("process_resident_memory_bytes", ())] > 0

    # The next scrape adds only what happened since (the audit log is read incrementally).
    assert api.verify(name, probe).json()["match"] is True
    m2 = _samples(api.client.get("/metrics", headers=api.keys["auditor"]).text)
    assert m2[("facewarden_operations_total", (("operation", "verify"), ("outcome", "match")))] == 2


def test_only_scrapers_auditors_and_admins_of_the_deployment_read_metrics(api: Api) -> None:
    c = api.client
    assert c.get("/metrics").status_code == 401
    for role in ("operator", "verifier"):
        r = c.get("/metrics", headers=api.keys[role])
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    for role in ("admin", "auditor"):
        assert c.get("/metrics", headers=api.keys[role]).status_code == 200
    r = c.get("/metrics", headers=_key(api, {"metrics"}, tenant="other-bank"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "deployment_only"
    # A metrics key reads nothing else.
    scraper = _key(api, {"metrics"})
    assert c.get("/v1/subjects", headers=scraper).status_code == 403
    assert c.get("/v1/audit/entries", headers=scraper).status_code == 403
    # Apps in one process keep their own registries: a second app starts at zero.
    other = TestClient(create_app(api.service))
    text = other.get("/metrics", headers=scraper).text
    assert not any(k[0] == "facewarden_http_requests_total" and dict(k[1])["route"] == "/v1/subjects"
                   for k in _samples(text))
