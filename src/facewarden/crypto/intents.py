"""The intent journal's vocabulary: which record a key id belongs to, who wrote an intent and whether that
process is certainly gone, and what a recovery pass did. The journal itself is in datakeys.py; `KeyRing`
(keyring.py) writes and resolves it."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["KeyRef", "KeyUse", "RecoveryReport", "Resolver", "key_uses", "owner_is_dead", "process_token"]

# Which main-database record a key id may belong to: (kind, ids). A tenant could be named like a prefix, so
# every reading is returned and a key counts as used if any of them is.
KeyUse = tuple[str, tuple[str, ...]]
Resolver = Callable[[list[str]], set[str]]  # key ids -> those the main database still uses


def key_uses(key_id: str) -> list[KeyUse]:
    uses: list[KeyUse] = []
    head, sep, rest = key_id.partition("/")
    if not sep:
        return uses
    if head == "le-request":
        uses.append(("probe", (rest,)))
    if head == "liveness":
        uses.append(("liveness", (rest,)))
    tenant, _, subject = key_id.rpartition("/")  # subject ids are UUIDs; a tenant id might hold a slash
    uses.append(("subject", (tenant, subject)))
    return uses


@dataclass(frozen=True)
class KeyRef:
    """One data key, named for the intent journal; use cases pass it back to the key ring and never look in."""

    key_id: str


def _proc_stat_start(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]  # field 22, the start time in clock ticks
    except (OSError, IndexError):
        return None


def _host_identity() -> str:
    """Host, boot and PID namespace: two processes with equal identities see each other's PIDs."""
    parts = [socket.gethostname()]
    for path in ("/proc/sys/kernel/random/boot_id",):
        try:
            with open(path) as fh:
                parts.append(fh.read().strip())
        except OSError:
            parts.append("?")
    try:
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:
        parts.append("?")
    return "|".join(parts)


def process_token() -> str:
    """Who writes an intent: host identity, PID and the PID's start time (so a reused PID is not mistaken)."""
    pid = os.getpid()
    return f"{_host_identity()}|{pid}|{_proc_stat_start(pid) or '?'}"


def owner_is_dead(owner: str) -> bool:
    """True only when certain: the owner ran on this host, boot and PID namespace and its process is gone.
    Anything else (another machine, no /proc) waits for the grace period."""
    host, _, rest = owner.rpartition("|")  # rest: start time
    host, _, pid = host.rpartition("|")
    if "?" in host or host != _host_identity() or not pid.isdigit():
        return False
    return _proc_stat_start(int(pid)) != rest


@dataclass
class RecoveryReport:
    created_kept: int = 0  # the main transaction committed: the intent is cleared
    created_discarded: int = 0  # it never committed: the key is destroyed (an orphan avoided)
    shreds_finished: int = 0  # the erasure committed: the key is destroyed now
    shreds_undone: int = 0  # the erasure never committed: the key stays, the records still use it
    waiting: int = 0  # intents of live processes, or younger than the grace period
    orphans: int | None = None  # keys nothing uses and no intent explains (only when asked for)
    orphans_purged: int = 0

    def resolved(self) -> int:
        return self.created_kept + self.created_discarded + self.shreds_finished + self.shreds_undone

    def as_dict(self) -> dict[str, Any]:
        out = {"created_kept": self.created_kept, "created_discarded": self.created_discarded,
               "shreds_finished": self.shreds_finished, "shreds_undone": self.shreds_undone,
               "waiting": self.waiting}
        if self.orphans is not None:
            out.update(orphans=self.orphans, orphans_purged=self.orphans_purged)
        return out
