"""POST /v1/compare: two photos, a decision, the face used and the quality of each; nothing stored but one audit
entry (issue 12, item 5)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from sqlalchemy import func, select

from facewarden.governance.actors import DEFAULT_TENANT
from facewarden.store import Purpose, Subject, Template
from facewarden.vision import FaceEngine
from tests.conftest import Api


def _compare(api: Api, a: bytes, b: bytes, *, role: str = "operator", purpose: str = "login",
             legal_basis: str = "consent", **form: str):  # type: ignore[no-untyped-def]
    return api.client.post("/v1/compare", files={"a": ("a.jpg", a), "b": ("b.jpg", b)},
                           data={"purpose": purpose, "legal_basis": legal_basis, **form}, headers=api.keys[role])


def _counts(api: Api) -> tuple[int, int]:
    with api.service.db.session(readonly=True) as s:
        return (s.scalar(select(func.count()).select_from(Template)) or 0,
                s.scalar(select(func.count()).select_from(Subject)) or 0)


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def test_compare_decides_reports_both_faces_and_stores_nothing(api: Api, shared_faces: Path,
                                                               face_engine: FaceEngine) -> None:
    train = shared_faces / "people" / "train"
    obama, obama2 = (train / "obama" / "obama.jpg").read_bytes(), (train / "obama" / "obama2.jpg").read_bytes()
    biden = next(p for p in sorted((train / "biden").iterdir())).read_bytes()
    before = _counts(api)

    same = _compare(api, obama, obama2)
    assert same.status_code == 200, same.text
    body = same.json()
    assert body["match"] is True and body["stored"] is False
    assert body["distance"] <= body["threshold"] == api.service.settings.match_threshold
    for side in ("a", "b"):
        assert len(body[side]["box"]) == 4 and body[side]["sharpness"] > 0 and "detector_score" in body[side]

    other = _compare(api, obama, biden)
    assert other.status_code == 200, other.text
    assert other.json()["match"] is False and other.json()["distance"] > other.json()["threshold"]

    # A verifier (a device or app) gets the decision and the faces used, no score.
    as_device = _compare(api, obama, obama2, role="verifier").json()
    assert as_device["match"] is True
    assert not {"distance", "threshold"} & as_device.keys() and as_device["a"].keys() == {"box"}
    assert _compare(api, obama, obama2, role="auditor").status_code == 403

    # Nothing stored: no subject, no template; the probe's embedding and photo bytes are nowhere in the database.
    assert _counts(api) == before
    url = api.service.settings.resolved_database_url
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in (db, db.with_name(db.name + "-wal")) if p.exists())
        embedding = face_engine.single_face(np.asarray(Image.open(train / "obama" / "obama.jpg").convert("RGB")))
        assert embedding.embedding.astype(np.float32).tobytes() not in raw
        assert embedding.embedding.astype(np.float32).tobytes()[:64] not in raw
        assert obama[1000:1064] not in raw and obama2[1000:1064] not in raw

    # One audit entry per comparison, with the decision and no embedding, image or distance.
    entries = api.client.get("/v1/audit/entries", params={"operation": "compare"}, headers=api.keys["auditor"])
    assert entries.status_code == 200, entries.text
    found = entries.json()["entries"]
    assert [e["outcome"] for e in found] == ["match", "no_match", "match", "forbidden"]
    text = json.dumps(found)
    assert "distance" not in text and "embedding" not in text and len(text) < 800 * len(found)


def test_compare_needs_liveness_where_the_purpose_requires_it(api: Api, shared_faces: Path) -> None:
    with api.service.db.session() as s:
        purpose = s.get(Purpose, (DEFAULT_TENANT, "login"))
        assert purpose is not None
        purpose.liveness_required = True
    photo = (shared_faces / "people" / "train" / "obama" / "obama.jpg").read_bytes()
    refused = _compare(api, photo, photo)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "liveness_required"
    forged = _compare(api, photo, photo, liveness_session="00000000-0000-0000-0000-000000000000")
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "liveness_invalid"
    wrong_basis = _compare(api, photo, photo, purpose="device-unlock", legal_basis="contract")
    assert wrong_basis.status_code == 403 and wrong_basis.json()["error"]["code"] == "legal_basis_not_allowed"
    police = _compare(api, photo, photo, purpose="law-enforcement", legal_basis="law")
    assert police.status_code == 403 and police.json()["error"]["code"] == "grant_required"


def test_compare_still_refuses_an_unusable_photo_with_its_code(api: Api, shared_faces: Path) -> None:
    path = shared_faces / "people" / "train" / "obama" / "obama.jpg"
    good, img = path.read_bytes(), Image.open(path).convert("RGB")
    blurred = _compare(api, _jpeg(img.filter(ImageFilter.GaussianBlur(8))), good)
    assert blurred.status_code == 422 and blurred.json()["error"]["code"] in {"face_blurred", "face_low_quality"}
    tiny = _compare(api, good, _jpeg(img.resize((img.width // 12, img.height // 12))))
    assert tiny.status_code == 422 and tiny.json()["error"]["code"] == "no_face"
