"""The secure core through the HTTP API, on SQLite and on PostgreSQL, with real faces."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from sqlalchemy import select, update

from facewarden.service import LOCAL_ADMIN
from facewarden.store import Subject, Template
from tests.conftest import Api


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=92)
    return buf.getvalue()


def test_identify_every_test_face_including_group_photos(enrolled_api: Api, shared_faces: Path) -> None:
    expected = {
        "alex_lacamoire1.jpg": {"alex_lacamoire"},
        "johnsnow_test1.jpg": {"kit_harington"},
        "obama1.jpg": {"obama"},
        "kit_with_rose.jpg": {"kit_harington", "rose_leslie"},
        "obama_and_biden.jpg": {"obama", "biden"},
    }
    for name, people in expected.items():
        r = enrolled_api.identify((shared_faces / "people" / "test" / name).read_bytes(), all_faces=True)
        assert r.status_code == 200, r.text
        top = {f["candidates"][0]["subject"] for f in r.json()["faces"] if f["candidates"]}
        assert top == people, (name, top)
        # Ranked nearest first, all within the operating threshold.
        for face in r.json()["faces"]:
            d = [c["distance"] for c in face["candidates"]]
            assert d == sorted(d) and all(x <= r.json()["threshold"] for x in d)


def test_obama_verifies_as_obama_not_as_biden(enrolled_api: Api, shared_faces: Path) -> None:
    probe = (shared_faces / "people" / "test" / "obama1.jpg").read_bytes()
    ok = enrolled_api.verify("obama", probe)
    assert ok.status_code == 200 and ok.json()["match"] is True
    assert ok.json()["distance"] <= ok.json()["threshold"]
    no = enrolled_api.verify("biden", probe)
    assert no.status_code == 200 and no.json()["match"] is False
    assert no.json()["attempts_left"] == 4


def test_verifier_role_gets_the_decision_without_a_score(enrolled_api: Api, shared_faces: Path) -> None:
    r = enrolled_api.verify("obama", (shared_faces / "people" / "test" / "obama1.jpg").read_bytes(), role="verifier")
    assert r.status_code == 200
    assert r.json()["match"] is True and "distance" not in r.json()
    # A device key cannot search the gallery or enrol.
    assert enrolled_api.identify(b"x", role="verifier").status_code == 403
    photo = [shared_faces / "people" / "test" / "obama1.jpg"]
    assert enrolled_api.enrol("x", photo, role="verifier").status_code == 403


def test_unknown_face_identifies_as_nobody(enrolled_api: Api, shared_faces: Path) -> None:
    r = enrolled_api.identify((shared_faces / "yale" / "subject02.normal").read_bytes())
    assert r.status_code == 200 and r.json()["faces"][0]["candidates"] == []


def test_lockout_after_five_impostor_attempts_until_passcode(api: Api, shared_faces: Path) -> None:
    train = shared_faces / "people" / "train"
    assert api.enrol("obama", sorted((train / "obama").iterdir()), passcode="correct-horse").status_code == 201
    genuine = (shared_faces / "people" / "test" / "obama1.jpg").read_bytes()
    impostor = (train / "biden" / "biden.jpg").read_bytes()
    for left in (4, 3, 2, 1):
        r = api.verify("obama", impostor)
        assert r.json()["match"] is False and r.json()["attempts_left"] == left
    r = api.verify("obama", impostor)
    assert r.json() == {**r.json(), "match": False, "locked": True, "attempts_left": 0}
    refused = api.verify("obama", genuine)
    assert refused.status_code == 423 and refused.json()["error"]["code"] == "verification_locked"
    wrong = api.client.post("/v1/subjects/obama/unlock", json={"passcode": "wrong-pass"}, headers=api.keys["verifier"])
    assert wrong.status_code == 401
    assert api.verify("obama", genuine).status_code == 423
    ok = api.client.post("/v1/subjects/obama/unlock", json={"passcode": "correct-horse"}, headers=api.keys["verifier"])
    assert ok.status_code == 200
    r = api.verify("obama", genuine)
    assert r.status_code == 200 and r.json()["match"] is True and r.json()["attempts_left"] == 5


def test_a_success_resets_the_failure_count(api: Api, shared_faces: Path) -> None:
    train = shared_faces / "people" / "train"
    api.enrol("obama", sorted((train / "obama").iterdir()))
    impostor = (train / "biden" / "biden.jpg").read_bytes()
    for _ in range(4):
        api.verify("obama", impostor)
    assert api.verify("obama", (shared_faces / "people" / "test" / "obama1.jpg").read_bytes()).json()["match"]
    assert api.verify("obama", impostor).json()["attempts_left"] == 4


def test_export_then_erase_destroys_the_data_key(enrolled_api: Api, shared_faces: Path) -> None:
    h = enrolled_api.keys["operator"]
    exported = enrolled_api.client.get("/v1/subjects/obama/export", headers=h).json()
    assert exported["subject"] == "obama" and exported["purpose"] == "login"
    assert exported["consent"]["method"] == "signed form" and exported["raw_images_kept"] is False
    assert len(exported["templates"]) == 2 and len(exported["templates"][0]["embedding"]) == 128
    assert exported["templates"][0]["model"].startswith("dlib_resnet_v1_128d@dlib-")
    key_id = f"default/{exported['subject_id']}"
    assert enrolled_api.service.keyring.store.get(key_id)
    r = enrolled_api.client.delete("/v1/subjects/obama", headers=h)
    assert r.status_code == 200 and r.json()["data_key_destroyed"] is True
    assert enrolled_api.client.get("/v1/subjects/obama/export", headers=h).status_code == 404
    assert enrolled_api.service.keyring.versions_in_use() == {1: 4}
    probe = (shared_faces / "people" / "test" / "obama1.jpg").read_bytes()
    faces = enrolled_api.identify(probe).json()["faces"]
    assert all(c["subject"] != "obama" for c in faces[0]["candidates"])
    # Listing subjects never returns face data.
    listing = enrolled_api.client.get("/v1/subjects", headers=h).json()
    assert {s["subject"] for s in listing} == {"alex_lacamoire", "biden", "kit_harington", "rose_leslie"}
    assert "embedding" not in str(listing)


def test_flipped_ciphertext_byte_is_refused(enrolled_api: Api, shared_faces: Path) -> None:
    svc = enrolled_api.service
    with svc.db.session() as s:
        sid = s.scalar(select(Subject.id).where(Subject.external_id == "obama"))
        for t in s.scalars(select(Template).where(Template.subject_id == sid)):
            blob = bytearray(t.ciphertext)
            blob[20] ^= 0x01
            s.execute(update(Template).where(Template.id == t.id).values(ciphertext=bytes(blob)))
    r = enrolled_api.verify("obama", (shared_faces / "people" / "test" / "obama1.jpg").read_bytes())
    assert r.status_code == 409 and r.json()["error"]["code"] == "template_integrity"
    # The gallery leaves the tampered subject out instead of matching it.
    assert svc.matching.refresh_gallery(force=True) == 1


def test_ciphertext_moved_to_another_subject_is_refused(enrolled_api: Api, shared_faces: Path) -> None:
    svc = enrolled_api.service
    with svc.db.session() as s:
        ids = dict(s.execute(select(Subject.external_id, Subject.id)).all())
        obama_blob = s.scalars(select(Template.ciphertext).where(Template.subject_id == ids["obama"])).first()
        s.execute(update(Template).where(Template.subject_id == ids["biden"]).values(ciphertext=obama_blob))
    r = enrolled_api.verify("biden", (shared_faces / "people" / "test" / "obama1.jpg").read_bytes())
    assert r.status_code == 409 and r.json()["error"]["code"] == "template_integrity"


def test_no_template_is_stored_in_the_clear(enrolled_api: Api) -> None:
    svc = enrolled_api.service
    exported = enrolled_api.client.get("/v1/subjects/biden/export", headers=enrolled_api.keys["operator"]).json()
    vec = np.array(exported["templates"][0]["embedding"], dtype=np.float64)
    needles = [vec.astype("<f4").tobytes()[:64], vec.astype("<f8").tobytes()[:64],
               vec.astype(">f4").tobytes()[:64], vec.astype(">f8").tobytes()[:64],
               # text forms: a few consecutive components as repr'd and as short decimals
               ", ".join(repr(float(np.float32(x))) for x in vec[:3]).encode(),
               ",".join(f"{x:.4f}" for x in vec[:3]).encode(),
               f"{float(np.float32(vec[5]))!r}".encode()]
    haystack = b""
    if svc.db.engine.dialect.name == "sqlite":
        svc.db.engine.dispose()
        for f in svc.settings.home.rglob("*"):
            if f.is_file():
                haystack += f.read_bytes()
    else:
        with svc.db.engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            for table in ("subjects", "templates", "api_keys", "tenants", "service_state"):
                buf = io.BytesIO()
                with raw.cursor().copy(f"COPY {table} TO STDOUT") as copy:  # type: ignore[union-attr]
                    for chunk in copy:
                        buf.write(bytes(chunk))
                haystack += buf.getvalue()
                with raw.cursor().copy(f"COPY {table} TO STDOUT (FORMAT binary)") as copy:  # type: ignore[union-attr]
                    for chunk in copy:
                        haystack += bytes(chunk)
        for f in svc.settings.home.rglob("*"):
            if f.is_file():
                haystack += f.read_bytes()
    assert len(haystack) > 10_000
    for needle in needles:
        assert needle not in haystack
    # The search can fail: the text needle is exactly how the export (JSON) writes the vector.
    import json

    assert needles[4] in json.dumps(exported).encode()


def test_bad_inputs_get_clear_4xx_and_the_service_keeps_serving(enrolled_api: Api, shared_faces: Path) -> None:
    obama = shared_faces / "people" / "train" / "obama" / "obama.jpg"
    raw = obama.read_bytes()
    gif = io.BytesIO()
    Image.open(obama).save(gif, "GIF")
    bmp = io.BytesIO()
    Image.open(obama).save(bmp, "BMP")
    bomb = io.BytesIO()
    Image.new("L", (8000, 6000)).save(bomb, "PNG")  # 48 Mpx of zeros: a few KB on the wire
    cases = {
        "empty_image": b"",
        "unsupported_image": b"%PDF-1.4 not an image at all",
        "corrupt_image": raw[: len(raw) // 3],
        "too_many_pixels": bomb.getvalue(),
        "no_face": _jpeg(Image.new("RGB", (400, 300), (120, 130, 140))),
        "multiple_faces": (shared_faces / "people" / "test" / "obama_and_biden.jpg").read_bytes(),
        "face_blurred": _jpeg(Image.open(obama).filter(ImageFilter.GaussianBlur(6))),
    }
    for code, data in cases.items():
        r = enrolled_api.verify("obama", data)
        assert 400 <= r.status_code < 500, (code, r.status_code)
        assert r.json()["error"]["code"] == code, (code, r.json())
        assert len(r.json()["error"]["message"]) > 20
    assert enrolled_api.verify("obama", bmp.getvalue()).json()["error"]["code"] == "unsupported_image"
    # GIF is on the allow-list and still matches.
    assert enrolled_api.verify("obama", gif.getvalue()).json()["match"] is True
    # Bad photos are input errors, not failed attempts: the subject is not one step closer to lockout.
    assert enrolled_api.verify("obama", raw).json()["attempts_left"] == 5
    r = enrolled_api.verify("nobody", raw)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_face_too_small_for_the_configured_minimum(api: Api, shared_faces: Path) -> None:
    before, api.service.embedder.min_face_px = api.service.embedder.min_face_px, 150
    try:
        r = api.enrol("kit", [shared_faces / "people" / "train" / "kit_harington" / "john1.jpeg"])  # ~130 px face
        assert r.status_code == 422 and r.json()["error"]["code"] == "face_too_small"
    finally:
        api.service.embedder.min_face_px = before


def test_enrolment_needs_purpose_legal_basis_and_consent_details(api: Api, shared_faces: Path) -> None:
    photo = [shared_faces / "people" / "train" / "obama" / "obama.jpg"]
    r = api.enrol("obama", photo, legal_basis="whim")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_legal_basis"
    r = api.enrol("obama", photo, consent_method="")
    assert r.status_code == 400 and r.json()["error"]["code"] == "consent_missing"
    assert api.enrol("obama", photo, legal_basis="contract").status_code == 201
    assert api.enrol("obama", photo).status_code == 409


def test_authentication_rate_and_size_limits(api: Api, shared_faces: Path) -> None:
    assert api.client.get("/v1/subjects").status_code == 401
    assert api.client.get("/v1/subjects", headers={"Authorization": "Bearer fw_bogus"}).status_code == 401
    r = api.client.post("/v1/identify", content=b"x" * (api.service.settings.max_request_bytes + 1),
                        headers={**api.keys["operator"], "content-type": "application/octet-stream"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    # A revoked key stops working at once.
    key_id, secret = api.service.accounts.create_api_key(LOCAL_ADMIN, name="t", key_roles={"operator"})
    assert api.client.get("/v1/subjects", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert api.client.delete(f"/v1/api-keys/{key_id}", headers=api.keys["admin"]).status_code == 200
    assert api.client.get("/v1/subjects", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_rate_limit_per_api_key(api: Api) -> None:
    from fastapi.testclient import TestClient

    from facewarden.api import create_app

    api.service.settings.rate_limit_per_minute = 8
    client = TestClient(create_app(api.service))
    codes = [client.get("/v1/subjects", headers=api.keys["operator"]).status_code for _ in range(5)]
    assert codes[:2] == [200, 200] and codes[-1] == 429
    r = client.get("/v1/subjects", headers=api.keys["operator"])
    assert r.json()["error"]["code"] == "rate_limited"


def test_key_rotation_rewraps_data_keys_and_retires_the_old_version(enrolled_api: Api, shared_faces: Path) -> None:
    svc = enrolled_api.service
    with svc.db.session() as s:
        before = dict(s.execute(select(Template.id, Template.ciphertext)).all())
    # Dual control: one administrator proposes, another approves; the proposer cannot approve alone.
    r = enrolled_api.client.post("/v1/keys/rotate", json={"retire_old": True}, headers=enrolled_api.keys["admin"])
    assert r.status_code == 202, r.text
    approve = f"/v1/approvals/{r.json()['pending_action']}/approve"
    assert svc.keyring.kek.versions() == [1]  # nothing happened yet
    same = enrolled_api.client.post(approve, headers=enrolled_api.keys["admin"])
    assert same.status_code == 403 and same.json()["error"]["code"] == "same_person"
    r = enrolled_api.client.post(approve, headers=enrolled_api.keys["admin2"])
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    assert result["current_version"] == 2 and result["rewrapped"] == 5 and result["retired"] == [1]
    assert svc.keyring.versions_in_use() == {2: 5} and svc.keyring.kek.versions() == [2]
    with svc.db.session() as s:
        assert dict(s.execute(select(Template.id, Template.ciphertext)).all()) == before  # not re-encrypted
    probe = (shared_faces / "people" / "test" / "obama1.jpg").read_bytes()
    assert enrolled_api.verify("obama", probe).json()["match"]
    # Operators cannot rotate keys.
    assert enrolled_api.client.post("/v1/keys/rotate", json={}, headers=enrolled_api.keys["operator"]).status_code == 403


def test_openapi_docs_are_served(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    assert "/v1/subjects/{subject}/verify" in spec["paths"] and "/v1/identify" in spec["paths"]
    assert api.client.get("/docs").status_code == 200


def test_passcode_guessing_locks_until_an_administrator_resets_it(api: Api, shared_faces: Path) -> None:
    api.enrol("obama", [shared_faces / "people" / "train" / "obama" / "obama.jpg"], passcode="correct-horse")
    unlock = "/v1/subjects/obama/unlock"
    for _ in range(10):
        r = api.client.post(unlock, json={"passcode": "guess-000"}, headers=api.keys["verifier"])
        assert r.status_code == 401
    r = api.client.post(unlock, json={"passcode": "correct-horse"}, headers=api.keys["verifier"])
    assert r.status_code == 423 and r.json()["error"]["code"] == "passcode_locked"
    assert api.client.put("/v1/subjects/obama/passcode", json={"passcode": "new-pass-1"},
                          headers=api.keys["operator"]).status_code == 403
    assert api.client.put("/v1/subjects/obama/passcode", json={"passcode": "new-pass-1"},
                          headers=api.keys["admin"]).status_code == 200
    assert api.client.post(unlock, json={"passcode": "new-pass-1"}, headers=api.keys["verifier"]).status_code == 200
