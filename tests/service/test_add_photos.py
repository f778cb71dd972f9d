"""Adding photos to an enrolled subject: same person only, under the subject's existing data key, audited, with
the caller's tenant, role and purpose checked. Real faces, SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from facewarden.audit import AuditQuery
from facewarden.errors import Conflict, Forbidden, KeyUnavailable, Locked, NotFound
from facewarden.governance.actors import Actor
from facewarden.service import LOCAL_ADMIN, EnrolRequest, FaceService
from facewarden.service.matching import MAX_TEMPLATES_PER_SUBJECT


def _train(shared_faces: Path, person: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((shared_faces / "people" / "train" / person).iterdir())]


def _operator(tenant: str = "default", **kw: object) -> Actor:
    return Actor(tenant, f"apikey:{tenant}-op", frozenset({"operator"}), **kw)  # type: ignore[arg-type]


def _enrol(service: FaceService, photos: list[bytes], name: str = "obama") -> str:
    return service.matching.enrol(LOCAL_ADMIN, EnrolRequest(name, photos, "login", "contract"))["subject_id"]


def _outcomes(service: FaceService, operation: str) -> list[str]:
    return [e["outcome"] for e in service.audit.query(AuditQuery(operation=operation, limit=1000))]


def test_a_second_photo_of_the_same_person_is_sealed_under_the_same_key_and_keeps_or_improves_matching(
        service: FaceService, shared_faces: Path) -> None:
    obama = _train(shared_faces, "obama")
    probe = (shared_faces / "people" / "test" / "obama1.jpg").read_bytes()
    subject_id = _enrol(service, obama[:1])
    before = service.matching.verify(LOCAL_ADMIN, "obama", probe, purpose="login")
    keys_before = sum(service.keyring.versions_in_use().values())

    added = service.matching.add_photos(_operator(), "obama", obama[1:])
    assert added["templates_added"] == 1 and added["templates"] == 2 and added["subject_id"] == subject_id
    assert sum(service.keyring.versions_in_use().values()) == keys_before  # no new data key
    after = service.matching.verify(LOCAL_ADMIN, "obama", probe, purpose="login")
    assert after.match and after.distance is not None and before.distance is not None
    assert after.distance <= before.distance
    exported = service.rights.export(LOCAL_ADMIN, "obama")
    assert len(exported["templates"]) == 2
    assert _outcomes(service, "add_photos") == ["photos_added"]
    # The in-memory gallery has the new template, and a reload from the encrypted store agrees.
    size = service.gallery.size()
    assert size == 2 and service.matching.refresh_gallery(force=True) == 0 and service.gallery.size() == size


def test_another_persons_face_is_refused_and_audited(service: FaceService, shared_faces: Path) -> None:
    _enrol(service, _train(shared_faces, "obama"))
    for intruder in (_train(shared_faces, "biden")[0], _train(shared_faces, "rose_leslie")[0]):
        with pytest.raises(Conflict) as exc:
            service.matching.add_photos(_operator(), "obama", [intruder])
        assert exc.value.code == "different_person"
    # One good photo does not carry a bad one in with it.
    with pytest.raises(Conflict, match="Photo 2 does not match"):
        service.matching.add_photos(_operator(), "obama", [_train(shared_faces, "obama")[0],
                                                           _train(shared_faces, "biden")[0]])
    assert len(service.rights.export(LOCAL_ADMIN, "obama")["templates"]) == 2
    assert _outcomes(service, "add_photos") == ["different_person"] * 3


def test_erased_shredded_or_locked_subjects_get_nothing(service: FaceService, shared_faces: Path) -> None:
    obama, kit = _train(shared_faces, "obama"), _train(shared_faces, "kit_harington")
    _enrol(service, obama[:1])
    service.rights.erase(LOCAL_ADMIN, "obama")
    with pytest.raises(NotFound):
        service.matching.add_photos(_operator(), "obama", obama[1:])
    # Rows left behind with their key gone (a crash between the stores): refused, and no key is created.
    subject_id = _enrol(service, kit[:1], "kit")
    service.keyring.shred_subject("default", subject_id)
    with pytest.raises(KeyUnavailable):
        service.matching.add_photos(_operator(), "kit", kit[1:])
    assert service.keyring.versions_in_use() == {}
    _enrol(service, obama[:1])
    for _ in range(service.settings.lockout_attempts):
        service.matching.verify(LOCAL_ADMIN, "obama", kit[0], purpose="login")
    with pytest.raises(Locked):
        service.matching.add_photos(_operator(), "obama", obama[1:])


def test_roles_tenants_purpose_bound_keys_and_the_template_cap(service: FaceService, shared_faces: Path) -> None:
    obama = _train(shared_faces, "obama")
    _enrol(service, obama[:1])
    verifier = Actor("default", "apikey:door", frozenset({"verifier"}))
    subject_actor = replace(LOCAL_ADMIN, principal="subject:x", roles=frozenset({"subject"}))
    for who in (verifier, subject_actor):
        with pytest.raises(Forbidden):
            service.matching.add_photos(who, "obama", obama[1:])
    with pytest.raises(NotFound):  # another tenant cannot even learn that the subject exists
        service.matching.add_photos(_operator("other-bank"), "obama", obama[1:])
    with pytest.raises(Forbidden) as exc:
        service.matching.add_photos(_operator(purposes=frozenset({"payment"})), "obama", obama[1:])
    assert exc.value.code == "purpose_not_allowed_for_key"
    limit = service.settings.max_images_per_enrolment
    service.matching.add_photos(_operator(), "obama", [obama[1]] * limit)
    with pytest.raises(Conflict) as exc:
        service.matching.add_photos(_operator(), "obama", [obama[1]] * (MAX_TEMPLATES_PER_SUBJECT - limit))
    assert exc.value.code == "too_many_templates"
    assert len(service.rights.export(LOCAL_ADMIN, "obama")["templates"]) == 1 + limit
    assert _outcomes(service, "add_photos").count("forbidden") == 2
