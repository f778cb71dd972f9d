"""Witnesses: copies of signed tree heads held outside the database, by another party.

Once a head is at a witness, whoever holds the database *and* the signing key can no longer rewrite the
history it covers without `audit verify` noticing. Two kinds:
- `FileWitness`: appends heads to a file (mount it from another machine, or WORM storage);
- `HttpWitness`: posts heads with a consistency proof to a `facewarden witness serve` run by another party,
  which checks the proof and refuses a head that rewrites what it saw before.
"""

from __future__ import annotations

import json
import os
import ssl
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from facewarden.audit.merkle import verify_consistency
from facewarden.audit.signing import LogPublicKey, LogSigner, SignedTreeHead, _b64, _unb64
from facewarden.errors import Conflict, InvalidInput, NotFound, UpstreamFailure

ProofSource = Callable[[int, int], list[bytes]]  # (old size, new size) -> consistency proof


class WitnessError(UpstreamFailure):
    code = "witness_unavailable"


def _append_line(path: Path, line: str) -> None:
    """Append one line and fsync it: a head a witness acknowledged must survive a crash."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


class Witness(ABC):
    name: str

    @abstractmethod
    def publish(self, head: SignedTreeHead, log: LogPublicKey, proof_source: ProofSource) -> None: ...

    @abstractmethod
    def heads(self, log: LogPublicKey) -> list[SignedTreeHead]: ...

    def close(self) -> None:
        """Only network witnesses hold connections."""
        return None


class FileWitness(Witness):
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = f"file:{self.path}"
        self._lock = threading.Lock()

    def publish(self, head: SignedTreeHead, log: LogPublicKey, proof_source: ProofSource) -> None:
        with self._lock:
            _append_line(self.path, json.dumps(head.to_json(log.log_id), sort_keys=True))

    def heads(self, log: LogPublicKey) -> list[SignedTreeHead]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            if line.strip():
                doc = json.loads(line)
                if doc.get("log_id") == log.log_id:
                    out.append(SignedTreeHead.from_json(doc))
        return out


class HttpWitness(Witness):
    def __init__(self, url: str, *, verify: str | bool | ssl.SSLContext = True, timeout: float = 5.0,
                 client: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        self.name = self.url
        if isinstance(verify, str):  # a CA bundle for a witness with a private certificate
            verify = ssl.create_default_context(cafile=verify)
        self._client = client or httpx.Client(verify=verify, timeout=timeout)

    def _latest(self, log: LogPublicKey) -> SignedTreeHead | None:
        heads = self.heads(log)
        return max(heads, key=lambda h: h.tree_size) if heads else None

    def publish(self, head: SignedTreeHead, log: LogPublicKey, proof_source: ProofSource) -> None:
        latest = self._latest(log)
        proof = proof_source(latest.tree_size, head.tree_size) if latest and latest.tree_size <= head.tree_size \
            else []
        try:
            r = self._client.post(f"{self.url}/v1/logs/{log.log_id}/heads",
                                  json={"head": head.to_json(log.log_id), "proof": [_b64(p) for p in proof]})
        except httpx.HTTPError as exc:
            raise WitnessError(f"Witness {self.url} is unreachable ({exc}).") from exc
        if r.status_code != 200:
            raise WitnessError(f"Witness {self.url} refused the tree head at size {head.tree_size}: "
                               f"{r.status_code} {r.text[:300]}", code="witness_refused")

    def close(self) -> None:
        self._client.close()

    def heads(self, log: LogPublicKey) -> list[SignedTreeHead]:
        try:
            r = self._client.get(f"{self.url}/v1/logs/{log.log_id}/heads")
        except httpx.HTTPError as exc:
            raise WitnessError(f"Witness {self.url} is unreachable ({exc}).") from exc
        if r.status_code == 404:
            return []
        r.raise_for_status()
        return [SignedTreeHead.from_json(doc) for doc in r.json()["heads"]]


def make_witness(target: str, *, verify: str | bool = True) -> Witness:
    if target.startswith(("https://", "http://")):
        return HttpWitness(target, verify=verify)
    return FileWitness(Path(target.removeprefix("file://")))


class WitnessLedger:
    """The witness's side: accepts a head only if it is signed by the log's key and consistent with every head
    it accepted before, then countersigns it. Kept in one JSON-lines file per log."""

    def __init__(self, directory: Path, logs: Sequence[LogPublicKey], signer: LogSigner) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.logs = {log.log_id: log for log in logs}
        self.signer = signer
        self._lock = threading.Lock()

    def _file(self, log_id: str) -> Path:
        return self.directory / f"{log_id}.jsonl"

    def heads(self, log_id: str) -> list[dict[str, Any]]:
        if log_id not in self.logs:
            raise NotFound("This witness does not follow that log.", code="unknown_log")
        path = self._file(log_id)
        return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []

    def accept(self, log_id: str, head_doc: dict[str, Any], proof_b64: Sequence[str]) -> dict[str, Any]:
        log = self.logs.get(log_id)
        if log is None or head_doc.get("log_id") != log_id:
            raise NotFound("This witness does not follow that log.", code="unknown_log")
        head = SignedTreeHead.from_json(head_doc)
        if not log.verify_head(head):
            raise InvalidInput("The tree head's signature does not verify with the log's key.",
                               code="bad_signature")
        try:
            proof = [_unb64(p) for p in proof_b64]
        except ValueError as exc:
            raise InvalidInput("The consistency proof is not base64.", code="bad_proof") from exc
        with self._lock:
            seen = self.heads(log_id)
            if seen:
                last = SignedTreeHead.from_json(max(seen, key=lambda d: d["tree_size"]))
                if head.tree_size < last.tree_size:
                    raise Conflict(f"The log already showed this witness size {last.tree_size}; a smaller head "
                                   "means it was truncated.", code="log_truncated")
                if not verify_consistency(last.tree_size, head.tree_size, last.root_hash, head.root_hash, proof):
                    raise Conflict(f"The head at size {head.tree_size} is not consistent with the head at size "
                                   f"{last.tree_size} this witness holds: the log's history was rewritten.",
                                   code="inconsistent_head")
            record = head.to_json(log_id)
            record["witness_id"] = self.signer.log_id
            record["cosignature"] = _b64(self.signer.sign_head(head.tree_size, head.timestamp_ms,
                                                               head.root_hash).signature)
            _append_line(self._file(log_id), json.dumps(record, sort_keys=True))
        return record
