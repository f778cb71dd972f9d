"""Subject references (the operator's id for a person): one canonical form, one comparison key, one set of rules.

Without this, ` obama` and `OBAMA` were two people, and `/`, `.` or `..` could be enrolled but never reached
through a URL (clients and proxies resolve dot segments; a slash splits the path). Every subject reference that
enters a use case passes through `canonical_reference`; two references name the same person when their
`reference_key`s are equal.

Stored references are never rewritten: the canonical form keeps its case (what the operator sees and gets back),
and records stored before these rules are still found by their exact text or by their key.
"""

from __future__ import annotations

import unicodedata

from facewarden.errors import InvalidInput

MAX_REFERENCE_CHARS = 200  # the column's width
_SEPARATORS = frozenset("/\\")


def _refuse(rule: str) -> InvalidInput:
    return InvalidInput(f"Invalid subject reference: {rule}. A subject reference is 1-{MAX_REFERENCE_CHARS} "
                        "characters, without control characters or path separators (/ and \\), and not made only "
                        "of dots; case and surrounding spaces do not distinguish two people.", code="invalid_subject")


def _forbidden_char(ch: str) -> bool:
    # C*: control, format (zero-width), surrogate, private-use, unassigned; Zl/Zp: line and paragraph separators
    category = unicodedata.category(ch)
    return category[0] == "C" or category in ("Zl", "Zp")


def canonical_reference(raw: object) -> str:
    """The stored form of a new reference: NFKC, surrounding whitespace stripped, case kept; or InvalidInput
    (`invalid_subject`) naming the rule broken."""
    if not isinstance(raw, str):
        raise _refuse("it must be text")
    ref = unicodedata.normalize("NFKC", raw).strip()
    if not ref:
        raise _refuse("it is empty")
    if len(ref) > MAX_REFERENCE_CHARS:
        raise _refuse(f"it is {len(ref)} characters long")
    if any(_forbidden_char(ch) for ch in ref):
        raise _refuse("it contains a control or invisible formatting character")
    if _SEPARATORS & set(ref):
        raise _refuse("it contains a path separator")
    if set(ref) == {"."}:
        raise _refuse("it is made only of dots")
    return ref


def reference_key(ref: str) -> str:
    """What two references are compared by: Unicode NFKC case folding (`Straße` = `STRASSE`, ` obama` = `OBAMA`).

    Total, so that it also applies to references stored before the rules (which may break them)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", ref).strip().casefold())
