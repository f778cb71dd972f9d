"""Relational storage: SQLAlchemy tables, engine set-up and Alembic migrations."""

from facewarden.store.db import Database
from facewarden.store.models import (
    ApiKey,
    AuditEntry,
    AuditState,
    AuditTreeHead,
    Base,
    LawEnforcementPolicy,
    LeCandidate,
    LeSearch,
    PendingAction,
    Person,
    Purpose,
    SearchGrant,
    SearchRequest,
    ServiceState,
    Subject,
    Template,
    Tenant,
)

__all__ = [
    "ApiKey",
    "AuditEntry",
    "AuditState",
    "AuditTreeHead",
    "Base",
    "Database",
    "LawEnforcementPolicy",
    "LeCandidate",
    "LeSearch",
    "PendingAction",
    "Person",
    "Purpose",
    "SearchGrant",
    "SearchRequest",
    "ServiceState",
    "Subject",
    "Template",
    "Tenant",
]
