"""The append-only audit log: entries appended inside the caller's transaction, signed tree heads, proofs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from facewarden.audit.entries import ENTRY_FIELDS, AuditEvent, canonical_entry
from facewarden.audit.merkle import MerkleTree, compact_range_append, compact_range_root, leaf_hash
from facewarden.audit.signing import LogPublicKey, LogSigner, SignedTreeHead, _b64
from facewarden.audit.verify import VerifyReport, verify_log
from facewarden.audit.witness import Witness
from facewarden.errors import FaceWardenError, IntegrityFailure, InvalidInput, NotFound
from facewarden.store import AuditEntry, AuditState, AuditTreeHead, Database

log = logging.getLogger("facewarden.audit")

# Built once: an append runs on every request, and building statements was half of its cost.
_LOCK_STATE = select(AuditState.size, AuditState.frontier).where(AuditState.id == 1).with_for_update()
_INSERT_ENTRY = AuditEntry.__table__.insert()
_UPDATE_STATE = (AuditState.__table__.update().where(AuditState.__table__.c.id == 1)
                 .values(size=bindparam("new_size"), frontier=bindparam("new_frontier")))
ROW_COLUMNS = (AuditEntry.seq, *(getattr(AuditEntry, name) for name in ENTRY_FIELDS),
               AuditEntry.leaf_hash, AuditEntry.receipt)
MAX_QUERY_ROWS = 10_000


def _split(frontier: bytes) -> list[bytes]:
    return [frontier[i:i + 32] for i in range(0, len(frontier), 32)]


@dataclass(frozen=True)
class AuditQuery:
    tenant_id: str | None = None  # None: every tenant (the local administrator only)
    actor: str | None = None
    subject_id: str | None = None
    case_id: str | None = None
    operation: str | None = None
    since: str | None = None  # ISO 8601 UTC, inclusive
    until: str | None = None  # exclusive
    after_seq: int = -1
    limit: int = 1000


def row_json(row: Any) -> dict[str, Any]:
    doc = {"seq": row.seq, **{name: getattr(row, name) for name in ENTRY_FIELDS}}
    doc["leaf_hash"] = _b64(row.leaf_hash)
    doc["receipt"] = _b64(row.receipt)
    return doc


class AuditLog:
    def __init__(self, db: Database, signer: LogSigner, witnesses: Sequence[Witness] = ()) -> None:
        self.db = db
        self.signer = signer
        self.witnesses = list(witnesses)
        self.witness_errors: dict[str, str] = {}
        self._tree = MerkleTree()  # this process's copy of the stored leaf hashes, for proofs
        self._tree_lock = threading.Lock()

    # -- writing -----------------------------------------------------------------------------
    def append(self, s: Session, event: AuditEvent) -> int:
        """Append one entry inside the caller's transaction; returns its sequence number.

        The row lock on audit_state (BEGIN IMMEDIATE on SQLite) serialises appends, so sequence numbers have
        no gaps and the compact range stays exact. Call it last in a unit of work: the lock is held to commit.
        """
        size, frontier = s.execute(_LOCK_STATE).one()
        values = event.values()  # stamped under the lock, so time order is log order
        leaf = leaf_hash(canonical_entry(values))
        new_frontier = compact_range_append(_split(frontier), size, leaf)
        s.execute(_INSERT_ENTRY, {**values, "seq": size, "leaf_hash": leaf,
                                  "receipt": self.signer.sign_receipt(size, leaf)})
        s.execute(_UPDATE_STATE, {"new_size": size + 1, "new_frontier": b"".join(new_frontier)})
        s.info.setdefault("after_commit", []).append(lambda: setattr(event, "committed", True))
        return size

    def record(self, event: AuditEvent) -> int:
        """Append in a transaction of its own (refusals, failed logins, operations outside the database)."""
        with self.db.session() as s:
            return self.append(s, event)

    # -- tree heads --------------------------------------------------------------------------
    def _sync_tree(self) -> MerkleTree:
        """Bring this process's tree up to date with the stored leaf hashes."""
        with self._tree_lock, self.db.session(readonly=True) as s:
            rows = s.execute(select(AuditEntry.seq, AuditEntry.leaf_hash)
                             .where(AuditEntry.seq >= self._tree.size).order_by(AuditEntry.seq)
                             .execution_options(yield_per=10_000))
            for seq, leaf in rows:
                if seq != self._tree.size:
                    raise IntegrityFailure(f"The audit log has no entry {self._tree.size}; it was tampered with. "
                                           "Run `facewarden audit verify` to see what changed.", code="audit_gap")
                self._tree.append(bytes(leaf))
            return self._tree

    def sign_head(self, *, force: bool = False) -> SignedTreeHead:
        """Sign the current tree head, store it and hand it to the witnesses. Refuses to sign a log whose
        stored state disagrees with its stored leaf hashes."""
        self._sync_tree()  # read new leaves before taking the lock, so appends wait only for the last few
        with self.db.session() as s:
            # Locked like an append: two signers at once would otherwise store the same size twice.
            size, frontier = s.execute(_LOCK_STATE).one()
            root = compact_range_root(_split(frontier))
            latest = self._latest_head(s)
            if latest is not None and latest.tree_size == size and not force:
                return latest
            if latest is not None and latest.tree_size > size:
                raise IntegrityFailure(f"The log has {size} entries but signed {latest.tree_size} before: it was "
                                       "truncated. Run `facewarden audit verify`.", code="audit_truncated")
            tree = self._sync_tree()
            if tree.size < size or tree.root(size) != root:
                raise IntegrityFailure("The audit log's stored state does not match its entries; refusing to sign. "
                                       "Run `facewarden audit verify`.", code="audit_inconsistent")
            head = self.signer.sign_head(size, int(time.time() * 1000), root)
            if latest is not None and latest.tree_size == size:
                s.execute(update(AuditTreeHead).where(AuditTreeHead.tree_size == size).values(
                    timestamp_ms=head.timestamp_ms, root_hash=head.root_hash, signature=head.signature))
            else:
                s.add(AuditTreeHead(tree_size=size, timestamp_ms=head.timestamp_ms, root_hash=root,
                                    signature=head.signature))
        self.publish(head)
        return head

    def start_signer(self, interval_s: float) -> threading.Event:
        """Sign and publish a new head every `interval_s` while the log grows; set the returned event to stop.
        The interval bounds how long an entry waits before a witness holds a head that covers it."""
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(interval_s):
                try:
                    self.sign_head()
                except Exception:  # keep signing later; the failure is logged, not fatal to the service
                    log.exception("signing the audit tree head failed")

        threading.Thread(target=run, name="audit-signer", daemon=True).start()
        return stop

    def publish(self, head: SignedTreeHead) -> None:
        """Hand a head to every witness. A witness that is down does not stop the service; it is reported."""
        for witness in self.witnesses:
            try:
                witness.publish(head, self.signer, self._consistency_for_witness)
                self.witness_errors.pop(witness.name, None)
            except FaceWardenError as exc:
                self.witness_errors[witness.name] = exc.message
                log.error("audit witness %s: %s", witness.name, exc.message)

    def _consistency_for_witness(self, old: int, new: int) -> list[bytes]:
        return self._sync_tree().consistency_proof(old, new)

    @staticmethod
    def _latest_head(s: Session) -> SignedTreeHead | None:
        row = s.scalars(select(AuditTreeHead).order_by(AuditTreeHead.tree_size.desc()).limit(1)).first()
        return SignedTreeHead(row.tree_size, row.timestamp_ms, row.root_hash, row.signature) if row else None

    def latest_head(self) -> SignedTreeHead:
        with self.db.session(readonly=True) as s:
            head = self._latest_head(s)
        return head if head is not None else self.sign_head()

    def stored_heads(self) -> list[SignedTreeHead]:
        with self.db.session(readonly=True) as s:
            return [SignedTreeHead(r.tree_size, r.timestamp_ms, r.root_hash, r.signature)
                    for r in s.scalars(select(AuditTreeHead).order_by(AuditTreeHead.tree_size))]

    def head_for(self, seq: int) -> SignedTreeHead:
        """The latest signed head, signing a new one if the entry is not covered yet."""
        head = self.latest_head()
        return head if head.tree_size > seq else self.sign_head()

    # -- proofs ------------------------------------------------------------------------------
    def inclusion_proof(self, seq: int, tree_size: int | None = None) -> dict[str, Any]:
        head = self._head_of_size(tree_size) if tree_size is not None else self.head_for(seq)
        if not 0 <= seq < head.tree_size:
            raise InvalidInput(f"Entry {seq} is not in the tree of size {head.tree_size}.", code="not_in_tree")
        tree = self._sync_tree()
        return {"seq": seq, "leaf_hash": _b64(tree.leaf(seq)), "tree_head": head.to_json(self.signer.log_id),
                "audit_path": [_b64(h) for h in tree.inclusion_proof(seq, head.tree_size)]}

    def consistency_proof(self, first: int, second: int | None = None) -> dict[str, Any]:
        old = self._head_of_size(first)
        new = self._head_of_size(second) if second is not None else self.latest_head()
        if old.tree_size > new.tree_size:
            raise InvalidInput("`first` must not be larger than `second`.", code="bad_range")
        tree = self._sync_tree()
        return {"first": old.to_json(self.signer.log_id), "second": new.to_json(self.signer.log_id),
                "consistency_path": [_b64(h) for h in tree.consistency_proof(old.tree_size, new.tree_size)]}

    def _head_of_size(self, size: int) -> SignedTreeHead:
        with self.db.session(readonly=True) as s:
            row = s.get(AuditTreeHead, size)
            if row is None:
                raise NotFound(f"No signed tree head of size {size}; list the stored tree heads.")
            return SignedTreeHead(row.tree_size, row.timestamp_ms, row.root_hash, row.signature)

    # -- reading -----------------------------------------------------------------------------
    def query(self, q: AuditQuery) -> list[dict[str, Any]]:
        if not 1 <= q.limit <= MAX_QUERY_ROWS:
            raise InvalidInput(f"`limit` must be 1-{MAX_QUERY_ROWS}.", code="invalid_limit")
        stmt = select(*ROW_COLUMNS).where(AuditEntry.seq > q.after_seq)
        for column, value in ((AuditEntry.tenant_id, q.tenant_id), (AuditEntry.actor, q.actor),
                              (AuditEntry.subject_id, q.subject_id), (AuditEntry.case_id, q.case_id),
                              (AuditEntry.operation, q.operation)):
            if value is not None:
                stmt = stmt.where(column == value)
        if q.since:
            stmt = stmt.where(AuditEntry.at >= q.since)
        if q.until:
            stmt = stmt.where(AuditEntry.at < q.until)
        with self.db.session(readonly=True) as s:
            return [row_json(r) for r in s.execute(stmt.order_by(AuditEntry.seq).limit(q.limit))]

    def export(self, q: AuditQuery) -> dict[str, Any]:
        """A period's entries with an inclusion proof each against one signed head: an outside auditor checks
        it with `facewarden audit verify-export` and the log's public key alone."""
        entries = self.query(q)
        head = self.head_for(max((e["seq"] for e in entries), default=0))
        tree = self._sync_tree()
        for e in entries:
            e["audit_path"] = [_b64(h) for h in tree.inclusion_proof(e["seq"], head.tree_size)]
        return {"format": "facewarden-audit-export/1", "log_id": self.signer.log_id,
                "public_key": self.signer.pem(), "tree_head": head.to_json(self.signer.log_id),
                "query": {k: v for k, v in q.__dict__.items() if v is not None}, "entries": entries}

    def iter_rows(self, batch: int = 20_000) -> Iterator[Any]:
        """Every stored entry in sequence order, streamed (for the verifier)."""
        with self.db.session(readonly=True) as s:
            yield from s.execute(select(*ROW_COLUMNS).order_by(AuditEntry.seq).execution_options(yield_per=batch))

    def state_size(self) -> int:
        with self.db.session(readonly=True) as s:
            return int(s.scalar(select(AuditState.size)) or 0)

    def verify(self, key: LogPublicKey | None = None, extra_witnesses: Sequence[Witness] = ()) -> VerifyReport:
        """Check every stored entry against the stored heads and every witness's copies. `key` pins the log's
        public key from somewhere else than the key file next to the database."""
        witness_heads: dict[str, list[SignedTreeHead]] = {}
        errors: dict[str, str] = {}
        key = key or self.signer.public()
        for witness in [*self.witnesses, *extra_witnesses]:
            try:
                witness_heads[witness.name] = witness.heads(key)
            except (FaceWardenError, OSError, ValueError) as exc:
                errors[witness.name] = str(exc)
        return verify_log(self.iter_rows(), key, self.stored_heads(), witness_heads,
                          state_size=self.state_size(), witness_errors=errors)
