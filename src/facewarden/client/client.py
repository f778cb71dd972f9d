"""A typed, synchronous client for the FaceWarden HTTP API (httpx).

    with FaceWardenClient("https://127.0.0.1:8443", api_key, ca_cert="~/.local/share/facewarden/tls/cert.pem") as fw:
        fw.enrol("obama", ["a.jpg", "b.jpg"], purpose="device-unlock", legal_basis="contract")
        fw.verify("obama", "probe.jpg", purpose="device-unlock").match

TLS is verified by default; `ca_cert` trusts the service's self-signed certificate. Every error answer is raised
as `ClientError` with the API's code, message and HTTP status.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from facewarden.client.models import (
    Enrolled,
    Erasure,
    Health,
    Identification,
    InclusionProof,
    LivenessChallenge,
    LivenessDecision,
    PhotosAdded,
    SubjectExport,
    SubjectSummary,
    TreeHead,
    Verification,
    build,
)
from facewarden.client.proofs import head_signature_ok, inclusion_ok

Photo = bytes | str | os.PathLike[str]  # the bytes of a photo, or a path to one


class ClientError(Exception):
    """An error answer (`code` and `message` as the API sent them, `status` its HTTP status), or no answer at
    all (`status` 0, code `transport`)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def _bytes(photo: Photo) -> bytes:
    return photo if isinstance(photo, bytes) else Path(photo).expanduser().read_bytes()


def _name(photo: Photo, i: int) -> str:
    return Path(photo).name if not isinstance(photo, bytes) else f"photo-{i}.jpg"


def _form(**values: Any) -> dict[str, str]:
    """Form fields without the unset ones; datetimes as ISO 8601, booleans as the API reads them."""
    out = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, bool):
            value = str(value).lower()
        out[key] = str(value)
    return out


class FaceWardenClient:
    def __init__(self, base_url: str, api_key: str | None = None, *, ca_cert: str | os.PathLike[str] | None = None,
                 verify: bool = True, timeout: float = 60.0) -> None:
        """`verify=False` turns TLS checking off (tests on a throwaway server only); `ca_cert` is the PEM to trust
        instead of the system's roots (the self-signed `tls/cert.pem` of `facewarden init`)."""
        tls: ssl.SSLContext | bool = verify
        if verify and ca_cert is not None:
            tls = ssl.create_default_context(cafile=str(Path(ca_cert).expanduser()))
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, verify=tls, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FaceWardenClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:  # refused, TLS failure, timeout: no API answer to report
            raise ClientError(0, "transport", f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                code, message = str(error["code"]), str(error["message"])
            except (ValueError, KeyError, TypeError):
                code, message = f"http_{response.status_code}", response.text[:200]
            raise ClientError(response.status_code, code, message)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._call(method, path, **kwargs).json()

    @staticmethod
    def _subject(subject: str) -> str:
        return quote(subject, safe="")  # a reference is data, never a path

    # -- service -----------------------------------------------------------------------------
    def health(self) -> Health:
        return build(Health, self._json("GET", "/v1/health"))

    # -- subjects ----------------------------------------------------------------------------
    def enrol(self, subject: str, photos: Sequence[Photo], *, purpose: str, legal_basis: str,
              consent_given_at: datetime | None = None, consent_method: str | None = None,
              consent_text: str | None = None, display_name: str | None = None, expires_at: datetime | None = None,
              passcode: str | None = None) -> Enrolled:
        data = _form(subject=subject, purpose=purpose, legal_basis=legal_basis, consent_given_at=consent_given_at,
                     consent_method=consent_method, consent_text=consent_text, display_name=display_name,
                     expires_at=expires_at, passcode=passcode)
        files = [("images", (_name(p, i), _bytes(p))) for i, p in enumerate(photos)]
        return build(Enrolled, self._json("POST", "/v1/subjects", data=data, files=files))

    def add_photos(self, subject: str, photos: Sequence[Photo]) -> PhotosAdded:
        """More photos of an enrolled person; refused (`different_person`, 409) if they show someone else."""
        files = [("images", (_name(p, i), _bytes(p))) for i, p in enumerate(photos)]
        return build(PhotosAdded, self._json("POST", f"/v1/subjects/{self._subject(subject)}/photos", files=files))

    def list_subjects(self, *, limit: int = 100, offset: int = 0) -> list[SubjectSummary]:
        rows = self._json("GET", "/v1/subjects", params={"limit": limit, "offset": offset})
        return [build(SubjectSummary, r) for r in rows]

    def export(self, subject: str) -> SubjectExport:
        return SubjectExport.from_json(self._json("GET", f"/v1/subjects/{self._subject(subject)}/export"))

    def erase(self, subject: str) -> Erasure:
        return build(Erasure, self._json("DELETE", f"/v1/subjects/{self._subject(subject)}"))

    def withdraw_consent(self, subject: str) -> Erasure:
        return build(Erasure, self._json("POST", f"/v1/subjects/{self._subject(subject)}/withdraw-consent"))

    # -- matching ----------------------------------------------------------------------------
    def verify(self, subject: str, photo: Photo, *, purpose: str, liveness_session: str | None = None) -> Verification:
        return build(Verification, self._json(
            "POST", f"/v1/subjects/{self._subject(subject)}/verify",
            data=_form(purpose=purpose, liveness_session=liveness_session), files={"image": ("probe", _bytes(photo))}))

    def unlock(self, subject: str, passcode: str) -> None:
        self._call("POST", f"/v1/subjects/{self._subject(subject)}/unlock", json={"passcode": passcode})

    def identify(self, photo: Photo, *, purpose: str, max_candidates: int = 5,
                 all_faces: bool = False) -> Identification:
        return Identification.from_json(self._json(
            "POST", "/v1/identify", data=_form(purpose=purpose, max_candidates=max_candidates, all_faces=all_faces),
            files={"image": ("probe", _bytes(photo))}))

    # -- liveness ----------------------------------------------------------------------------
    def start_liveness(self, subject: str | None, *, purpose: str) -> LivenessChallenge:
        """A challenge for verifying `subject`, or (None) for a comparison: then send `reference` with the clip."""
        body = {"purpose": purpose} | ({"subject": subject} if subject is not None else {})
        return build(LivenessChallenge, self._json("POST", "/v1/liveness/sessions", json=body))

    def submit_liveness(self, session_id: str, *, video: Photo | None = None,
                        frames: Sequence[tuple[Photo, float]] | None = None,
                        reference: Photo | None = None) -> LivenessDecision:
        """The clip (mp4/webm) filmed while the person did the actions, or its frames with their times (s); for a
        comparison's session, `reference` is the photo the live face must match (the one then compared)."""
        files: list[tuple[str, tuple[str, bytes]]] = []
        data = {}
        if reference is not None:
            files.append(("reference", ("reference", _bytes(reference))))
        if video is not None:
            files.append(("video", ("clip", _bytes(video))))
        if frames:
            files += [("frames", (f"frame-{i}.jpg", _bytes(f))) for i, (f, _) in enumerate(frames)]
            data["timestamps"] = ",".join(str(t) for _, t in frames)
        return build(LivenessDecision, self._json("POST", f"/v1/liveness/sessions/{quote(session_id, safe='')}",
                                                  files=files, data=data))

    # -- the audit log -----------------------------------------------------------------------
    def audit_public_key(self) -> str:
        """The log's Ed25519 key (PEM). Pin it out of band: its SHA-256 is the log id."""
        return self._call("GET", "/v1/audit/public-key").text

    def audit_latest_head(self) -> TreeHead:
        return build(TreeHead, self._json("GET", "/v1/audit/tree-heads/latest"))

    def audit_sign_head(self) -> TreeHead:
        return build(TreeHead, self._json("POST", "/v1/audit/tree-heads"))

    def audit_inclusion_proof(self, seq: int, tree_size: int | None = None) -> InclusionProof:
        params = {"seq": seq, **({"tree_size": tree_size} if tree_size is not None else {})}
        return InclusionProof.from_json(self._json("GET", "/v1/audit/proofs/inclusion", params=params))

    def audit_verify_inclusion(self, seq: int, public_key_pem: str, tree_size: int | None = None) -> bool:
        """Whether entry `seq` is in the log under a head signed by `public_key_pem` (checked here, not trusted)."""
        proof = self.audit_inclusion_proof(seq, tree_size)
        head = proof.tree_head
        if not head_signature_ok(public_key_pem, head.log_id, head.tree_size, head.timestamp_ms, head.root_hash,
                                 head.signature):
            return False
        return inclusion_ok(proof.leaf_hash, proof.seq, head.tree_size, proof.audit_path, head.root_hash)
