"""Police searches through the HTTP API, on SQLite and PostgreSQL: written requests, review, grants, searches,
double confirmation, emergencies. Every refusal is checked for its code, its audit entry, and for leaving nothing
changed (Utah Code 77-23e, Mass. G.L. c.6 §220, EU AI Act Art. 14(5))."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from facewarden.api import create_app
from facewarden.audit import AuditQuery
from facewarden.errors import KeyUnavailable
from facewarden.governance import policy
from facewarden.service import LOCAL_ADMIN, EnrolRequest, FaceService
from facewarden.store import LeCandidate, LeSearch, SearchGrant, SearchRequest
from facewarden.vision import FaceEngine

MARKING = "INVESTIGATIVE LEAD - NOT A POSITIVE IDENTIFICATION"
DMV = replace(LOCAL_ADMIN, tenant_id="dmv")


@pytest.fixture(scope="module")
def faces(face_engine: FaceEngine, shared_faces: Path) -> dict[str, Any]:
    """The photos; the session's caching engine embeds each one once; the probes go through the API as photos."""
    train = shared_faces / "people" / "train"
    return {"obama": [(train / "obama" / "obama.jpg").read_bytes(), (train / "obama" / "obama2.jpg").read_bytes()],
            "biden": [(train / "biden" / "biden.jpg").read_bytes()],
            "obama1": (shared_faces / "people" / "test" / "obama1.jpg").read_bytes(),
            "two_faces": (shared_faces / "people" / "test" / "obama_and_biden.jpg").read_bytes()}


class World:
    """dmv administers a driver's-licence database; police-a and police-b request searches of it."""

    def __init__(self, service: FaceService, faces: dict[str, Any]) -> None:
        self.service = service
        self.client = TestClient(create_app(service))
        self.obama1 = faces["obama1"]
        self.two_faces = faces["two_faces"]
        self.base = datetime.now(UTC)
        self.headers: dict[str, dict[str, str]] = {}
        self.principal: dict[str, str] = {}
        for name, tenant, role in (("rev1", "dmv", "reviewer"), ("rev2", "dmv", "reviewer"),
                                   ("admin_dmv", "dmv", "admin"), ("inv_dmv", "dmv", "investigator"),
                                   ("inv_a", "police-a", "investigator"), ("inv_a2", "police-a", "investigator"),
                                   ("rev_a", "police-a", "reviewer"), ("inv_b", "police-b", "investigator"),
                                   ("admin_ops", "default", "admin")):
            pid = service.accounts.create_person(LOCAL_ADMIN, name=name, person_roles={role}, tenant_id=tenant)
            _, secret = service.accounts.create_api_key(LOCAL_ADMIN, name=name, key_roles={role}, person_id=pid,
                                               tenant_id=tenant)
            self.headers[name] = {"Authorization": f"Bearer {secret}"}
            self.principal[name] = f"person:{pid}"
        _, secret = service.accounts.create_api_key(LOCAL_ADMIN, name="desk", key_roles={"operator"}, tenant_id="dmv")
        self.headers["operator_dmv"] = {"Authorization": f"Bearer {secret}"}

        service.governance.define_purpose(DMV, policy.PurposeSpec("driving-licence", "Driver's licence photos",
                                                       frozenset({"law"}), 1095, "licence holders",
                                                       law_enforcement_searchable=True))
        police_b = replace(LOCAL_ADMIN, tenant_id="police-b")  # searchable, but police-b has no search policy
        service.governance.define_purpose(police_b, policy.PurposeSpec("booking-photos", "Booking photos", frozenset({"law"}),
                                                            1095, "arrestees", law_enforcement_searchable=True))
        self.set_policy()
        for actor, ref, who, purpose, basis in ((DMV, "DL-OBAMA", "obama", "driving-licence", "law"),
                                                (DMV, "DL-BIDEN", "biden", "driving-licence", "law"),
                                                (DMV, "LOGIN-OBAMA", "obama", "login", "contract"),
                                                (police_b, "PB-OBAMA", "obama", "booking-photos", "law")):
            service.matching.enrol(actor, EnrolRequest(ref, faces[who], purpose, basis))

    def set_policy(self, **changes: Any) -> None:
        params = {"allowed_uses": {"serious-crime", "threat-to-life"}, "allow_own_agency_review": False,
                  "searches_per_grant": 2, "grant_days": 14, "max_candidates": 5, **changes}
        self.service.governance.set_le_policy(DMV, **params)

    def move_clock(self, **delta: float) -> None:
        when = self.base + timedelta(**delta)
        self.service.clock = lambda: when

    # -- calls -------------------------------------------------------------------------------
    def file(self, who: str = "inv_a", probe: bytes | None = None, **form: Any) -> httpx.Response:
        data = {"administering_tenant": "dmv", "case_number": "CASE-1", "offence": "armed robbery",
                "narrative": "Suspect filmed at the bank on Main Street", "authorised_use": "serious-crime",
                "basis_kind": "court-order", "court_order_ref": "ORDER-77/2026", "max_candidates": "3", **form}
        data = {k: str(v) for k, v in data.items() if v is not None}
        return self.client.post("/v1/le/requests", data=data, files={"probe": ("probe.jpg", probe or self.obama1)},
                                headers=self.headers[who])

    def filed(self, who: str = "inv_a", **form: Any) -> str:
        r = self.file(who, **form)
        assert r.status_code == 201, r.text
        return r.json()["request_id"]

    def review(self, request_id: str, approve: bool = True, who: str = "rev1", reason: str = "Documented",
               ) -> httpx.Response:
        return self.client.post(f"/v1/le/requests/{request_id}/review", json={"approve": approve, "reason": reason},
                                headers=self.headers[who])

    def approved(self, who: str = "inv_a", **form: Any) -> str:
        request_id = self.filed(who, **form)
        r = self.review(request_id)
        assert r.status_code == 200, r.text
        return request_id

    def search(self, request_id: str, who: str = "inv_a") -> httpx.Response:
        return self.client.post(f"/v1/le/requests/{request_id}/search", headers=self.headers[who])

    def emergency(self, who: str = "inv_a", probe: bytes | None = None, **form: Any) -> httpx.Response:
        data = {"administering_tenant": "dmv", "case_number": "CASE-E", "authorised_use": "threat-to-life",
                "emergency_facts": "A child was taken from a car park an hour ago", "max_candidates": "3", **form}
        data = {k: str(v) for k, v in data.items() if v is not None}
        return self.client.post("/v1/le/emergency-searches", data=data,
                                files={"probe": ("probe.jpg", probe or self.obama1)}, headers=self.headers[who])

    def confirm(self, candidate_id: str, who: str) -> httpx.Response:
        return self.client.post(f"/v1/le/candidates/{candidate_id}/confirm", headers=self.headers[who])

    def get_search(self, search_id: str, who: str = "inv_a") -> httpx.Response:
        return self.client.get(f"/v1/le/searches/{search_id}", headers=self.headers[who])

    # -- checks ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything a refusal must leave as it was."""
        with self.service.db.session(readonly=True) as s:
            return {
                "requests": sorted((r.id, r.status, r.decided_by, r.probe is not None)
                                   for r in s.scalars(select(SearchRequest))),
                "grants": sorted((g.id, g.searches_used) for g in s.scalars(select(SearchGrant))),
                "searches": sorted((x.id, x.status) for x in s.scalars(select(LeSearch))),
                "candidates": sorted((c.id, c.first_confirmed_by or "", c.second_confirmed_by or "",
                                      c.confirmed_at is not None) for c in s.scalars(select(LeCandidate))),
                "data_keys": sum(self.service.keyring.versions_in_use().values()),
            }

    def entries(self, operation: str, outcome: str | None = None) -> list[dict[str, Any]]:
        rows = self.service.audit.query(AuditQuery(operation=operation, limit=10_000))
        return [e for e in rows if outcome is None or e["outcome"] == outcome]

    def refused(self, call: Callable[[], httpx.Response], status: int, code: str, operation: str) -> httpx.Response:
        """The call is refused with `code`, changes nothing, and the refusal is in the audit log."""
        before, logged = self.state(), len(self.entries(operation, code))
        r = call()
        assert r.status_code == status, r.text
        assert r.json()["error"]["code"] == code, r.text
        assert self.state() == before, f"refused call {code} changed something"
        assert len(self.entries(operation, code)) == logged + 1, f"refusal {code} of {operation} was not audited"
        return r

    def finish(self) -> None:
        for e in self.service.audit.query(AuditQuery(limit=10_000)):
            if e["operation"].startswith("le_"):
                assert "distance" not in e["details"] and "narrative" not in e["details"]
                for secret in ("Main Street", "armed robbery", "car park", "DL-OBAMA", "ORDER-77"):
                    assert secret not in e["details"], e
        assert self.service.audit.verify().ok


@pytest.fixture
def world(service: FaceService, faces: dict[str, Any]) -> World:
    return World(service, faces)


def test_filing_a_request(world: World) -> None:
    w = world
    # Refused at filing, with nothing stored: missing court order, use not allowed, above the policy's
    # candidates, unknown agency, agency without a search policy, not an investigator, a probe with two faces.
    r = w.refused(lambda: w.file(court_order_ref=None), 400, "request_incomplete", "le_request_file")
    assert "court_order_ref" in r.json()["error"]["message"]
    w.refused(lambda: w.file(offence=""), 400, "request_incomplete", "le_request_file")
    w.refused(lambda: w.file(basis_kind="emergency"), 400, "request_incomplete", "le_request_file")  # no facts
    w.refused(lambda: w.file(authorised_use="missing-person"), 403, "use_not_allowed", "le_request_file")
    w.refused(lambda: w.file(max_candidates=6), 400, "invalid_request", "le_request_file")
    w.refused(lambda: w.file(administering_tenant="nowhere"), 404, "unknown_agency", "le_request_file")
    w.refused(lambda: w.file(administering_tenant="police-b"), 404, "unknown_agency", "le_request_file")
    w.refused(lambda: w.file("rev1"), 403, "forbidden", "le_request_file")
    w.refused(lambda: w.file(probe=w.two_faces), 422, "multiple_faces", "le_request_file")
    assert {e["case_id"] for e in w.entries("le_request_file", "use_not_allowed")} == {"CASE-1"}

    # Filed: pending, the probe only as ciphertext under the request's own data key.
    r = w.file()
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "pending"
    request_id = r.json()["request_id"]
    with w.service.db.session(readonly=True) as s:
        stored = s.get(SearchRequest, request_id)
        assert stored.probe and w.obama1[:64] not in stored.probe and len(stored.probe) < len(w.obama1) + 64
        assert (stored.requesting_tenant, stored.requested_by) == ("police-a", w.principal["inv_a"])
    assert w.service.keyring.store.get(f"le-request/{request_id}")
    [entry] = w.entries("le_request_file", "filed")
    assert entry["case_id"] == "CASE-1" and entry["tenant_id"] == "police-a"

    # Who sees it: the administering reviewers and the requesting agency; never the probe.
    for who, seen in (("rev1", True), ("inv_a2", True), ("inv_b", False), ("rev_a", False), ("inv_dmv", False)):
        r = w.client.get("/v1/le/requests", headers=w.headers[who])
        assert r.status_code == 200, r.text
        ids = [x["request_id"] for x in r.json()["requests"]]
        assert (request_id in ids) is seen, who
        assert "probe" not in r.text
    w.refused(lambda: w.client.get("/v1/le/requests", headers=w.headers["operator_dmv"]), 403, "forbidden",
              "le_request_list")
    w.finish()


def test_reviewing_a_request(world: World) -> None:
    w = world
    request_id = w.filed()
    # Not the administering agency's reviewer: as if it did not exist. Not a reviewer at all. No reason.
    w.refused(lambda: w.review(request_id, who="rev_a"), 404, "request_not_found", "le_request_review")
    w.refused(lambda: w.review(request_id, who="inv_a"), 403, "forbidden", "le_request_review")
    w.refused(lambda: w.review(request_id, reason="  "), 400, "reason_required", "le_request_review")
    # The policy changed since filing: a request for a use it no longer allows cannot be approved.
    w.set_policy(allowed_uses={"threat-to-life"})
    w.refused(lambda: w.review(request_id), 403, "use_not_allowed", "le_request_review")
    w.set_policy(max_candidates=2)
    w.refused(lambda: w.review(request_id), 400, "invalid_request", "le_request_review")
    w.set_policy()

    # dmv's own investigator asks dmv: its reviewers may not decide while the policy forbids it.
    own = w.filed("inv_dmv")
    w.refused(lambda: w.review(own), 403, "own_agency_review", "le_request_review")
    w.set_policy(allow_own_agency_review=True)
    assert w.review(own).status_code == 200
    w.set_policy()

    # Approved: a grant for this case only, with the policy's searches and expiry.
    r = w.review(request_id, reason="Court order checked")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "approved" and body["grant"]["searches_allowed"] == 2
    assert datetime.fromisoformat(body["grant"]["expires_at"]) - datetime.fromisoformat(body["decided_at"]) \
        == timedelta(days=14)
    with w.service.db.session(readonly=True) as s:
        grant = s.scalars(select(SearchGrant).where(SearchGrant.request_id == request_id)).one()
        assert (grant.case_number, grant.searches_used) == ("CASE-1", 0)
    [entry] = [e for e in w.entries("le_request_review", "approved") if request_id in e["details"]]
    assert entry["case_id"] == "CASE-1" and "checked" not in entry["details"]
    w.refused(lambda: w.review(request_id, approve=False, who="rev2"), 409, "request_decided", "le_request_review")

    # Denied: no grant, the probe and its key destroyed; no search runs on it.
    denied = w.filed(case_number="CASE-2")
    r = w.review(denied, approve=False, reason="No court order on file")
    assert r.status_code == 200 and r.json()["status"] == "denied" and r.json()["grant"] is None
    with w.service.db.session(readonly=True) as s:
        assert s.get(SearchRequest, denied).probe is None
        assert s.scalars(select(SearchGrant).where(SearchGrant.request_id == denied)).first() is None
    with pytest.raises(KeyUnavailable):
        w.service.keyring.store.get(f"le-request/{denied}")
    w.refused(lambda: w.search(denied), 403, "grant_required", "le_search")
    pending = w.filed(case_number="CASE-3")
    w.refused(lambda: w.search(pending), 403, "grant_required", "le_search")
    w.finish()


def test_search_under_a_grant_and_double_confirmation(world: World) -> None:
    w = world
    # The operator's 1:N search cannot be turned into a police search, and finds the login template it may.
    w.refused(lambda: w.client.post("/v1/identify", files={"image": ("p.jpg", w.obama1)},
                                    data={"purpose": "law-enforcement"}, headers=w.headers["operator_dmv"]),
              403, "grant_required", "identify")
    r = w.client.post("/v1/identify", files={"image": ("p.jpg", w.obama1)}, data={"purpose": "login"},
                      headers=w.headers["operator_dmv"])
    assert [c["subject"] for c in r.json()["faces"][0]["candidates"]] == ["LOGIN-OBAMA"]  # the same face

    request_id = w.approved()
    # Another agency's investigator, or a reviewer, cannot run it.
    w.refused(lambda: w.search(request_id, who="inv_b"), 404, "request_not_found", "le_search")
    w.refused(lambda: w.search(request_id, who="rev1"), 403, "forbidden", "le_search")

    r = w.search(request_id)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["marking"] == MARKING and body["case_number"] == "CASE-1"
    # dmv's searchable purpose only: not its login templates, not police-b's booking photos, though the same face.
    assert [(c["subject"], c["rank"], c["confirmed"]) for c in body["candidates"]] == [("DL-OBAMA", 1, False)]
    assert "distance" not in r.text and "score" not in r.text
    search_id, candidate_id = body["search_id"], body["candidates"][0]["candidate_id"]
    [entry] = w.entries("le_search", "candidates")
    assert entry["case_id"] == "CASE-1" and entry["tenant_id"] == "police-a"
    [disclosed] = w.entries("le_disclosure", "candidates")
    assert disclosed["tenant_id"] == "dmv" and disclosed["case_id"] == "CASE-1"

    # Two different reviewers of dmv confirm; one reviewer twice, another agency's, or an investigator cannot.
    r = w.confirm(candidate_id, "rev1")
    assert r.status_code == 200 and r.json()["confirmed"] is False and r.json()["confirmations"] == 1
    w.refused(lambda: w.confirm(candidate_id, "rev1"), 409, "same_reviewer", "le_confirm")
    w.refused(lambda: w.confirm(candidate_id, "rev_a"), 404, "candidate_not_found", "le_confirm")
    w.refused(lambda: w.confirm(candidate_id, "inv_a"), 403, "forbidden", "le_confirm")
    r = w.confirm(candidate_id, "rev2")
    assert r.status_code == 200 and r.json()["confirmed"] is True and r.json()["confirmations"] == 2
    w.refused(lambda: w.confirm(candidate_id, "rev1"), 409, "already_confirmed", "le_confirm")
    with w.service.db.session(readonly=True) as s:
        cand = s.get(LeCandidate, candidate_id)
        assert (cand.first_confirmed_by, cand.second_confirmed_by) == (w.principal["rev1"], w.principal["rev2"])
    assert [e["subject_id"] for e in w.entries("le_confirm", "confirmed")] == [cand.subject_id]

    # The search as its parties see it.
    for who in ("inv_a", "inv_a2", "rev2"):
        r = w.get_search(search_id, who)
        assert r.status_code == 200, r.text
        assert [(c["subject"], c["confirmed"]) for c in r.json()["candidates"]] == [("DL-OBAMA", True)]
    w.refused(lambda: w.get_search(search_id, "inv_b"), 404, "search_not_found", "le_search_view")
    w.refused(lambda: w.get_search(search_id, "rev_a"), 404, "search_not_found", "le_search_view")

    # The grant allows two searches: the second runs, the third is refused.
    r = w.search(request_id, who="inv_a2")
    assert r.status_code == 200 and r.json()["searches_used"] == 2
    w.refused(lambda: w.search(request_id), 403, "grant_used_up", "le_search")

    # A grant past its expiry allows nothing.
    fresh = w.approved(case_number="CASE-4")
    w.move_clock(days=14, minutes=10)
    w.refused(lambda: w.search(fresh), 403, "grant_expired", "le_search")

    # Candidates of a closed search can no longer be confirmed.
    second = r.json()["candidates"][0]["candidate_id"]
    with w.service.db.session() as s:
        s.execute(update(LeSearch).where(LeSearch.id == r.json()["search_id"]).values(status="destroyed"))
    w.refused(lambda: w.confirm(second, "rev1"), 410, "search_closed", "le_confirm")
    w.finish()


def test_emergency_searches_and_their_follow_up(world: World) -> None:
    w = world
    w.refused(lambda: w.emergency(authorised_use="missing-person"), 403, "use_not_allowed", "le_emergency_search")
    w.refused(lambda: w.emergency(emergency_facts=""), 400, "request_incomplete", "le_emergency_search")
    w.refused(lambda: w.emergency(who="rev1"), 403, "forbidden", "le_emergency_search")

    # Three emergency searches run at once, without any grant.
    found = {}
    for case in ("CASE-E1", "CASE-E2", "CASE-E3"):
        r = w.emergency(case_number=case)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["emergency"] is True and body["marking"] == MARKING
        assert [c["subject"] for c in body["candidates"]] == ["DL-OBAMA"]
        assert "48 hours" in body["message"]
        due = datetime.fromisoformat(body["follow_up_due"])
        assert timedelta(hours=47) < due - w.base < timedelta(hours=49)
        found[case] = body
    e1, e2, e3 = (found[c]["search_id"] for c in ("CASE-E1", "CASE-E2", "CASE-E3"))

    # Written requests follow E2 and E3 within 48 h; E3's is denied. A follow-up must be the same case and
    # the same agency's.
    w.move_clock(hours=1)
    w.refused(lambda: w.file(case_number="CASE-E1", emergency_search_id=e2), 409, "follow_up_mismatch",
              "le_request_file")
    w.refused(lambda: w.file("inv_b", case_number="CASE-E2", emergency_search_id=e2), 404,
              "emergency_search_not_found", "le_request_file")
    w.filed(case_number="CASE-E2", emergency_search_id=e2)
    w.refused(lambda: w.file(case_number="CASE-E2", emergency_search_id=e2), 409, "follow_up_exists",
              "le_request_file")
    e3_request = w.filed(case_number="CASE-E3", emergency_search_id=e3)
    assert w.review(e3_request, approve=False, reason="Facts do not show a threat to life").status_code == 200

    # After 48 h nothing follows E1 any more.
    w.move_clock(hours=49)
    w.refused(lambda: w.file(case_number="CASE-E1", emergency_search_id=e1), 409, "follow_up_too_late",
              "le_request_file")
    # The retention job serves every tenant: the deployment's administrator runs it, not the agency's.
    assert w.client.post("/v1/retention/run", headers=w.headers["admin_dmv"]).status_code == 403
    r = w.client.post("/v1/retention/run", headers=w.headers["admin_ops"])
    assert r.status_code == 200, r.text
    assert r.json()["emergencies_flagged"] == 1

    statuses = {}
    for case, search_id in (("CASE-E1", e1), ("CASE-E2", e2), ("CASE-E3", e3)):
        r = w.get_search(search_id)
        assert r.status_code == 200, r.text
        statuses[case] = (r.json()["status"], len(r.json()["candidates"]))
    assert statuses == {"CASE-E1": ("flagged", 0), "CASE-E2": ("leads", 1), "CASE-E3": ("destroyed", 0)}
    with w.service.db.session(readonly=True) as s:
        assert s.scalars(select(LeCandidate).where(LeCandidate.search_id.in_([e1, e3]))).first() is None
        assert s.get(LeSearch, e1).candidates_returned == 1  # the count stays for the transparency report
    expired = {e["case_id"]: e["outcome"] for e in w.entries("le_emergency_expire")}
    assert expired == {"CASE-E1": "flagged", "CASE-E3": "destroyed"}
    # The deleted leads are gone for the reviewers too; running the job again changes nothing.
    w.refused(lambda: w.confirm(found["CASE-E1"]["candidates"][0]["candidate_id"], "rev1"), 404,
              "candidate_not_found", "le_confirm")
    assert w.client.post("/v1/retention/run", headers=w.headers["admin_ops"]).json()["emergencies_flagged"] == 0
    assert w.confirm(found["CASE-E2"]["candidates"][0]["candidate_id"], "rev1").status_code == 200
    w.finish()
