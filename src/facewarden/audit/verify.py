"""`facewarden audit verify`: check the whole log against signed tree heads and witness copies, and name
what is wrong. Works from the stored rows alone: it never trusts a stored hash it can recompute.

Evidence, strongest first:
- heads held by witnesses (a rewrite by someone holding both the database and the signing key shows here);
- heads stored in the database, signed with the log key;
- per-entry receipts (signature over seq and leaf hash), which pin a change to the exact entry;
- each entry's stored leaf hash against its recomputed content.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from facewarden.audit.entries import ENTRY_FIELDS, canonical_entry
from facewarden.audit.merkle import MerkleTree, leaf_hash, verify_inclusion
from facewarden.audit.signing import LogPublicKey, SignedTreeHead, _unb64

# The kinds of tampering `audit verify` names.
ENTRY_CHANGED = "entry_changed"
ENTRY_DELETED = "entry_deleted"
ENTRY_INSERTED = "entry_inserted"
ENTRIES_REORDERED = "entries_reordered"
LOG_TRUNCATED = "log_truncated"
TREE_HEAD_FORGED = "tree_head_forged"
HISTORY_REWRITTEN = "history_rewritten"
KEY_MISMATCH = "key_mismatch"  # not tampering: the key given is not this log's

_KEY_PROBE = 32  # this many receipts in a row failing, from the start of the checked range, means a wrong key
_MAX_PAIRING = 64  # past this many unexplained rows, looking for swapped pairs costs more than it tells


@dataclass(frozen=True)
class Finding:
    kind: str
    message: str
    seq: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "seq": self.seq, "message": self.message}


@dataclass
class VerifyReport:
    entries: int = 0
    tree_size: int = 0
    heads_checked: int = 0
    witness_heads_checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.findings

    def kinds(self) -> set[str]:
        return {f.kind for f in self.findings}

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "tree_size": self.tree_size,
                "heads_checked": self.heads_checked, "witness_heads_checked": self.witness_heads_checked,
                "findings": [f.to_json() for f in self.findings], "warnings": self.warnings,
                "seconds": round(self.seconds, 3)}


class _Rows:
    """The stored rows in compact arrays: a million entries fit in ~130 MB."""

    def __init__(self) -> None:
        self.seqs = array("q")
        self.stored = bytearray()  # stored leaf hashes, 32 bytes each
        self.receipts = bytearray()  # 64 bytes each
        self.content_ok = bytearray()  # 1 if the content hashes to the stored leaf hash
        self.computed = MerkleTree()  # leaf hashes recomputed from content, in stored order

    def stored_leaf(self, i: int) -> bytes:
        return bytes(self.stored[i * 32:(i + 1) * 32])

    def receipt(self, i: int) -> bytes:
        return bytes(self.receipts[i * 64:(i + 1) * 64])


def _load(rows: Iterable[Any]) -> _Rows:
    out = _Rows()
    for row in rows:
        leaf = leaf_hash(canonical_entry({name: getattr(row, name) for name in ENTRY_FIELDS}))
        stored = bytes(row.leaf_hash)
        out.seqs.append(row.seq)
        out.stored += stored
        out.receipts += bytes(row.receipt).ljust(64, b"\0")[:64]
        out.content_ok.append(leaf == stored)
        out.computed.append(leaf)
    return out


def verify_log(rows: Iterable[Any], key: LogPublicKey, db_heads: Sequence[SignedTreeHead],
               witness_heads: Mapping[str, Sequence[SignedTreeHead]], *, state_size: int | None = None,
               witness_errors: Mapping[str, str] | None = None) -> VerifyReport:
    started = time.perf_counter()
    report = VerifyReport()
    data = _load(rows)
    n = len(data.seqs)
    report.entries = n
    for name, error in (witness_errors or {}).items():
        report.warnings.append(f"witness {name} could not be read: {error}")

    # 1. Tree heads must carry the log's signature.
    heads: list[tuple[SignedTreeHead, str]] = []
    head_findings: list[Finding] = []
    sources = [("database", h) for h in db_heads] + [(f"witness {w}", h) for w, hs in witness_heads.items()
                                                       for h in hs]
    for source, head in sources:
        if source == "database":
            report.heads_checked += 1
        else:
            report.witness_heads_checked += 1
        if key.verify_head(head):
            heads.append((head, source))
        else:
            head_findings.append(Finding(TREE_HEAD_FORGED, f"The tree head at size {head.tree_size} in the {source} "
                                         "is not signed by this log's key: it was forged or altered."))
    if report.witness_heads_checked == 0:
        report.warnings.append("No witness holds a tree head of this log: someone holding both the database and "
                               "the signing key could rewrite it unseen. Configure FACEWARDEN_AUDIT_WITNESSES.")
    heads.sort(key=lambda x: x[0].tree_size)

    # 2. Which heads the stored entries still hash to. Entries below the first mismatch are vouched for.
    mismatched = [(h, src) for h, src in heads if h.tree_size <= n
                  and data.computed.root(h.tree_size) != h.root_hash]
    first_bad = min((h.tree_size for h, _ in mismatched), default=None)
    vouched = max((h.tree_size for h, _ in heads if h.tree_size <= n
                   and (first_bad is None or h.tree_size < first_bad)), default=0)
    signed_size = max((h.tree_size for h, _ in heads), default=0)

    # 3. Entry by entry: sequence gaps, content against its leaf hash, receipts past what heads vouch for.
    entry_findings: list[Finding] = []
    expected = 0
    unsigned: list[int] = []
    checked = 0
    wrong_key = False
    for i in range(n):
        seq = data.seqs[i]
        if seq > expected:
            which = f"Entry {expected} is" if seq - expected == 1 else f"Entries {expected}-{seq - 1} are"
            entry_findings.append(Finding(ENTRY_DELETED, f"{which} missing from the log (deleted).", expected))
        expected = seq + 1
        if not data.content_ok[i]:
            entry_findings.append(Finding(ENTRY_CHANGED, f"Entry {seq} was changed: its content no longer matches "
                                          "its leaf hash.", seq))
        elif i >= vouched and not wrong_key:
            checked += 1
            if not key.verify_receipt(seq, data.stored_leaf(i), data.receipt(i)):
                unsigned.append(i)
            # No head and not one receipt verifies: this key signed nothing here. Stop before checking a million.
            wrong_key = not heads and checked == _KEY_PROBE and len(unsigned) == _KEY_PROBE
    if wrong_key:
        report.findings = [Finding(KEY_MISMATCH, "Neither the tree heads nor the entries' receipts verify with this "
                                   "public key: it is not this log's key (check --public-key), or every "
                                   "signature was replaced."), *head_findings]
        report.seconds = time.perf_counter() - started
        return report
    hidden_deletions = _name_unsigned(data, key, unsigned, max(signed_size, state_size or 0), entry_findings)

    # 4. Truncation: heads or the log's own counter promise more entries than are there.
    last = data.seqs[-1] if n else -1
    promised = max(signed_size, state_size or 0)
    report.tree_size = promised
    if promised > last + 1 + hidden_deletions:
        entry_findings.append(Finding(LOG_TRUNCATED, f"The log ends at entry {last} but it had {promised} entries "
                                      f"(signed or counted): entries {last + 1}-{promised - 1} were cut off.",
                                      last + 1))

    # 5. Heads that still disagree once every entry checks out: rewritten with the signing key.
    if not entry_findings:
        for head, source in mismatched:
            kind = TREE_HEAD_FORGED if source == "database" else HISTORY_REWRITTEN
            head_findings.append(Finding(kind, f"Entries 0-{head.tree_size - 1} no longer hash to the root the "
                                         f"{source} holds for size {head.tree_size} (signed at "
                                         f"{head.timestamp_ms} ms): the history was rewritten with the signing key, "
                                         "or the head was forged with it."))
    report.findings = entry_findings + head_findings
    report.seconds = time.perf_counter() - started
    return report


def _name_unsigned(data: _Rows, key: LogPublicKey, unsigned: list[int], known_size: int,
                   findings: list[Finding]) -> int:
    """Name rows whose receipt does not verify at their position: moved, inserted or rewritten. A row past
    every size the log ever signed or counted (`known_size`) was inserted; one before it was rewritten.
    Returns how many deletions were hidden by renumbering."""
    seqs = data.seqs

    def signed_for(i: int, seq: int) -> bool:
        return seq >= 0 and key.verify_receipt(seq, data.stored_leaf(i), data.receipt(i))

    up = {i for i in unsigned if signed_for(i, seqs[i] - 1)}  # renumbered +1
    down = {i for i in unsigned if i not in up and signed_for(i, seqs[i] + 1)}  # renumbered -1
    named: set[int] = set()
    for i in sorted(down):  # neighbours that swapped places look like one of each
        if i + 1 in up and seqs[i + 1] == seqs[i] + 1:
            down.discard(i)
            up.discard(i + 1)
            named |= {i, i + 1}
            findings.append(Finding(ENTRIES_REORDERED, f"Entries {seqs[i]} and {seqs[i + 1]} swapped places.",
                                    seqs[i]))
    rest = [i for i in unsigned if i not in up and i not in down and i not in named]
    if len(rest) > _MAX_PAIRING:
        findings.append(Finding(ENTRY_CHANGED, f"{len(rest)} entries between {seqs[rest[0]]} and {seqs[rest[-1]]} "
                                "carry receipts that no longer verify: they were rewritten together with their "
                                "hashes.", seqs[rest[0]]))
        rest = []
    inserted_before: set[int] = set()
    for i in rest:
        if i in named:
            continue
        named.add(i)
        partner = next((j for j in rest if j not in named and signed_for(i, seqs[j]) and signed_for(j, seqs[i])),
                       None)
        if partner is not None:
            named.add(partner)
            findings.append(Finding(ENTRIES_REORDERED, f"Entries {seqs[i]} and {seqs[partner]} swapped places.",
                                    min(seqs[i], seqs[partner])))
        elif i + 1 in up:
            inserted_before.add(i + 1)
            findings.append(Finding(ENTRY_INSERTED, f"Entry {seqs[i]} was inserted: the log never signed it, and "
                                    "the entries after it were renumbered.", seqs[i]))
        elif seqs[i] >= known_size:
            findings.append(Finding(ENTRY_INSERTED, f"Entry {seqs[i]} was inserted: the log never signed it.",
                                    seqs[i]))
        else:
            findings.append(Finding(ENTRY_CHANGED, f"Entry {seqs[i]} was rewritten together with its leaf hash: "
                                    "its receipt no longer verifies.", seqs[i]))
    for i in sorted(up):
        if i - 1 not in up and i not in inserted_before:
            findings.append(Finding(ENTRY_INSERTED, f"Entries from {seqs[i]} on were renumbered up by one: an entry "
                                    "was inserted before them.", seqs[i]))
    runs = [i for i in sorted(down) if i - 1 not in down]
    for i in runs:
        findings.append(Finding(ENTRY_DELETED, f"Entry {seqs[i]} was deleted and the entries after it were "
                                "renumbered down to hide the gap.", seqs[i]))
    return len(runs)


# -- exports for outside auditors ---------------------------------------------------------------
def verify_export(bundle: Mapping[str, Any], pinned_key: LogPublicKey | None = None) -> VerifyReport:
    """Check an exported period with nothing but the bundle (and, better, the log's key from elsewhere)."""
    started = time.perf_counter()
    report = VerifyReport()
    key = pinned_key or LogPublicKey.from_pem(bundle["public_key"].encode())
    if bundle.get("log_id") != key.log_id:
        report.findings.append(Finding(TREE_HEAD_FORGED, "The export's log id is not the pinned log key's."))
        return report
    head = SignedTreeHead.from_json(bundle["tree_head"])
    report.heads_checked = 1
    report.tree_size = head.tree_size
    if not key.verify_head(head):
        report.findings.append(Finding(TREE_HEAD_FORGED, "The export's tree head is not signed by the log key."))
        return report
    if pinned_key is None:
        report.warnings.append(f"The log key came from the export itself; compare its log id {key.log_id} with "
                               "the one the operator published.")
    seen: set[int] = set()
    for entry in bundle.get("entries", []):
        report.entries += 1
        seq = int(entry["seq"])
        if seq in seen:
            report.findings.append(Finding(ENTRY_INSERTED, f"Entry {seq} appears twice in the export.", seq))
        seen.add(seq)
        leaf = leaf_hash(canonical_entry({name: entry[name] for name in ENTRY_FIELDS}))
        proof = [_unb64(p) for p in entry.get("audit_path", [])]
        if not verify_inclusion(leaf, seq, head.tree_size, proof, head.root_hash):
            report.findings.append(Finding(ENTRY_CHANGED, f"Entry {seq} is not the entry the log holds at that "
                                           "position: its content or proof was altered.", seq))
    report.seconds = time.perf_counter() - started
    return report
