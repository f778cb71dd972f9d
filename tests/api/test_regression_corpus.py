"""The inputs that crashed the service in issue 10, kept as regression tests through the HTTP API, on SQLite and
PostgreSQL: very wide and tall photos in every accepted format, a portrait clip, a clip of an unidentifiable codec,
NUL characters in text fields and in the URL, path-like and case or spacing variants of subject references."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import update

from facewarden.governance.identifiers import reference_key
from facewarden.imaging.decode import ALLOWED_FORMATS
from facewarden.imaging.video import decode_video
from facewarden.liveness import challenge as challenge_module
from facewarden.liveness.challenge import Action, Challenge
from facewarden.service import LOCAL_ADMIN, EnrolRequest
from facewarden.store import Subject
from tests.clips import strip, transcode, unknown_codec
from tests.conftest import Api

STRIPS = [(1, 4000), (4000, 1), (3, 2500), (2500, 3), (31, 1200)]  # width x height


@pytest.fixture
def obama(api: Api, shared_faces: Path) -> Api:
    r = api.enrol("obama", [shared_faces / "people" / "train" / "obama" / "obama.jpg"])
    assert r.status_code == 201, r.text
    return api


@pytest.mark.parametrize("fmt", sorted(ALLOWED_FORMATS))
def test_very_wide_or_tall_photos_are_refused_with_a_clear_422(obama: Api, fmt: str) -> None:
    for size in STRIPS:
        photo = strip(fmt, size)
        answers = [obama.client.post("/v1/subjects", data={"subject": "strip", "purpose": "login",
                                                           "legal_basis": "contract"},
                                     files=[("images", ("s.img", photo))], headers=obama.keys["operator"]),
                   obama.verify("obama", photo), obama.identify(photo), obama.identify(photo, all_faces=True),
                   obama.client.post("/v1/subjects/obama/photos", files=[("images", ("s.img", photo))],
                                     headers=obama.keys["operator"])]
        for r in answers:
            assert r.status_code == 422, (fmt, size, r.status_code, r.text)
            error = r.json()["error"]
            assert error["code"] == "image_too_small" and "px" in error["message"], (fmt, size, error)


NUL = "bad\x00text"


def test_nul_characters_in_text_fields_and_urls_are_refused_on_both_backends(obama: Api, shared_faces: Path) -> None:
    op, admin, auditor = obama.keys["operator"], obama.keys["admin"], obama.keys["auditor"]
    photo = (shared_faces / "people" / "train" / "obama" / "obama2.jpg").read_bytes()
    c = obama.client
    answers = {
        "enrol subject": obama.enrol(NUL, [shared_faces / "people" / "train" / "biden" / "biden.jpg"]),
        "enrol display_name": obama.enrol("biden", [shared_faces / "people" / "train" / "biden" / "biden.jpg"],
                                          display_name=NUL),
        "enrol consent_method": obama.enrol("biden", [shared_faces / "people" / "train" / "biden" / "biden.jpg"],
                                            consent_method=NUL),
        "verify path": c.post("/v1/subjects/ob%00ama/verify", files={"image": ("p.jpg", photo)},
                              data={"purpose": "login"}, headers=op),
        "verify purpose": c.post("/v1/subjects/obama/verify", files={"image": ("p.jpg", photo)},
                                 data={"purpose": NUL}, headers=op),
        "identify purpose": c.post("/v1/identify", files={"image": ("p.jpg", photo)}, data={"purpose": NUL},
                                   headers=op),
        "export path": c.get("/v1/subjects/%00/export", headers=op),
        "erase path": c.delete("/v1/subjects/obama%00", headers=op),
        "withdraw path": c.post("/v1/subjects/%00obama/withdraw-consent", headers=op),
        "erase batch": c.post("/v1/subjects/erase-batch", json={"subjects": [NUL]}, headers=op),
        "passcode": c.put("/v1/subjects/obama/passcode", json={"passcode": "123456\x00"}, headers=op),
        "api key name": c.post("/v1/api-keys", json={"name": NUL, "roles": ["operator"]}, headers=admin),
        "person proposed": c.post("/v1/persons", json={"name": NUL, "roles": ["admin"]}, headers=admin),
        "purpose path": c.put("/v1/purposes/a%00b", json={"description": "x", "legal_bases": ["consent"]},
                              headers=admin),
        "audit query": c.get("/v1/audit/entries?operation=enrol%00", headers=auditor),
        "audit subject": c.get("/v1/audit/entries", params={"subject": NUL}, headers=auditor),
        "liveness path": c.post("/v1/liveness/sessions/%00", headers=op),
        "le request path": c.post("/v1/le/requests/%00/review", json={}, headers=admin),
    }
    for what, r in answers.items():
        assert r.status_code in (400, 403, 422), (what, r.status_code, r.text)
    for what in ("enrol display_name", "enrol consent_method", "verify path", "export path", "erase path",
                 "withdraw path", "audit query", "liveness path", "person proposed"):
        assert answers[what].json()["error"]["code"] == "nul_byte_in_text", (what, answers[what].text)
    assert obama.verify("obama", photo).json()["match"] is True  # nothing was changed on the way



def test_audit_periods_past_the_calendars_edge_are_refused_not_a_500(obama: Api) -> None:
    """Found by fuzzing a live server: moved to UTC, these dates fall outside years 1-9999."""
    auditor = obama.keys["auditor"]
    for path, params in (("/v1/audit/export", {"since": "9999-12-31T23:59:59-14:00"}),
                         ("/v1/audit/entries", {"until": "0001-01-01T00:00:00+14:00"})):
        r = obama.client.get(path, params=params, headers=auditor)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_period", (path, r.text)

PATH_LIKE = ["/", ".", "..", "....//....//", "a/b", "a\\b", "\t", " ", "tab\there", "zero\u200bwidth", "x" * 201]


def test_path_like_or_invisible_subject_references_are_refused(api: Api, shared_faces: Path) -> None:
    for ref in PATH_LIKE:
        r = api.enrol(ref, [shared_faces / "people" / "train" / "biden" / "biden.jpg"])
        assert r.status_code in (400, 422), (ref, r.text)  # 422: over the form field's length, before the service
        assert r.json()["error"]["code"] in ("invalid_subject", "invalid_request"), r.text
    assert api.client.get("/v1/subjects", headers=api.keys["operator"]).json() == []


def test_case_and_spacing_variants_name_the_same_person(obama: Api, shared_faces: Path) -> None:
    for variant in (" obama", "OBAMA", "Obama ", "ｏｂａｍａ"):  # the last: full-width letters (NFKC)
        r = obama.enrol(variant, [shared_faces / "people" / "train" / "obama" / "obama2.jpg"])
        assert r.status_code == 409 and r.json()["error"]["code"] == "already_enrolled", (variant, r.text)
    probe = (shared_faces / "people" / "train" / "obama" / "obama2.jpg").read_bytes()
    assert obama.verify("OBAMA", probe).json()["match"] is True
    assert obama.verify("%20obama%20", probe).json()["match"] is True
    assert obama.client.get("/v1/subjects/Obama/export", headers=obama.keys["operator"]).json()["subject"] == "obama"
    r = obama.enrol("  Biden\u00a0", [shared_faces / "people" / "train" / "biden" / "biden.jpg"])
    assert r.status_code == 201 and r.json()["subject"] == "Biden", r.text  # stored canonical: NFKC, stripped
    assert [s["subject"] for s in obama.client.get("/v1/subjects", headers=obama.keys["operator"]).json()] == [
        "obama", "Biden"]
    r = obama.client.delete("/v1/subjects/BIDEN", headers=obama.keys["operator"])
    assert r.status_code == 200 and r.json()["subject"] == "Biden", r.text


def test_records_stored_before_the_rules_stay_reachable(obama: Api) -> None:
    """Stored references are never rewritten (nothing about them is in the templates' encryption, but operators
    hold them): a record enrolled before the rules is found by its exact text, or by its key."""
    with obama.service.db.session() as s:
        # as migration 0006 left such a record: its stored text untouched, its comparison key filled in
        s.execute(update(Subject).where(Subject.external_id == "obama").values(
            external_id=" Legacy/.. ", reference_key=reference_key(" Legacy/.. ")))
    r = obama.client.post("/v1/subjects/erase-batch", json={"subjects": ["legacy/.."]},
                          headers=obama.keys["operator"])  # a key variant of the stored text
    assert r.status_code in (200, 202), r.text
    assert r.json() == {"erased": 1, "not_found": []}, r.text


def test_liveness_clips_that_crashed_are_decided_or_refused(api: Api, shared_faces: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A portrait clip (404x720: FFmpeg pads its rows, and dlib refused the strided frames) is decided; a clip
    whose codec FFmpeg cannot identify is a 415; frames too thin to hold a face are a 422."""
    portrait = transcode(shared_faces / "video" / "d0.mp4", size=(404, 720), seconds=3.0)
    first = decode_video(portrait)[5].rgb
    buf = io.BytesIO()
    Image.fromarray(first).save(buf, format="JPEG", quality=95)
    api.service.matching.enrol(LOCAL_ADMIN, EnrolRequest("d0-person", [buf.getvalue()], "login", "contract"))
    monkeypatch.setattr(challenge_module, "new_challenge", lambda n_actions=None: Challenge((Action.BLINK,)))
    op = api.keys["operator"]

    def session() -> str:
        r = api.client.post("/v1/liveness/sessions", json={"subject": "d0-person", "purpose": "login"}, headers=op)
        assert r.status_code == 201, r.text
        return str(r.json()["session_id"])

    r = api.client.post(f"/v1/liveness/sessions/{session()}", files={"video": ("p.mp4", portrait)}, headers=op)
    assert r.status_code == 200 and r.json()["passed"] is True, r.text  # d0 0-3 s blinks at 2.6 s
    r = api.client.post(f"/v1/liveness/sessions/{session()}", files={"video": ("p.mp4", unknown_codec(portrait))},
                        headers=op)
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_video", r.text
    thin = strip("PNG", (3000, 40))
    r = api.client.post(f"/v1/liveness/sessions/{session()}", files=[("frames", ("a.png", thin)),
                                                                     ("frames", ("b.png", thin))],
                        data={"timestamps": "0,0.1"}, headers=op)
    assert r.status_code == 422 and r.json()["error"]["code"] == "video_too_small", r.text
