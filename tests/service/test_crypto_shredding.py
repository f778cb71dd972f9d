"""Crypto-shredding and key handling against real files and databases."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from facewarden.crypto import LocalKeyFileProvider, TemplateAAD, open_sealed, seal
from facewarden.crypto.local import KeyFileError
from facewarden.errors import IntegrityFailure, KeyUnavailable
from facewarden.service import LOCAL_ADMIN, EnrolRequest, FaceService, build_service
from facewarden.vision import FaceEngine
from tests.conftest import make_settings


def test_restoring_a_database_copy_taken_before_erasure_does_not_bring_the_face_back(
        tmp_path: Path, shared_faces: Path, face_engine: FaceEngine) -> None:
    settings = make_settings(tmp_path / "home")
    svc = build_service(settings, create=True, engine_factory=lambda: face_engine)
    photos = [p.read_bytes() for p in sorted((shared_faces / "people" / "train" / "obama").iterdir())]
    svc.matching.enrol(LOCAL_ADMIN, EnrolRequest("obama", photos, "login", "contract"))
    assert len(svc.rights.export(LOCAL_ADMIN, "obama")["templates"]) == 2
    svc.db.dispose()
    db_file = Path(settings.resolved_database_url.removeprefix("sqlite:///"))
    backup = tmp_path / "backup"
    backup.mkdir()
    for f in db_file.parent.glob(db_file.name + "*"):  # the database and its WAL
        shutil.copy2(f, backup / f.name)

    svc.rights.erase(LOCAL_ADMIN, "obama")
    svc.db.dispose()
    for f in db_file.parent.glob(db_file.name + "*"):
        f.unlink()
    for f in backup.iterdir():
        shutil.copy2(f, db_file.parent / f.name)

    restored = build_service(settings, engine_factory=lambda: face_engine)
    with pytest.raises(KeyUnavailable):
        restored.rights.export(LOCAL_ADMIN, "obama")  # the rows are back, the key is not
    assert restored.matching.refresh_gallery(force=True) == 1 and restored.gallery.size() == 0
    with pytest.raises(KeyUnavailable):
        restored.matching.verify(LOCAL_ADMIN, "obama", photos[0], purpose="login")


def test_envelope_binds_ciphertext_to_its_row() -> None:
    key = os.urandom(32)
    aad = TemplateAAD("t1", "s1", "tpl1", "m@1").encode()
    blob = seal(key, b"embedding bytes", aad)
    assert open_sealed(key, blob, aad) == b"embedding bytes"
    for other in (TemplateAAD("t2", "s1", "tpl1", "m@1"), TemplateAAD("t1", "s2", "tpl1", "m@1"),
                  TemplateAAD("t1", "s1", "tpl2", "m@1"), TemplateAAD("t1", "s1", "tpl1", "m@2")):
        with pytest.raises(IntegrityFailure):
            open_sealed(key, blob, other.encode())
    with pytest.raises(IntegrityFailure):
        open_sealed(os.urandom(32), blob, aad)
    # Field boundaries are length-prefixed: ("ab","c") and ("a","bc") differ.
    assert TemplateAAD("ab", "c", "x", "y").encode() != TemplateAAD("a", "bc", "x", "y").encode()


def test_key_file_is_owner_only_and_refused_when_exposed(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "kek.json"
    provider = LocalKeyFileProvider(path, create=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    wrapped = provider.wrap(b"k" * 32, b"aad")
    assert LocalKeyFileProvider(path).unwrap(wrapped, b"aad") == b"k" * 32
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        LocalKeyFileProvider(path)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match="does not exist"):
        LocalKeyFileProvider(tmp_path / "missing.json")


def test_rotation_keeps_old_wraps_readable_until_retired(tmp_path: Path) -> None:
    provider = LocalKeyFileProvider(tmp_path / "kek.json", create=True)
    old = provider.wrap(b"d" * 32, b"a")
    assert provider.rotate() == 2 and provider.current_version() == 2
    assert provider.wrap(b"d" * 32, b"a").kek_version == 2
    assert provider.unwrap(old, b"a") == b"d" * 32
    with pytest.raises(KeyFileError):
        provider.retire(2)
    provider.retire(1)
    assert provider.versions() == [2]
    with pytest.raises(KeyFileError, match="retired"):
        provider.unwrap(old, b"a")


def test_vault_backup_from_before_rotation_is_useless_once_the_old_kek_is_retired(
        tmp_path: Path, shared_faces: Path, face_engine: FaceEngine) -> None:
    settings = make_settings(tmp_path / "home")
    svc = build_service(settings, create=True, engine_factory=lambda: face_engine)
    photo = (shared_faces / "people" / "train" / "biden" / "biden.jpg").read_bytes()
    svc.matching.enrol(LOCAL_ADMIN, EnrolRequest("biden", [photo], "login", "contract"))
    vault_file = Path(settings.resolved_vault_url.removeprefix("sqlite:///"))
    svc.keyring.store.engine.dispose()
    stale = tmp_path / "vault-backup.db"
    shutil.copy2(vault_file, stale)
    svc.keys.rotate(LOCAL_ADMIN, retire_old=True)
    assert svc.rights.export(LOCAL_ADMIN, "biden")["templates"]
    svc.keyring.store.engine.dispose()
    shutil.copy2(stale, vault_file)  # an insider restores the old vault
    restored = build_service(settings, engine_factory=lambda: face_engine)
    with pytest.raises(KeyFileError, match="version 1"):
        restored.rights.export(LOCAL_ADMIN, "biden")


# -- the key store and the main database stay consistent when the main transaction fails (issue 10, 5-6) --------

def _fail_on(service: FaceService, event: str, external_id: str) -> str:
    """A real database failure for one subject: at COMMIT on PostgreSQL (a deferred constraint trigger), at the
    statement on SQLite (which has no deferred triggers). Returns the statement that removes it."""
    with service.db.engine.begin() as conn:
        if service.db.engine.dialect.name == "postgresql":
            conn.exec_driver_sql("CREATE FUNCTION fw_fail() RETURNS trigger AS $$ BEGIN "
                                 "RAISE EXCEPTION 'injected commit failure'; END $$ LANGUAGE plpgsql")
            conn.exec_driver_sql(f"CREATE CONSTRAINT TRIGGER fw_fail AFTER {event} ON subjects DEFERRABLE "
                                 f"INITIALLY DEFERRED FOR EACH ROW WHEN ({'NEW' if event == 'INSERT' else 'OLD'}"
                                 f".external_id = '{external_id}') EXECUTE FUNCTION fw_fail()")
            return "DROP TRIGGER fw_fail ON subjects"
        row = "NEW" if event == "INSERT" else "OLD"
        conn.exec_driver_sql(f"CREATE TRIGGER fw_fail BEFORE {event} ON subjects WHEN {row}.external_id = "
                             f"'{external_id}' BEGIN SELECT RAISE(ABORT, 'injected failure'); END")
        return "DROP TRIGGER fw_fail"


def _erase_entries(service: FaceService, subject_id: str) -> int:
    with service.db.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM audit_entries WHERE operation = 'erase' AND "
                                     "subject_id = :s"), {"s": subject_id}).scalar_one())


def test_an_enrolment_failing_at_commit_leaves_no_data_key(service: FaceService, shared_faces: Path) -> None:
    photos = [p.read_bytes() for p in sorted((shared_faces / "people" / "train" / "obama").iterdir())]
    drop = _fail_on(service, "INSERT", "doomed")
    with pytest.raises(DBAPIError, match="injected"):
        service.matching.enrol(LOCAL_ADMIN, EnrolRequest("doomed", photos, "login", "contract"))
    assert service.keyring.versions_in_use() == {} and service.keyring.store.intents() == []
    with service.db.engine.begin() as conn:
        conn.exec_driver_sql(drop)
    enrolled = service.matching.enrol(LOCAL_ADMIN, EnrolRequest("doomed", photos, "login", "contract"))
    assert service.keyring.versions_in_use() == {1: 1} and service.keyring.store.intents() == []
    assert service.matching.verify(LOCAL_ADMIN, "doomed", photos[0], purpose="login").match
    assert enrolled["subject_id"] and service.keys.status(LOCAL_ADMIN)["orphan_keys"] == 0


def test_an_erasure_failing_at_commit_keeps_a_usable_record_and_a_later_one_shreds(
        service: FaceService, shared_faces: Path) -> None:
    photos = [p.read_bytes() for p in sorted((shared_faces / "people" / "train" / "biden").iterdir())]
    sid = service.matching.enrol(LOCAL_ADMIN, EnrolRequest("biden", photos, "login", "contract"))["subject_id"]
    drop = _fail_on(service, "DELETE", "biden")
    with pytest.raises(DBAPIError, match="injected"):
        service.rights.erase(LOCAL_ADMIN, "biden")
    # Nothing happened: the record is listed, its key opens it, no entry claims an erasure.
    assert service.matching.verify(LOCAL_ADMIN, "biden", photos[0], purpose="login").match
    assert _erase_entries(service, sid) == 0
    # At COMMIT (PostgreSQL) the shred was journalled already; recovery sees the record and undoes it.
    left = [i.action for i in service.keyring.store.intents()]
    assert left == (["shred"] if service.db.engine.dialect.name == "postgresql" else [])
    assert service.keys.recover(LOCAL_ADMIN, grace_s=0)["shreds_undone"] == len(left)
    assert service.keyring.store.intents() == [] and service.keyring.versions_in_use() == {1: 1}
    with service.db.engine.begin() as conn:
        conn.exec_driver_sql(drop)
    assert service.rights.erase(LOCAL_ADMIN, "biden")["data_key_destroyed"] is True
    # Acknowledged: the key is gone already (not at some later recovery), and the entry is there.
    assert service.keyring.versions_in_use() == {} and service.keyring.store.intents() == []
    assert _erase_entries(service, sid) == 1
