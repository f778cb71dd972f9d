"""The liveness capture page in a real browser (Debian's Chromium, driven by Playwright) with a fake camera that
plays a clip (`--use-file-for-fake-video-capture`), over HTTPS against the real app.

A genuine recording played as the camera answers the actions, but it cannot show this session's colours: the
test shows that the light check, and only it, refuses it. A still photo played as the camera is refused too.
Screenshots of the page (prompt and colour flash) are saved for the record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
import pytest
from playwright.sync_api import sync_playwright

from facewarden.evaluation.attacks import AttackSet
from facewarden.governance.policy import PurposeSpec
from facewarden.imaging.video import Frame
from facewarden.liveness import challenge as challenge_module
from facewarden.liveness.challenge import Action, Challenge
from facewarden.liveness.landmarks import LandmarkDetector
from facewarden.service import LOCAL_ADMIN, EnrolRequest, FaceService
from facewarden.store import LivenessSession
from facewarden.vision import FaceEngine
from tests.api.test_liveness_api import _jpeg
from tests.e2e.test_report_browser import CHROMIUM, server  # noqa: F401 - the HTTPS server fixture

PURPOSE = "login"


def write_y4m(frames: list[Frame], fps: int, path: Path) -> Path:
    """The raw YUV 4:2:0 stream Chromium's fake camera plays (looped)."""
    h, w = (d - d % 2 for d in frames[0].rgb.shape[:2])
    with av.open(str(path), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f.rgb[:h, :w].copy(), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def run_page(server_url: str, camera: Path, capture_url: str, shots: Path) -> tuple[str | None, str]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={camera}"])
        context = browser.new_context(ignore_https_errors=True)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        response = page.goto(server_url + capture_url)
        assert response is not None and response.status == 200
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.click("#start")
        # selectors only: the page's policy forbids eval, Playwright's string predicates included
        page.wait_for_selector("#prompt:not(:empty)", timeout=20_000)
        page.screenshot(path=str(shots / "prompt.png"))
        page.wait_for_selector("body[style*='background']", timeout=20_000)
        page.screenshot(path=str(shots / "flash.png"))
        page.wait_for_selector("body[data-result]", state="attached", timeout=90_000)
        page.screenshot(path=str(shots / "result.png"))
        result = page.get_attribute("body", "data-result")
        status = page.inner_text("#status")
        browser.close()
    assert not [e for e in errors if "favicon" not in e], errors
    assert result in ("passed", "failed"), status
    return result, status


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_capture_page_films_shows_the_colours_and_sends_the_clip(
        service: FaceService, server: str, shared_faces: Path, face_engine: FaceEngine, tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: run `make system-deps`.")
    attacks = AttackSet(shared_faces, face_engine, LandmarkDetector())
    service.governance.define_purpose(LOCAL_ADMIN, PurposeSpec(
        PURPOSE, "Signing in with one's face", frozenset({"consent", "contract"}), 365, "customers",
        liveness_required=True, light_challenge=True))
    service.matching.enrol(LOCAL_ADMIN, EnrolRequest("customer", [_jpeg(attacks.photo_frame("d6", 1)[1])],
                                                     PURPOSE, "contract"))
    _, secret = service.accounts.create_api_key(LOCAL_ADMIN, name="kiosk", key_roles={"verifier"},
                                                purposes={PURPOSE})
    monkeypatch.setattr(challenge_module, "new_challenge", lambda n_actions=None: Challenge((Action.TURN_LEFT,)))
    # d6 from 4.4 s: facing the camera, then a left turn at about 1.6 s (the segment table's d6 4.0-7.0 s)
    genuine = write_y4m(attacks.clip("d6", 4.4, 13.0), 15, tmp_path / "genuine.y4m")
    _, still = attacks.photo_frame("d6", 0)
    photo = write_y4m([Frame(still, k / 15) for k in range(15 * 9)], 15, tmp_path / "photo.y4m")

    import httpx

    outcomes: dict[str, Any] = {}
    for name, camera in (("genuine recording", genuine), ("still photo", photo)):
        r = httpx.post(f"{server}/v1/liveness/sessions", json={"subject": "customer", "purpose": PURPOSE},
                       headers={"Authorization": f"Bearer {secret}"}, verify=False)
        assert r.status_code == 201, r.text
        issued = r.json()
        shots = tmp_path / name.replace(" ", "_")
        shots.mkdir()
        outcomes[name] = run_page(server, camera, issued["capture_url"], shots)
        with service.db.session(readonly=True) as s:
            row = s.get(LivenessSession, issued["session_id"])
            assert row is not None
            outcomes[name] = (*outcomes[name], row.reasons or "", json.loads(row.scores or "{}"))
        assert all((shots / f"{n}.png").stat().st_size > 5_000 for n in ("prompt", "flash", "result"))
    result, status, reasons, scores = outcomes["genuine recording"]
    # the recording does everything asked of it but cannot show this session's colours: refused for the light
    assert result == "failed" and reasons == "light_not_followed", (reasons, scores.get("challenge"))
    # the page gives no reason (it would coach an attacker) but says what helps a genuine user with the colours
    assert "brightness up" in status and "sunlight" in status, status
    assert scores["light"]["face"] is None or scores["light"]["face"] < 0.7
    assert scores["timing"]["ok"] and scores["challenge"]["passed"]
    result, _, reasons, _ = outcomes["still photo"]
    assert result == "failed" and "light_not_followed" in reasons and "still_frames" in reasons, reasons
