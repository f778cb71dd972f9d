"""The quality gate on real photos (issue 12, item 1): a soft LFW news photo the old sharpness gate refused now
enrols, with its quality stored; the truly unusable (heavily blurred, tiny face) is still refused with its code; the
verification shows the probe's quality to operators only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from facewarden.service import LOCAL_ADMIN, EnrolRequest, FaceService, build_service
from facewarden.vision import FaceEngine, FaceQualityError
from tests.conftest import Api, make_settings


@pytest.fixture
def sqlite_service(tmp_path: Path, face_engine: FaceEngine) -> Iterator[FaceService]:
    svc = build_service(make_settings(tmp_path / "home"), create=True, engine_factory=lambda: face_engine)
    yield svc
    svc.db.dispose()
    svc.keyring.store.engine.dispose()


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_a_soft_lfw_photo_enrols_and_the_unusable_are_still_refused(sqlite_service: FaceService,
                                                                    shared_faces: Path,
                                                                    face_engine: FaceEngine) -> None:
    deniro = shared_faces / "lfw" / "Robert_De_Niro"
    soft = face_engine.single_face(_rgb(deniro / "3.jpg"))
    assert soft.sharpness < 25 and 0.5 <= soft.quality <= 1.0  # refused as face_blurred before; it matches fine
    enrolled = sqlite_service.matching.enrol(LOCAL_ADMIN, EnrolRequest("deniro", [(deniro / "3.jpg").read_bytes()],
                                                                       "login", "contract"))
    assert enrolled["photo_quality"] == [soft.quality]
    exported = sqlite_service.rights.export(LOCAL_ADMIN, "deniro")
    assert [t["quality"] for t in exported["templates"]] == [pytest.approx(soft.quality)]  # the score, not sharpness

    obama = Image.open(shared_faces / "people" / "train" / "obama" / "obama.jpg").convert("RGB")
    with pytest.raises(FaceQualityError) as blurred:
        face_engine.single_face(np.asarray(obama.filter(ImageFilter.GaussianBlur(8))))
    assert blurred.value.code == "face_blurred"
    canvas = Image.new("RGB", (400, 400), (128, 128, 128))
    canvas.paste(obama.resize((110, round(110 * obama.height / obama.width))), (150, 150))
    small = face_engine.single_face(np.asarray(canvas))  # a 37 px face: HOG's smallest box, matches like larger
    assert small.box[2] - small.box[0] < 40
    canvas.paste((128, 128, 128), (0, 0, 400, 400))
    canvas.paste(obama.resize((70, round(70 * obama.height / obama.width))), (150, 150))
    with pytest.raises(FaceQualityError) as tiny:  # too small to find at all: refused, and told why
        face_engine.single_face(np.asarray(canvas))
    assert tiny.value.code == "no_face" and "pixels wide" in tiny.value.message
    before, face_engine.min_face_px = face_engine.min_face_px, 60  # a deployment that asks for larger faces
    try:
        with pytest.raises(FaceQualityError) as too_small:
            face_engine.single_face(np.asarray(obama.resize((110, round(110 * obama.height / obama.width)))))
        assert too_small.value.code == "face_too_small"
    finally:
        face_engine.min_face_px = before


def test_verification_shows_quality_to_operators_only(sqlite_service: FaceService, shared_faces: Path) -> None:
    deniro = shared_faces / "lfw" / "Robert_De_Niro"
    api = Api(sqlite_service)
    assert api.enrol("deniro", [deniro / "1.jpg"]).status_code == 201
    probe = (deniro / "3.jpg").read_bytes()
    seen = api.verify("deniro", probe, role="operator").json()
    assert seen["match"] is True and 0.5 <= seen["quality"] <= 1.0 and "distance" in seen
    device = api.verify("deniro", probe, role="verifier").json()
    assert device["match"] is True and "quality" not in device and "distance" not in device
