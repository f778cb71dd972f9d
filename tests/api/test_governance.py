"""Governance through the HTTP API: tenants isolated, purpose-bound matching, consent and its withdrawal, the
subject's own credential, retention with a moved clock, dual control, per-person limits."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from facewarden.api import create_app
from facewarden.audit import AuditQuery
from facewarden.errors import Forbidden
from facewarden.service import LOCAL_ADMIN, FaceService
from facewarden.store import Subject
from tests.conftest import Api


def _photo(shared_faces: Path, person: str, i: int = 0) -> Path:
    return sorted((shared_faces / "people" / "train" / person).iterdir())[i]


def _key(service: FaceService, tenant: str, role: str, name: str) -> dict[str, str]:
    person = service.accounts.create_person(LOCAL_ADMIN, name=name, person_roles={role}, tenant_id=tenant)
    _, secret = service.accounts.create_api_key(LOCAL_ADMIN, name=name, key_roles={role}, person_id=person, tenant_id=tenant)
    return {"Authorization": f"Bearer {secret}"}


def _subjects(service: FaceService) -> int:
    with service.db.session() as s:
        return s.scalar(select(func.count()).select_from(Subject)) or 0


def _refusals(service: FaceService, outcome: str) -> int:
    return sum(1 for e in service.audit.query(AuditQuery(limit=10_000)) if e["outcome"] == outcome)


def test_tenants_cannot_read_count_or_match_each_other(api: Api, shared_faces: Path) -> None:
    svc = api.service
    assert api.enrol("obama", [_photo(shared_faces, "obama")]).status_code == 201
    other = _key(svc, "other-bank", "operator", "other operator")
    c = api.client
    probe = ("p.jpg", (shared_faces / "people" / "test" / "obama1.jpg").read_bytes())
    # The other tenant sees nothing: no list entry, no match, no export, no erase, and 404 like a stranger.
    assert c.get("/v1/subjects", headers=other).json() == []
    r = c.post("/v1/identify", files={"image": probe}, data={"purpose": "login"}, headers=other)
    assert r.status_code == 200 and r.json()["faces"][0]["candidates"] == []
    for method, url in (("post", "/v1/subjects/obama/verify"), ("get", "/v1/subjects/obama/export"),
                        ("delete", "/v1/subjects/obama"), ("post", "/v1/subjects/obama/withdraw-consent")):
        kwargs = {"files": {"image": probe}, "data": {"purpose": "login"}} if url.endswith("verify") else {}
        r = getattr(c, method)(url, headers=other, **kwargs)
        assert r.status_code == 404, (url, r.text)
        assert r.json()["error"]["message"] == "No subject 'obama' is enrolled in your tenant."
    assert c.get("/v1/audit/entries", headers=_key(svc, "other-bank", "auditor", "aud")).json()["entries"] \
        and all(e["tenant_id"] == "other-bank"
                for e in c.get("/v1/audit/entries", headers=_key(svc, "other-bank", "auditor", "aud2")).json()["entries"])
    # Still there for its own tenant.
    assert api.verify("obama", probe[1]).json()["match"] is True


def test_templates_match_only_for_their_own_purpose(api: Api, shared_faces: Path) -> None:
    assert api.enrol("obama", [_photo(shared_faces, "obama")], purpose="payment").status_code == 201
    probe = (shared_faces / "people" / "test" / "obama1.jpg").read_bytes()
    r = api.verify("obama", probe, purpose="login")
    assert r.status_code == 403 and r.json()["error"]["code"] == "purpose_mismatch"
    assert api.verify("obama", probe, purpose="payment").json()["match"] is True
    assert api.identify(probe, purpose="login").json()["faces"][0]["candidates"] == []
    assert api.identify(probe, purpose="payment").json()["faces"][0]["candidates"][0]["subject"] == "obama"
    r = api.identify(probe, purpose="law-enforcement")
    assert r.status_code == 403 and r.json()["error"]["code"] == "grant_required"
    r = api.identify(probe, purpose="marketing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_purpose"
    # The purpose decides which legal bases are acceptable.
    r = api.enrol("biden", [_photo(shared_faces, "biden")], purpose="device-unlock", legal_basis="contract")
    assert r.status_code == 403 and r.json()["error"]["code"] == "legal_basis_not_allowed"
    assert _subjects(api.service) == 1
    assert _refusals(api.service, "purpose_mismatch") == 1


def test_consent_records_the_term_and_withdrawal_erases_at_once(api: Api, shared_faces: Path) -> None:
    r = api.enrol("obama", [_photo(shared_faces, "obama")], purpose="login",
                  consent_text="I agree to face login for 1 year", expires_at="2027-11-01T00:00:00Z")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["expires_at"].startswith("2027-11-01")  # the consent term, shorter than the 3-year retention
    exported = api.client.get("/v1/subjects/obama/export", headers=api.keys["operator"]).json()
    assert exported["consent"]["text"] == "I agree to face login for 1 year" and exported["purpose"] == "login"
    # The person withdraws with their own credential: matching stops and the data key is destroyed.
    me = {"Authorization": f"Bearer {body['subject_credential']}"}
    assert api.client.get("/v1/me", headers=me).json()["subject"] == "obama"
    assert api.client.get("/v1/subjects", headers=me).status_code == 403  # a subject sees only their record
    r = api.client.post("/v1/me/withdraw-consent", headers=me)
    assert r.status_code == 200 and r.json()["consent_withdrawn"] is True
    probe = (shared_faces / "people" / "test" / "obama1.jpg").read_bytes()
    assert api.verify("obama", probe).status_code == 404
    assert api.identify(probe).json()["faces"][0]["candidates"] == []
    assert api.service.keyring.versions_in_use() == {}
    assert api.client.get("/v1/me", headers=me).status_code == 401  # the credential died with the record
    assert api.service.audit.query(AuditQuery(operation="consent_withdraw"))[0]["outcome"] == "consent_withdrawn"


def test_subject_credential_reaches_only_its_own_record(api: Api, shared_faces: Path) -> None:
    a = api.enrol("obama", [_photo(shared_faces, "obama")]).json()["subject_credential"]
    api.enrol("biden", [_photo(shared_faces, "biden")])
    me = {"Authorization": f"Bearer {a}"}
    r = api.client.get("/v1/subjects/biden/export", headers=me)  # operator endpoints refuse it (issue 10)
    assert r.status_code == 403 and r.json()["error"]["code"] == "self_service_only"
    assert api.client.delete("/v1/me", headers=me).json()["erased"] is True
    assert [s["subject"] for s in api.client.get("/v1/subjects", headers=api.keys["operator"]).json()] == ["biden"]



def test_the_service_refuses_a_subject_credential_that_names_a_record(api: Api, shared_faces: Path) -> None:
    """The refusal holds below the HTTP adapter too: any adapter handing the service a subject's credential."""
    a = api.enrol("obama", [_photo(shared_faces, "obama")]).json()["subject_credential"]
    api.enrol("biden", [_photo(shared_faces, "biden")])
    who = api.service.accounts.authenticate(a)
    for act in (api.service.rights.erase, api.service.rights.export, api.service.rights.withdraw_consent):
        with pytest.raises(Forbidden) as exc:
            act(who, "biden")
        assert exc.value.code == "self_service_only"
    assert api.service.rights.export(who, None)["subject"] == "obama"

def test_retention_job_destroys_expired_templates_and_their_keys(api: Api, shared_faces: Path) -> None:
    svc = api.service
    api.enrol("obama", [_photo(shared_faces, "obama")], expires_at="2027-01-01T00:00:00Z")  # consent term
    api.enrol("biden", [_photo(shared_faces, "biden")])  # 3-year purpose retention
    assert svc.keyring.versions_in_use() == {1: 2}
    start = svc.clock()
    r = api.client.post("/v1/retention/run", headers=api.keys["admin"])
    assert r.json()["subjects_destroyed"] == 0
    svc.clock = lambda: start.replace(year=2027, month=1, day=2)
    assert api.client.post("/v1/retention/run", headers=api.keys["admin"]).json()["subjects_destroyed"] == 1
    assert [s["subject"] for s in api.client.get("/v1/subjects", headers=api.keys["operator"]).json()] == ["biden"]
    assert svc.keyring.versions_in_use() == {1: 1}
    # BIPA: at the latest 3 years after the last interaction. A verification moves the last interaction.
    svc.clock = lambda: start + timedelta(days=3 * 365 - 10)
    assert api.verify("biden", _photo(shared_faces, "biden", 1).read_bytes()).json()["match"] is True
    svc.clock = lambda: start + timedelta(days=3 * 365 + 10)
    assert api.client.post("/v1/retention/run", headers=api.keys["admin"]).json()["subjects_destroyed"] == 0
    svc.clock = lambda: start + timedelta(days=6 * 365)
    assert api.client.post("/v1/retention/run", headers=api.keys["admin"]).json()["subjects_destroyed"] == 1
    assert _subjects(svc) == 0 and svc.keyring.versions_in_use() == {}
    assert api.client.post("/v1/retention/run", headers=api.keys["operator"]).status_code == 403
    assert svc.audit.verify().ok


def test_a_purpose_that_ends_takes_its_templates_with_it(api: Api, shared_faces: Path) -> None:
    svc = api.service
    api.enrol("obama", [_photo(shared_faces, "obama")], purpose="payment")
    body = {"description": "Approving payments", "legal_bases": ["consent", "contract"], "retention_days": 1095,
            "subject_category": "customers", "ends_at": "2027-06-01T00:00:00Z"}
    r = api.client.put("/v1/purposes/payment", json=body, headers=api.keys["admin"])
    assert r.status_code == 202  # changing a purpose's policy takes a second administrator
    approve = api.client.post(f"/v1/approvals/{r.json()['pending_action']}/approve", headers=api.keys["admin2"])
    assert approve.status_code == 200, approve.text
    assert api.client.post("/v1/retention/run", headers=api.keys["admin"]).json()["subjects_destroyed"] == 0
    svc.clock = lambda: datetime(2027, 7, 1, tzinfo=UTC)  # the purpose has ended
    assert api.client.post("/v1/retention/run", headers=api.keys["admin"]).json()["subjects_destroyed"] == 1
    r = api.enrol("biden", [_photo(shared_faces, "biden")], purpose="payment")
    assert r.status_code == 403 and r.json()["error"]["code"] == "purpose_ended"


def test_dual_control_for_purpose_changes_and_bulk_erasure(api: Api, shared_faces: Path) -> None:
    svc = api.service
    svc.settings.bulk_erase_dual_control_threshold = 1
    for person in ("obama", "biden"):
        api.enrol(person, [_photo(shared_faces, person)])
    # A new purpose: one administrator. A changed one: two.
    body = {"description": "Door access", "legal_bases": ["consent"], "retention_days": 365,
            "subject_category": "staff"}
    assert api.client.put("/v1/purposes/door", json=body, headers=api.keys["admin"]).json()["status"] == "applied"
    r = api.client.put("/v1/purposes/door", json={**body, "retention_days": 30}, headers=api.keys["admin"])
    assert r.status_code == 202
    pending = api.client.get("/v1/approvals", headers=api.keys["admin2"]).json()["pending"]
    assert [p["kind"] for p in pending] == ["purpose_policy"]
    door = next(p for p in api.client.get("/v1/purposes", headers=api.keys["admin"]).json()["purposes"]
                if p["name"] == "door")
    assert door["retention_days"] == 365  # unchanged until approved
    rej = api.client.post(f"/v1/approvals/{r.json()['pending_action']}/reject", json={"reason": "too short"},
                          headers=api.keys["admin2"])
    assert rej.status_code == 200
    # A proposal nobody approves lapses after 7 days, and says so.
    stale = api.client.put("/v1/purposes/door", json={**body, "retention_days": 60}, headers=api.keys["admin"])
    start = svc.clock()
    svc.clock = lambda: start + timedelta(days=8)
    late = api.client.post(f"/v1/approvals/{stale.json()['pending_action']}/approve", headers=api.keys["admin2"])
    assert late.status_code == 409 and late.json()["error"]["code"] == "action_expired"
    assert api.client.get("/v1/approvals", headers=api.keys["admin2"]).json()["pending"] == []
    svc.clock = lambda: start
    # Erasing more than the threshold at once: proposed, then approved by another administrator.
    r = api.client.post("/v1/subjects/erase-batch", json={"subjects": ["obama", "biden"]}, headers=api.keys["admin"])
    assert r.status_code == 202 and _subjects(svc) == 2
    same = api.client.post(f"/v1/approvals/{r.json()['pending_action']}/approve", headers=api.keys["admin"])
    assert same.status_code == 403 and _subjects(svc) == 2
    ok = api.client.post(f"/v1/approvals/{r.json()['pending_action']}/approve", headers=api.keys["admin2"])
    assert ok.status_code == 200 and ok.json()["result"]["erased"] == 2 and _subjects(svc) == 0
    again = api.client.post(f"/v1/approvals/{r.json()['pending_action']}/approve", headers=api.keys["admin2"])
    assert again.status_code == 409
    # Erasing at or below the threshold needs no second person.
    api.enrol("obama", [_photo(shared_faces, "obama")])
    r = api.client.post("/v1/subjects/erase-batch", json={"subjects": ["obama"]}, headers=api.keys["operator"])
    assert r.status_code == 200 and r.json()["erased"] == 1


def test_per_person_limits_on_verifications_and_searches(api: Api, shared_faces: Path) -> None:
    svc = api.service
    api.enrol("obama", [_photo(shared_faces, "obama")])
    svc.settings.person_verify_limit_per_hour = 2
    svc.settings.person_search_limit_per_day = 1
    probe = (shared_faces / "people" / "test" / "obama1.jpg").read_bytes()
    assert [api.verify("obama", probe).status_code for _ in range(3)] == [200, 200, 429]
    assert api.verify("obama", probe).json()["error"]["code"] == "person_rate_limited"
    # Another device is not held back by the first one's limit.
    _, other = svc.accounts.create_api_key(LOCAL_ADMIN, name="tablet 2", key_roles={"verifier"})
    r = api.client.post("/v1/subjects/obama/verify", files={"image": ("p.jpg", probe)}, data={"purpose": "login"},
                        headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 200
    assert [api.identify(probe).status_code for _ in range(2)] == [200, 429]
    svc.clock = lambda: datetime.now(UTC) + timedelta(hours=2)
    assert api.verify("obama", probe).status_code == 200  # the hour has passed
    assert _refusals(svc, "person_rate_limited") == 3


def test_people_roles_and_keys(service: FaceService) -> None:
    client = TestClient(create_app(service))
    alice = service.accounts.create_person(LOCAL_ADMIN, name="Alice Reviewer", person_roles={"reviewer"}, tenant_id="dmv")
    with pytest.raises(Exception, match="must belong to a person"):
        service.accounts.create_api_key(LOCAL_ADMIN, name="k", key_roles={"reviewer"}, tenant_id="dmv")
    with pytest.raises(Exception, match="only its person's roles"):
        service.accounts.create_api_key(LOCAL_ADMIN, name="k", key_roles={"admin"}, person_id=alice, tenant_id="dmv")
    with pytest.raises(Exception, match="No such active person"):
        service.accounts.create_api_key(LOCAL_ADMIN, name="k", key_roles={"reviewer"}, person_id=alice)  # wrong tenant
    _, secret = service.accounts.create_api_key(LOCAL_ADMIN, name="k", key_roles={"reviewer"}, person_id=alice,
                                       tenant_id="dmv")
    who = service.accounts.authenticate(secret)
    assert who.principal == f"person:{alice}" and who.roles == {"reviewer"} and who.tenant_id == "dmv"
    # An administrator of one tenant cannot create people in another.
    admin = replace(LOCAL_ADMIN, tenant_id="bank", principal="person:x")
    with pytest.raises(Exception, match="another tenant"):
        service.accounts.create_person(admin, name="Mallory", person_roles={"operator"}, tenant_id="dmv")
    assert client.get("/v1/purposes", headers={"Authorization": f"Bearer {secret}"}).json()["purposes"]


def test_one_administrator_cannot_mint_the_second_person_a_rule_needs(api: Api) -> None:
    c = api.client
    r = c.post("/v1/persons", json={"name": "Puppet", "roles": ["admin"]}, headers=api.keys["admin"])
    assert r.status_code == 202  # a deciding role needs a second administrator
    pending = r.json()["pending_action"]
    assert c.post(f"/v1/approvals/{pending}/approve", headers=api.keys["admin"]).status_code == 403
    ok = c.post(f"/v1/approvals/{pending}/approve", headers=api.keys["admin2"])
    assert ok.status_code == 200 and ok.json()["result"]["roles"] == ["admin"]
    # Roles that decide nothing need one administrator.
    assert c.post("/v1/persons", json={"name": "Clerk", "roles": ["operator"]}, headers=api.keys["admin"]) \
        .status_code == 201


def test_insider_limits_on_exports_and_erasures(api: Api, shared_faces: Path) -> None:
    svc = api.service
    svc.settings.person_export_limit_per_day = 2
    svc.settings.bulk_erase_dual_control_threshold = 2
    for person in ("obama", "biden", "kit_harington", "rose_leslie"):
        api.enrol(person, [_photo(shared_faces, person)])
    c = api.client
    codes = [c.get(f"/v1/subjects/{p}/export", headers=api.keys["operator"]).status_code
             for p in ("obama", "biden", "kit_harington")]
    assert codes == [200, 200, 429]
    # Erasing one by one does not get round the two-person rule for many erasures.
    codes = [c.delete(f"/v1/subjects/{p}", headers=api.keys["operator"]).status_code
             for p in ("obama", "biden", "kit_harington")]
    assert codes == [200, 200, 429]
    assert c.delete("/v1/subjects/kit_harington", headers=api.keys["operator"]).json()["error"]["code"] \
        == "dual_control_required"
    assert c.get("/v1/subjects", params={"limit": -1}, headers=api.keys["operator"]).status_code == 422


def test_device_keys_bound_to_a_purpose_and_expired_templates_never_match(api: Api, shared_faces: Path) -> None:
    svc = api.service
    api.enrol("obama", [_photo(shared_faces, "obama")], expires_at="2027-01-01T00:00:00Z")
    probe = (shared_faces / "people" / "test" / "obama1.jpg").read_bytes()
    _, terminal = svc.accounts.create_api_key(LOCAL_ADMIN, name="payment terminal", key_roles={"verifier"},
                                     purposes={"payment"})
    r = api.client.post("/v1/subjects/obama/verify", files={"image": ("p.jpg", probe)}, data={"purpose": "login"},
                        headers={"Authorization": f"Bearer {terminal}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "purpose_not_allowed_for_key"
    assert "login" not in api.verify("obama", probe, purpose="payment").json()["error"]["message"]  # no hint
    assert api.identify(probe).json()["faces"][0]["candidates"]  # the gallery is warm
    svc.clock = lambda: datetime(2027, 1, 2, tzinfo=UTC)  # past the consent term, before any retention run
    assert api.identify(probe).json()["faces"][0]["candidates"] == []
    assert api.verify("obama", probe).json()["error"]["code"] == "template_expired"


def test_subjects_cannot_erase_records_held_under_a_law_and_long_fields_are_4xx(api: Api,
                                                                                shared_faces: Path) -> None:
    svc = api.service
    admin = replace(LOCAL_ADMIN, tenant_id="default")
    from facewarden.governance import policy

    svc.governance.define_purpose(admin, policy.PurposeSpec("border", "Border control", frozenset({"law"}), 365, "travellers"))
    r = api.enrol("obama", [_photo(shared_faces, "obama")], purpose="border", legal_basis="law")
    me = {"Authorization": f"Bearer {r.json()['subject_credential']}"}
    r = api.client.delete("/v1/me", headers=me)
    assert r.status_code == 403 and r.json()["error"]["code"] == "erasure_needs_operator"
    assert api.client.get("/v1/me", headers=me).status_code == 200  # still there, and still theirs to read
    r = api.enrol("biden", [_photo(shared_faces, "biden")], purpose="x" * 65)
    assert r.status_code == 422
    r = api.verify("obama", b"x", purpose="p" * 500)
    assert r.status_code == 422
    assert api.client.get("/v1/keys", headers=_key(svc, "other-bank", "admin", "other admin")).status_code == 403
