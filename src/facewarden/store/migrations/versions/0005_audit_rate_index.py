"""audit: composite index for the per-person limits (actor, operation, time)

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every verify, identify, search and export counts the caller's recent entries of a few operations:
    # with single-column indexes that count grew with a long-lived device key's whole history.
    op.create_index("ix_audit_entries_actor_operation_at", "audit_entries", ["actor", "operation", "at"])


def downgrade() -> None:
    op.drop_index("ix_audit_entries_actor_operation_at", table_name="audit_entries")
