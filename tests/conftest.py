"""Shared fixtures: the real face models (loaded once), real SQLite and PostgreSQL, the shared face data."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from facewarden.api import create_app
from facewarden.config import Settings
from facewarden.service import LOCAL_ADMIN, FaceService, build_service

if TYPE_CHECKING:
    from facewarden.vision import FaceEngine

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_DSN = os.environ.get("FACEWARDEN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REPORT: list[str] = []


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if REPORT:
        terminalreporter.section("FaceWarden measurements")
        for line in REPORT:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def shared_faces() -> Path:
    root = Path(os.environ.get("FACEWARDEN_SHARED", REPO.parent / "shared")) / "faces"
    if not (root / "people" / "train").is_dir():
        pytest.fail(f"The shared face data is missing at {root}. Put the project's shared/ folder beside the "
                    "repository (or set FACEWARDEN_SHARED); these tests never skip.")
    return root


@pytest.fixture(scope="session")
def face_engine() -> FaceEngine:
    """The real dlib engine, loaded once (imported here, so the unit tests never load dlib). It remembers what it
    found in each picture, so the shared faces are embedded once per test session, not once per test."""
    from facewarden.vision.engine import FaceEngine

    class SessionCachedEngine(FaceEngine):
        def __init__(self) -> None:
            super().__init__()
            self._seen: dict[tuple[Any, ...], Any] = {}

        def _cached(self, kind: str, rgb: Any, compute: Any, **kwargs: Any) -> Any:
            settings = (self.detector_kind, self.detect_max_side, self.min_face_px, self.min_sharpness,
                        getattr(self, "min_quality", None))  # tests vary them
            key = (kind, settings, rgb.shape, hashlib.sha256(rgb.tobytes()).digest(), tuple(sorted(kwargs.items())))
            if key not in self._seen:
                try:
                    self._seen[key] = (True, compute(rgb, **kwargs))
                except Exception as exc:  # a refused photo is refused again, with the same error
                    self._seen[key] = (False, exc)
            ok, value = self._seen[key]
            if not ok:
                raise value
            return value

        def single_face(self, rgb: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            return self._cached("single", rgb, super().single_face, **kwargs)

        def faces(self, rgb: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            return self._cached("all", rgb, super().faces, **kwargs)

    return SessionCachedEngine()


def _pg_dsn_for(dbname: str) -> str:
    return PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + dbname


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    name = f"fw_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_DSN} ({exc}); run `make services`.")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield _pg_dsn_for(name).replace("postgresql://", "postgresql+psycopg://")
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


SHARED = Path(os.environ.get("FACEWARDEN_SHARED", REPO.parent / "shared"))


def make_settings(home: Path, database_url: str | None = None, **overrides: object) -> Settings:
    """Test settings. Purposes need no liveness unless a test asks (`liveness_required_purposes`): the face
    tests send photos; the liveness tests send clips, filmed before any session's colours were known, so the
    light challenge is off unless a test asks too (`light_challenge_purposes`)."""
    values: dict[str, object] = {"liveness_required_purposes": [], "light_challenge_purposes": [],
                                 "pad_model_dir": SHARED / "models" / "pad", **overrides}
    return Settings(home=home, database_url=database_url, workers=2, rate_limit_per_minute=10_000, **values)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("pg_database")


@pytest.fixture
def service(tmp_path: Path, backend: str | None, face_engine: FaceEngine) -> Iterator[FaceService]:
    svc = build_service(make_settings(tmp_path / "home", backend), create=True, engine_factory=lambda: face_engine)
    yield svc
    svc.db.dispose()
    svc.keyring.store.engine.dispose()


class Api:
    """A TestClient with one API key per role."""

    def __init__(self, service: FaceService) -> None:
        self.service = service
        self.client = TestClient(create_app(service))
        self.keys = {}
        for key_name, role in (("admin", "admin"), ("admin2", "admin"), ("operator", "operator"),
                               ("verifier", "verifier"), ("auditor", "auditor")):
            person = service.accounts.create_person(LOCAL_ADMIN, name=f"{key_name} person", person_roles={role}) \
                if role == "admin" else None
            _, secret = service.accounts.create_api_key(LOCAL_ADMIN, name=key_name, key_roles={role}, person_id=person)
            self.keys[key_name] = {"Authorization": f"Bearer {secret}"}

    def enrol(self, subject: str, photos: list[Path], *, role: str = "operator", **form: str):  # type: ignore[no-untyped-def]
        data = {"subject": subject, "purpose": "login", "legal_basis": "consent",
                "consent_given_at": "2026-11-01T10:00:00Z", "consent_method": "signed form", **form}
        files = [("images", (p.name, p.read_bytes())) for p in photos]
        return self.client.post("/v1/subjects", data=data, files=files, headers=self.keys[role])

    def verify(self, subject: str, photo: bytes, *, role: str = "operator", purpose: str = "login"):  # type: ignore[no-untyped-def]
        return self.client.post(f"/v1/subjects/{subject}/verify", files={"image": ("p.jpg", photo)},
                                data={"purpose": purpose}, headers=self.keys[role])

    def identify(self, photo: bytes, *, all_faces: bool = False, role: str = "operator",  # type: ignore[no-untyped-def]
                 purpose: str = "login"):
        return self.client.post("/v1/identify", files={"image": ("p.jpg", photo)},
                                data={"all_faces": str(all_faces).lower(), "purpose": purpose},
                                headers=self.keys[role])


@pytest.fixture
def api(service: FaceService) -> Api:
    return Api(service)


@pytest.fixture
def enrolled_api(api: Api, shared_faces: Path) -> Api:
    """The five people of people/train enrolled through the API."""
    for person in sorted((shared_faces / "people" / "train").iterdir()):
        r = api.enrol(person.name, sorted(person.iterdir()))
        assert r.status_code == 201, r.text
    return api

