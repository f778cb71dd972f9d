"""The capture page's API and the light challenge end to end: a purpose that asks for the light challenge issues
random colours with each session; the capture page reads its session and sends one clip with the session's own
capture token (no API key in a browser); a wrong token is refused and audited; a clip whose face reflects the
colours passes, the same clip without them fails for the light alone.

The reflections are simulated on a genuine segment (a pre-recorded clip cannot show a session's colours); the
browser drive of the page itself is tests/e2e/test_capture_page.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from facewarden.api import create_app
from facewarden.config import Settings
from facewarden.evaluation.attack_light import simulate_reflections
from facewarden.evaluation.attack_segments import CAPTURE_PAGE_BIT_RATE, SEGMENTS
from facewarden.evaluation.attacks import AttackSet
from facewarden.governance.policy import PurposeSpec
from facewarden.imaging.video import Frame
from facewarden.liveness import challenge as challenge_module
from facewarden.liveness import light as light_module
from facewarden.liveness.challenge import Challenge
from facewarden.liveness.landmarks import LandmarkDetector
from facewarden.liveness.light import LightChallenge, light_start_s
from facewarden.liveness.measures import measure_frames
from facewarden.service import LOCAL_ADMIN, EnrolRequest, FaceService, build_service
from facewarden.store import AuditEntry, LivenessSession
from facewarden.vision import FaceEngine
from tests.api.test_liveness_api import _jpeg
from tests.clips import encode_frames
from tests.conftest import make_settings

PURPOSE = "login"
LIGHT = LightChallenge(light_start_s(2), (("red", 0.3), ("cyan", 0.25), ("blue", 0.35), ("yellow", 0.2), ("green", 0.3),
                             ("magenta", 0.25), ("red", 0.35), ("blue", 0.2)))


@pytest.fixture
def live(tmp_path: Path, face_engine: FaceEngine) -> Iterator[FaceService]:
    svc = build_service(make_settings(tmp_path / "home", liveness_required_purposes=["login"]), create=True,
                        engine_factory=lambda: face_engine)
    spec = PurposeSpec(PURPOSE, "Signing in with one's face", frozenset({"consent", "contract"}), 365, "customers",
                       liveness_required=True, light_challenge=True)
    svc.governance.define_purpose(LOCAL_ADMIN, spec)
    yield svc
    svc.db.dispose()


def _at_15fps(frames: list[Frame]) -> list[Frame]:
    return [Frame(f.rgb, k / 15) for k, f in enumerate(frames)]


def test_the_capture_page_api_runs_one_light_challenge_session(live: FaceService, shared_faces: Path,
                                                               face_engine: FaceEngine,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    attacks = AttackSet(shared_faces, face_engine, LandmarkDetector())
    seg = next(s for s in SEGMENTS if s.video == "d6" and s.t0 == 4.0)  # a left turn, then a blink
    challenge = Challenge(seg.actions)  # the API enrols from a photo: the attack set's enrolment is not needed
    live.matching.enrol(LOCAL_ADMIN, EnrolRequest("customer", [_jpeg(attacks.photo_frame("d6", 1)[1])], PURPOSE,
                                                  "contract"))
    _, secret = live.accounts.create_api_key(LOCAL_ADMIN, name="kiosk", key_roles={"verifier"}, purposes={PURPOSE})
    client = TestClient(create_app(live))
    monkeypatch.setattr(challenge_module, "new_challenge", lambda n_actions=None: challenge)
    monkeypatch.setattr(light_module, "new_light_challenge", lambda **_: LIGHT)

    def start() -> dict[str, Any]:
        r = client.post("/v1/liveness/sessions", json={"subject": "customer", "purpose": PURPOSE},
                        headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 201, r.text
        return r.json()

    issued = start()
    assert issued["light"] == LIGHT.to_json() and len(issued["light"]["flashes"]) == 8
    token = issued["capture_token"]
    assert issued["capture_url"] == f"/capture/#session={issued['session_id']}&token={token}"
    url = f"/v1/liveness/capture/{issued['session_id']}"

    # The page reads its challenge with the token; nothing else opens it.
    page = client.get(url, headers={"X-Capture-Token": token})
    assert page.status_code == 200, page.text
    assert page.json()["actions"] == [a.value for a in challenge.actions]
    # one prompt per action, asking for a clear movement (a turn just past the threshold is what noise refuses)
    assert page.json()["instructions"] == ["Turn your head well to your left, then back", "Blink slowly"]
    assert page.json()["light"] == LIGHT.to_json() and page.json()["needs_reference"] is False
    assert client.get(url).json()["error"]["code"] == "unauthorized"
    wrong = client.get(url, headers={"X-Capture-Token": "x" * 43})
    assert wrong.status_code == 404 and wrong.json()["error"]["code"] == "liveness_session_not_found"
    assert client.get(url, headers={"X-Capture-Token": secret}).status_code == 404  # an API key is not a token
    # ... and the token opens nothing but the capture calls
    assert client.post("/v1/liveness/sessions", json={"subject": "customer", "purpose": PURPOSE},
                       headers={"Authorization": f"Bearer {token}"}).status_code == 401

    # The clip, lit by the session's colours as the screen showed them, passes; through the page's route.
    # the person answers the actions (the segment's 3 s), then faces the screen while it flashes
    frames = attacks.clip("d6", seg.t0, seg.t0 + LIGHT.end_s + 0.4)
    landmarks = [m.landmarks for m in measure_frames(frames, attacks.detector)]
    lit = encode_frames(_at_15fps(simulate_reflections(frames, landmarks, LIGHT)), 15)
    r = client.post(url, files={"video": ("clip.mp4", lit)}, headers={"X-Capture-Token": token})
    with live.db.session(readonly=True) as s:
        first = s.get(LivenessSession, issued["session_id"])
        why = (first.reasons, json.loads(first.scores or "{}").get("challenge")) if first else None
    assert r.status_code == 200 and r.json()["passed"] is True, (r.text, why)
    again = client.post(url, files={"video": ("clip.mp4", lit)}, headers={"X-Capture-Token": token})
    assert again.status_code == 409 and again.json()["error"]["code"] == "liveness_session_used"
    reopened = client.get(url, headers={"X-Capture-Token": token})  # the page reloaded: the same answer
    assert reopened.status_code == 409 and reopened.json()["error"]["code"] == "liveness_session_used"

    # The same person's next clip (the same actions, ten seconds on) without the reflections: refused, for the
    # light alone.
    second = start()
    unlit = encode_frames(_at_15fps(attacks.clip("d6", 14.0, 14.0 + LIGHT.end_s + 0.4)), 15)
    r = client.post(f"/v1/liveness/capture/{second['session_id']}", files={"video": ("clip.mp4", unlit)},
                    headers={"X-Capture-Token": second["capture_token"]})
    assert r.status_code == 200 and r.json()["passed"] is False
    with live.db.session(readonly=True) as s:
        row = s.get(LivenessSession, second["session_id"])
        assert row is not None and row.reasons == "light_not_followed", row.reasons
        assert json.loads(row.scores or "{}")["light"]["face"] < 0.7
        entries = s.scalars(select(AuditEntry).where(AuditEntry.operation.in_(
            ("liveness_check", "liveness_capture_open")))).all()
    assert any(e.outcome == "capture_token_invalid" for e in entries)  # the wrong token was recorded
    decided = [json.loads(e.details) for e in entries if e.operation == "liveness_check"
               and e.outcome in ("passed", "failed")]
    assert [d.get("via") for d in decided] == ["capture_page", "capture_page"]
    assert all(token not in e.details and secret not in e.details for e in entries)


def test_the_capture_page_is_served_with_a_strict_policy(live: FaceService) -> None:
    client = TestClient(create_app(live))
    page = client.get("/capture/")
    assert page.status_code == 200 and "<script src=\"/capture/capture.js\"" in page.text
    assert "<script>" not in page.text and " style=" not in page.text  # nothing inline: the policy forbids it
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy and "frame-ancestors 'none'" in policy
    assert page.headers["permissions-policy"].startswith("camera=(self)")
    script = client.get("/capture/capture.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "X-Capture-Token" in script.text and "location.hash" in script.text
    # the page records at the bit rate the field bench simulates (through_capture_page), not the browser's own
    assert f"const CLIP_BITS_PER_SECOND = {CAPTURE_PAGE_BIT_RATE};" in script.text
    assert "videoBitsPerSecond: CLIP_BITS_PER_SECOND" in script.text


def test_purposes_that_need_liveness_flash_the_light_by_default(tmp_path: Path, face_engine: FaceEngine) -> None:
    """Secure by default: the purposes seeded as needing liveness also ask for the light challenge (an
    AI-generated or replayed clip cannot show a session's reflections), and so does a new purpose that needs
    liveness unless its administrator turns the light off; a purpose without liveness has no light."""
    defaults = Settings()
    svc = build_service(make_settings(tmp_path / "home", liveness_required_purposes=defaults.liveness_required_purposes,
                                      light_challenge_purposes=defaults.light_challenge_purposes),
                        create=True, engine_factory=lambda: face_engine)
    try:
        seeded = {p["name"]: (p["liveness_required"], p["light_challenge"])
                  for p in svc.governance.list_purposes(LOCAL_ADMIN)}
        assert seeded == {"login": (True, True), "payment": (True, True), "device-unlock": (False, False)}
        person = svc.accounts.create_person(LOCAL_ADMIN, name="Administrator", person_roles={"admin"})
        _, admin = svc.accounts.create_api_key(LOCAL_ADMIN, name="admin", key_roles={"admin"}, person_id=person)
        client = TestClient(create_app(svc))
        body = {"description": "Boarding", "legal_bases": ["consent"], "retention_days": 30,
                "subject_category": "travellers"}
        for name, extra, light in (("boarding", {"liveness_required": True}, True),
                                   ("kiosk", {"liveness_required": True, "light_challenge": False}, False),
                                   ("badge", {}, False)):
            r = client.put(f"/v1/purposes/{name}", json={**body, **extra}, headers={"Authorization": f"Bearer {admin}"})
            assert r.status_code in (200, 201), r.text
            defined = client.get("/v1/purposes", headers={"Authorization": f"Bearer {admin}"}).json()["purposes"]
            assert next(p for p in defined if p["name"] == name)["light_challenge"] is light, name
        _, gate = svc.accounts.create_api_key(LOCAL_ADMIN, name="gate", key_roles={"verifier"},
                                              purposes={"boarding"})
        r = client.post("/v1/liveness/sessions", json={"purpose": "boarding"},
                        headers={"Authorization": f"Bearer {gate}"})
        assert r.status_code == 201 and len(r.json()["light"]["flashes"]) == 8, r.text
    finally:
        svc.db.dispose()
