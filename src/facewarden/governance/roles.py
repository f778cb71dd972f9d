"""Roles carried by API keys and what each may do."""

from __future__ import annotations

ADMIN = "admin"  # manages keys, API keys and key rotation
OPERATOR = "operator"  # enrols, identifies, erases, exports; sees match scores
VERIFIER = "verifier"  # a device or app: verifies and unlocks only, sees decisions without scores
AUDITOR = "auditor"  # reads and exports the audit log and its proofs; never face data
REVIEWER = "reviewer"  # at the agency administering a database: approves police requests, confirms leads
INVESTIGATOR = "investigator"  # at a requesting law-enforcement agency: files requests, runs granted searches
SUBJECT = "subject"  # the enrolled person, acting on their own record through their subject credential
METRICS = "metrics"  # a monitoring scraper: reads /metrics (counts, sizes, latencies), nothing else

ALL_ROLES = frozenset({ADMIN, OPERATOR, VERIFIER, AUDITOR, REVIEWER, INVESTIGATOR, METRICS})  # grantable to API keys
PERSONAL_ROLES = frozenset({ADMIN, REVIEWER, INVESTIGATOR})  # keys with these must belong to a named person

# Searches over a gallery, counted together against one person's daily limit.
SEARCH_OPERATIONS = ("identify", "le_search", "le_emergency_search")
