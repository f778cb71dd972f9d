"""POST /v1/subjects/{subject}/photos over the real app: same person only, roles and tenants, enrolment's limits."""

from __future__ import annotations

from pathlib import Path

from facewarden.service import LOCAL_ADMIN
from tests.conftest import Api


def _photo(shared_faces: Path, person: str, i: int = 0) -> Path:
    return sorted((shared_faces / "people" / "train" / person).iterdir())[i]


def _add(api: Api, subject: str, photos: list[bytes], *, role: str = "operator",
         headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return api.client.post(f"/v1/subjects/{subject}/photos", files=[("images", ("p.jpg", b)) for b in photos],
                           headers=headers or api.keys[role])


def test_adding_a_photo_of_the_same_person_keeps_or_improves_verification(api: Api, shared_faces: Path) -> None:
    assert api.enrol("obama", [_photo(shared_faces, "obama", 0)]).status_code == 201
    probe = (shared_faces / "people" / "test" / "obama1.jpg").read_bytes()
    before = api.verify("obama", probe).json()
    r = _add(api, "obama", [_photo(shared_faces, "obama", 1).read_bytes()])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["templates_added"] == 1 and body["templates"] == 2 and body["purpose"] == "login"
    after = api.verify("obama", probe).json()
    assert after["match"] and after["distance"] <= before["distance"]
    listed = api.client.get("/v1/subjects", headers=api.keys["operator"]).json()
    assert [s["templates"] for s in listed if s["subject"] == "obama"] == [2]
    r = api.identify(probe)
    assert [c["subject"] for c in r.json()["faces"][0]["candidates"]] == ["obama"]
    spec = api.client.get("/openapi.json").json()["paths"]["/v1/subjects/{subject}/photos"]["post"]
    assert "PhotosAdded" in str(spec["responses"]["201"])


def test_someone_elses_face_is_refused_with_a_clear_error(api: Api, shared_faces: Path) -> None:
    assert api.enrol("obama", [_photo(shared_faces, "obama")]).status_code == 201
    r = _add(api, "obama", [_photo(shared_faces, "biden").read_bytes()])
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["code"] == "different_person" and "does not match the face enrolled as 'obama'" in error["message"]
    # An attacker gains nothing: Biden still does not verify as Obama.
    assert api.verify("obama", _photo(shared_faces, "biden", 1).read_bytes()).json()["match"] is False


def test_roles_tenants_erasure_and_enrolments_limits(api: Api, shared_faces: Path) -> None:
    assert api.enrol("obama", [_photo(shared_faces, "obama")]).status_code == 201
    more = [_photo(shared_faces, "obama", 1).read_bytes()]
    for role in ("verifier", "auditor"):
        r = _add(api, "obama", more, role=role)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    person = api.service.accounts.create_person(LOCAL_ADMIN, name="other op", person_roles={"operator"},
                                                tenant_id="other-bank")
    _, secret = api.service.accounts.create_api_key(LOCAL_ADMIN, name="o", key_roles={"operator"}, person_id=person,
                                                    tenant_id="other-bank")
    r = _add(api, "obama", more, headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert _add(api, "obama", []).status_code == 422  # no photo at all
    r = _add(api, "obama", more * (api.service.settings.max_images_per_enrolment + 1))
    assert r.status_code == 400 and r.json()["error"]["code"] == "image_count"
    r = _add(api, "obama", [b"not an image"])
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_image"
    r = _add(api, "obama", [(shared_faces / "people" / "misc" / "two_people.jpg").read_bytes()])
    assert r.status_code == 422 and r.json()["error"]["code"] == "multiple_faces"
    assert api.client.delete("/v1/subjects/obama", headers=api.keys["operator"]).status_code == 200
    r = _add(api, "obama", more)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
