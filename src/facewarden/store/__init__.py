"""Relational storage: SQLAlchemy tables, engine set-up and Alembic migrations."""

from facewarden.store.db import Database
from facewarden.store.models import (
    ApiKey,
    AuditEntry,
    AuditState,
    AuditTreeHead,
    Base,
    ServiceState,
    Subject,
    Template,
    Tenant,
)

__all__ = ["ApiKey", "AuditEntry", "AuditState", "AuditTreeHead", "Base", "Database", "ServiceState", "Subject",
           "Template", "Tenant"]
