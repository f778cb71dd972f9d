"""Roles carried by API keys and what each may do."""

from __future__ import annotations

ADMIN = "admin"  # manages keys, API keys and key rotation
OPERATOR = "operator"  # enrols, identifies, erases, exports; sees match scores
VERIFIER = "verifier"  # a device or app: verifies and unlocks only, sees decisions without scores
AUDITOR = "auditor"  # reads and exports the audit log and its proofs; never face data

ALL_ROLES = frozenset({ADMIN, OPERATOR, VERIFIER, AUDITOR})
