"""Several faces in one photo (issue 12, item 3): a probe or an enrolment photo uses its main face (clearly the
largest, or the one the photo is framed on) and says which; an ambiguous photo is refused with how to fix it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from facewarden.audit.log import AuditQuery
from facewarden.service import LOCAL_ADMIN, EnrolRequest, FaceService
from facewarden.vision import FaceEngine, FaceQualityError
from facewarden.vision.selection import allows_dominant, main_face_index
from tests.conftest import Api


def _enrol(service: FaceService, name: str, photos: list[Path]) -> dict[str, Any]:
    return service.matching.enrol(LOCAL_ADMIN, EnrolRequest(
        external_id=name, images=[p.read_bytes() for p in photos], purpose="login", legal_basis="consent",
        consent_given_at=datetime(2026, 11, 1, tzinfo=UTC), consent_method="signed form"))


def _box(cx: int, cy: int, side: int) -> tuple[int, int, int, int]:
    return (cx - side // 2, cy - side // 2, cx + side // 2 - 1, cy + side // 2 - 1)


def test_the_rule_and_the_purposes() -> None:
    w = h = 250
    assert main_face_index([_box(40, 40, 90)], w, h) == 0  # the only face, wherever it is
    assert main_face_index([_box(30, 30, 40), _box(200, 60, 108)], w, h) == 1  # 7x larger: the background face
    # Same size side by side, the centre between them (a couple, a handshake): ambiguous.
    with pytest.raises(FaceQualityError) as exc:
        main_face_index([_box(70, 125, 100), _box(180, 125, 100)], w, h)
    assert exc.value.code == "multiple_faces" and "crop" in exc.value.message and "centre" in exc.value.message
    # Same size, but the photo is framed on one of them: that one.
    assert main_face_index([_box(40, 60, 100), _box(125, 125, 100)], w, h) == 1
    # Framed but clearly smaller than an off-centre face (1.8x): neither fact singles one out.
    with pytest.raises(FaceQualityError):
        main_face_index([_box(50, 100, 134), _box(125, 125, 100)], w, h)
    # The centre at the edge of a box is not framing: it must lie in the middle half of the box.
    with pytest.raises(FaceQualityError):
        main_face_index([_box(80, 125, 100), _box(200, 125, 100)], w, h)
    assert allows_dominant("login", ["*"]) and not allows_dominant("law-enforcement", ["*"])
    assert allows_dominant("law-enforcement", ["law-enforcement"]) and not allows_dominant("login", [])


def test_a_dominant_face_verifies_and_two_similar_faces_are_refused(service: FaceService, shared_faces: Path,
                                                                    face_engine: FaceEngine) -> None:
    lfw = shared_faces / "lfw" / "Li_Zhaoxing"
    probe = lfw / "7.jpg"  # a press photo: the minister in front, another man small at the edge (2.9x smaller)
    rgb = np.asarray(Image.open(probe).convert("RGB"))
    with pytest.raises(FaceQualityError) as strict:
        face_engine.single_face(rgb)  # where exactly one face is required
    assert strict.value.code == "multiple_faces" and "wrong face" in strict.value.message
    _enrol(service, "li", [lfw / "1.jpg", lfw / "2.jpg"])
    result = service.matching.verify(LOCAL_ADMIN, "li", probe.read_bytes(), purpose="login")
    assert result.match and result.box is not None
    left, top, right, bottom = result.box  # the central face, not the one at the edge
    assert abs((left + right) / 2 - rgb.shape[1] / 2) < 30 and abs((top + bottom) / 2 - rgb.shape[0] / 2) < 30
    api = Api(service)  # the API says which face was used, to devices too (a box in their own photo is not news)
    for role in ("operator", "verifier"):
        answer = api.verify("li", probe.read_bytes(), role=role)
        assert answer.status_code == 200 and answer.json()["face_box"] == list(result.box), answer.text

    # Obama and Biden side by side: neither dominates nor is framed, so the photo is refused, with how to fix it.
    _enrol(service, "obama", [shared_faces / "people" / "train" / "obama" / "obama.jpg"])
    pair = (shared_faces / "people" / "test" / "obama_and_biden.jpg").read_bytes()
    with pytest.raises(FaceQualityError) as ambiguous:
        service.matching.verify(LOCAL_ADMIN, "obama", pair, purpose="login")
    assert ambiguous.value.code == "multiple_faces"
    assert "none is clearly the main one" in ambiguous.value.message and "crop it" in ambiguous.value.message
    with pytest.raises(FaceQualityError) as enrol:  # enrolment refuses it the same way
        _enrol(service, "obama-biden", [shared_faces / "people" / "test" / "obama_and_biden.jpg"])
    assert enrol.value.code == "multiple_faces" and "wrong pick" in enrol.value.message


def test_enrolment_takes_the_main_face_and_says_which(service: FaceService, shared_faces: Path) -> None:
    lfw = shared_faces / "lfw"
    # Clearly the largest: the minister, not the man at the edge.
    li = _enrol(service, "li", [lfw / "Li_Zhaoxing" / "7.jpg"])
    assert li["faces_in_photo"] == [3] and len(li["face_boxes"]) == 1
    assert service.matching.verify(LOCAL_ADMIN, "li", (lfw / "Li_Zhaoxing" / "1.jpg").read_bytes(),
                                   purpose="login").match
    # Two faces of the same size (1.00x): the photo is framed on Hugh Grant, so his face is taken; a template of
    # the other man would not match his other photos (0.86 away).
    hugh = _enrol(service, "hugh", [lfw / "Hugh_Grant" / "8.jpg"])
    assert hugh["faces_in_photo"] == [2]
    left, top, right, bottom = hugh["face_boxes"][0]
    assert left <= 125 <= right and top <= 125 <= bottom
    results = [service.matching.verify(LOCAL_ADMIN, "hugh", (lfw / "Hugh_Grant" / other).read_bytes(),
                                       purpose="login") for other in ("1.jpg", "2.jpg", "3.jpg")]
    assert all(r.distance is not None and r.distance < 0.6 for r in results) and sum(r.match for r in results) >= 2
    entries = [e for e in service.audit.query(AuditQuery(operation="enrol", limit=100)) if e["outcome"] == "enrolled"]
    assert [json.loads(e["details"])["other_faces_ignored"] for e in entries[-2:]] == [2, 1]
    # Through the API the operator sees the same.
    answer = Api(service).enrol("li-api", [lfw / "Li_Zhaoxing" / "7.jpg"])
    assert answer.status_code == 201 and answer.json()["faces_in_photo"] == [3], answer.text
    assert answer.json()["face_boxes"] == li["face_boxes"]


def test_the_settings_turn_it_off(service: FaceService, shared_faces: Path) -> None:
    lfw = shared_faces / "lfw" / "Li_Zhaoxing"
    _enrol(service, "li", [lfw / "1.jpg"])
    service.settings.dominant_face_purposes = []
    with pytest.raises(FaceQualityError) as exc:
        service.matching.verify(LOCAL_ADMIN, "li", (lfw / "7.jpg").read_bytes(), purpose="login")
    assert exc.value.code == "multiple_faces"
    service.settings.enrol_main_face = False
    with pytest.raises(FaceQualityError) as strict:
        _enrol(service, "li2", [lfw / "7.jpg"])
    assert strict.value.code == "multiple_faces" and "exactly one is required" in strict.value.message
