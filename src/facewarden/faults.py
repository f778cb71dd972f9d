"""Test-only crash points for the kill tests (tests/e2e/test_crash_consistency.py, bench/bench_crash.py).

Inert unless the environment variable FACEWARDEN_TEST_FAULTS is set when the process starts (it is not a
setting: no env file or FACEWARDEN_* setting can turn it on, and `serve` warns loudly when it is set).
Its value is a comma-separated list of `point` or `point:n` (SIGKILL this process the n-th time, default 1st,
that `point` is reached); the word `no-recovery` turns the key-intent recovery pass off, for the bench's
baseline. Points: enrol.key_created, enrol.committed, erase.intent_written, erase.committed, rotate.rewrapped,
rotate.before_retire.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("FACEWARDEN_TEST_FAULTS", "")
_WANTED: dict[str, int] = {}
for _item in filter(None, (part.strip() for part in _SPEC.split(","))):
    _name, _, _nth = _item.partition(":")
    _WANTED[_name] = int(_nth or 1)
_SEEN: dict[str, int] = {}

ACTIVE = bool(_WANTED)
RECOVERY_DISABLED = "no-recovery" in _WANTED


def crash_point(name: str) -> None:
    """SIGKILL this process here if the test environment asked for it; a no-op otherwise."""
    if not ACTIVE or name not in _WANTED:
        return
    _SEEN[name] = _SEEN.get(name, 0) + 1
    if _SEEN[name] == _WANTED[name]:
        os.kill(os.getpid(), signal.SIGKILL)
