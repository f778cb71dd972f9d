"""One settings object: environment variables (FACEWARDEN_*) over an optional file; secrets never on argv."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    return Path(user_data_dir("facewarden", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FACEWARDEN_", env_file=os.environ.get("FACEWARDEN_ENV_FILE"), extra="ignore"
    )

    home: Path = Field(default_factory=default_home)
    # Main database (subjects, encrypted templates). Default: SQLite (WAL) in the home directory.
    database_url: str | None = None
    # The data-key vault lives apart from the main database, so a copy of the main database
    # taken before an erasure cannot be decrypted once the subject's key is gone.
    vault_url: str | None = None

    # The key-encryption key's provider, by URI (file:///path/kek.json, pkcs11:token=<label>; see
    # crypto/providers.py). None: derived from the older `key_provider` name (local or pkcs11).
    kek_uri: str | None = None
    key_provider: Literal["local", "pkcs11"] = "local"
    key_file: Path | None = None
    pkcs11_module: str = "/usr/lib/softhsm/libsofthsm2.so"
    pkcs11_token_label: str = "facewarden"  # noqa: S105 (a label, not a secret)
    pkcs11_pin: str | None = None  # from the environment or env file only

    # Face pipeline
    detector: Literal["hog", "cnn"] = "hog"
    detect_max_side: int = 640  # photos are downscaled to this before detection (speed); landmarks use full res
    min_face_px: int = 32  # smallest face box side accepted, in original pixels (README: why 32)
    min_sharpness: float = 4.8  # variance of the Laplacian on the aligned 150x150 chip: below it, face_blurred
    min_quality: float = 0.5  # vision/quality.py score in [0, 1]: below it, face_low_quality
    match_threshold: float = 0.5  # Euclidean distance; calibrate with `facewarden eval pairs`
    # Probes (verify, compare, identify of one face) for these purposes use the main face of a photo that
    # shows several (vision/selection.py: clearly the largest, or the one the photo is framed on); "*": every
    # purpose but law-enforcement, which must be named. [] turns it off.
    dominant_face_purposes: list[str] = Field(default_factory=lambda: ["*"])
    dominant_face_margin: float = 2.0  # box area of the largest face over the next one
    # Enrolment (and added photos) take the main face by the same rule, and say so in the answer; an ambiguous
    # photo is still refused. False: exactly one face in every enrolment photo.
    enrol_main_face: bool = True
    gallery: str = "memory"  # the 1:N search implementation, by name (gallery/__init__.py registers them)
    workers: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1))

    # Untrusted input limits
    max_upload_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_images_per_enrolment: int = 10
    max_request_bytes: int = 25 * 1024 * 1024
    rate_limit_per_minute: int = 120

    lockout_attempts: int = 5
    keep_raw_images: bool = False

    # Audit log: Ed25519 signing key kept apart from the database; witnesses get every signed tree head.
    audit_signing_key: Path | None = None
    # Files or https:// URLs of `facewarden witness serve`. None: a file in the home (point it elsewhere in
    # production: a witness on the same disk as the database does not stop someone who owns that disk).
    audit_witnesses: list[str] | None = None
    audit_witness_ca: str | None = None  # CA bundle for https witnesses with private certificates
    audit_sign_interval_s: float = 10.0  # how often `serve` signs and publishes a new tree head

    # Governance: who is responsible (GDPR Art. 30 record), insider limits, retention job
    controller_name: str = "FaceWarden operator (set FACEWARDEN_CONTROLLER_NAME)"
    controller_contact: str = "privacy@example.invalid"
    dpo_contact: str | None = None
    person_verify_limit_per_hour: int = 600  # verifications one person or device may run per hour
    person_search_limit_per_day: int = 200  # identifications and police searches one person may run per day
    person_export_limit_per_day: int = 50  # exports (plaintext templates) one person may run per day
    bulk_erase_dual_control_threshold: int = 10  # erasing more subjects a day needs a second administrator
    retention_interval_s: float = 3600.0  # how often `serve` runs the retention job
    # Key-store intents (crash recovery, crypto/datakeys.py): resolved at start-up and every interval; an intent
    # of a process on another machine (or one whose liveness cannot be told) waits this long before it is
    # treated as abandoned, so work in flight is never undone.
    key_recovery_grace_s: float = 120.0
    key_recovery_interval_s: float = 300.0

    # Liveness: which purposes need a passed liveness session to verify (seeded into new tenants' purposes),
    # where the passive PAD models are (never shipped in the repository), session and retention limits
    liveness_required_purposes: list[str] = Field(default_factory=lambda: ["login", "payment"])
    # ... and which of them also flash the light challenge (the capture page shows it; an AI-generated or
    # replayed clip cannot show the session's reflections)
    light_challenge_purposes: list[str] = Field(default_factory=lambda: ["login", "payment"])
    pad_model_dir: Path | None = None
    liveness_landmarks: Literal["dlib5", "dlib68"] = "dlib5"  # dlib68: non-commercial licence (iBUG 300-W)
    liveness_session_ttl_s: int = 180  # a challenge must be answered within this
    liveness_pass_valid_s: int = 120  # a passed session must be used by a verification within this
    liveness_max_failures_per_hour: int = 5  # per subject and device, like failed verifications
    liveness_audit_frames_days: int = 30  # sealed audit frames are destroyed after this
    liveness_max_video_bytes: int = 20 * 1024 * 1024
    liveness_max_seconds: float = 10.0

    host: str = "127.0.0.1"
    port: int = 8443
    tls: bool = True

    # Slow and stalled clients (`serve`): each bounds how long a connection may hold a socket and buffers
    header_timeout_s: float = 10.0  # from connect (or the last answer) to a complete request head
    keep_alive_s: int = 5  # an idle keep-alive connection is closed after this
    body_idle_timeout_s: float = 15.0  # a request body that sends nothing for this long is answered 408
    body_timeout_s: float = 120.0  # a whole request body must arrive within this (25 MiB at ~2 Mbit/s)
    max_connections: int = 1000  # connections beyond this are closed at once (each TLS one holds ~300 KB)
    max_concurrent_uploads: int = 8  # multipart requests read and processed at once; more get 503 server_busy

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'facewarden.db'}"

    @property
    def resolved_vault_url(self) -> str:
        return self.vault_url or f"sqlite:///{self.home / 'keys' / 'vault.db'}"

    @property
    def resolved_key_file(self) -> Path:
        return self.key_file or (self.home / "keys" / "kek.json")

    @property
    def resolved_audit_signing_key(self) -> Path:
        return self.audit_signing_key or (self.home / "keys" / "audit-signing.pem")

    @property
    def resolved_audit_witnesses(self) -> list[str]:
        if self.audit_witnesses is None:
            return [str(self.home / "witness" / "tree-heads.jsonl")]
        return self.audit_witnesses

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"
