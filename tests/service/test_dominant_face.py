"""Several faces in one probe (issue 12, item 3): a verification uses the dominant face (the largest by a clear
margin) and says which; two faces of similar size are refused as ambiguous; enrolment stays strict and says why."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facewarden.service import LOCAL_ADMIN, EnrolRequest, FaceService
from facewarden.vision import FaceEngine, FaceQualityError
from facewarden.vision.selection import allows_dominant, dominant_index
from tests.conftest import Api


def _enrol(service: FaceService, name: str, photos: list[Path]) -> None:
    service.matching.enrol(LOCAL_ADMIN, EnrolRequest(
        external_id=name, images=[p.read_bytes() for p in photos], purpose="login", legal_basis="consent",
        consent_given_at=datetime(2026, 11, 1, tzinfo=UTC), consent_method="signed form"))


def test_the_margin_and_the_purposes() -> None:
    assert dominant_index([9000.0]) == 0
    assert dominant_index([1665.0, 11772.0]) == 1  # 7x: the background face is ignored
    with pytest.raises(FaceQualityError) as exc:
        dominant_index([11772.0, 8190.0])  # 1.44x: one step of the detector's pyramid, not a clear margin
    assert exc.value.code == "multiple_faces" and "crop" in exc.value.message
    assert allows_dominant("login", ["*"]) and not allows_dominant("law-enforcement", ["*"])
    assert allows_dominant("law-enforcement", ["law-enforcement"]) and not allows_dominant("login", [])


def test_a_dominant_face_verifies_and_two_similar_faces_are_refused(service: FaceService, shared_faces: Path,
                                                                    face_engine: FaceEngine) -> None:
    lfw = shared_faces / "lfw" / "Li_Zhaoxing"
    probe = lfw / "7.jpg"  # a press photo: the minister in front, another man small at the edge (2.9x smaller)
    rgb = np.asarray(Image.open(probe).convert("RGB"))
    with pytest.raises(FaceQualityError) as strict:
        face_engine.single_face(rgb)  # what enrolment sees: two faces
    assert strict.value.code == "multiple_faces" and "never picks" in strict.value.message
    _enrol(service, "li", [lfw / "1.jpg", lfw / "2.jpg"])
    result = service.matching.verify(LOCAL_ADMIN, "li", probe.read_bytes(), purpose="login")
    assert result.match and result.box is not None
    left, top, right, bottom = result.box  # the central face, not the one at the edge
    assert abs((left + right) / 2 - rgb.shape[1] / 2) < 30 and abs((top + bottom) / 2 - rgb.shape[0] / 2) < 30
    api = Api(service)  # the API says which face was used, to devices too (a box in their own photo is not news)
    for role in ("operator", "verifier"):
        answer = api.verify("li", probe.read_bytes(), role=role)
        assert answer.status_code == 200 and answer.json()["face_box"] == list(result.box), answer.text

    # Obama and Biden side by side: neither dominates, so the photo is refused, with how to fix it.
    _enrol(service, "obama", [shared_faces / "people" / "train" / "obama" / "obama.jpg"])
    pair = (shared_faces / "people" / "test" / "obama_and_biden.jpg").read_bytes()
    with pytest.raises(FaceQualityError) as ambiguous:
        service.matching.verify(LOCAL_ADMIN, "obama", pair, purpose="login")
    assert ambiguous.value.code == "multiple_faces"
    assert "none is clearly the main one" in ambiguous.value.message and "crop it" in ambiguous.value.message

    # Enrolment stays strict even when one face dominates, and the error explains the choice.
    with pytest.raises(FaceQualityError) as enrol:
        _enrol(service, "li2", [probe])
    assert enrol.value.code == "multiple_faces" and "wrong face" in enrol.value.message


def test_the_setting_turns_it_off(service: FaceService, shared_faces: Path) -> None:
    lfw = shared_faces / "lfw" / "Li_Zhaoxing"
    _enrol(service, "li", [lfw / "1.jpg"])
    service.settings.dominant_face_purposes = []
    with pytest.raises(FaceQualityError) as exc:
        service.matching.verify(LOCAL_ADMIN, "li", (lfw / "7.jpg").read_bytes(), purpose="login")
    assert exc.value.code == "multiple_faces"
