"""audit log: Merkle leaves, signed tree heads, compact range; append-only triggers

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Defence in depth: the application never updates or deletes audit rows, so the database refuses it.
# An insider with DDL rights can drop these triggers; `facewarden audit verify` still catches the edit.
_SQLITE_TRIGGERS = [
    """CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
       BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END""",
    """CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
       BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END""",
]
_PG_TRIGGERS = [
    """CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'audit entries are append-only'; END $$""",
    """CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_entries
       FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()""",
]


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("operation", sa.String(length=40), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=True),
        sa.Column("case_id", sa.String(length=64), nullable=True),
        sa.Column("purpose", sa.String(length=64), nullable=True),
        sa.Column("legal_basis", sa.String(length=32), nullable=True),
        sa.Column("outcome", sa.String(length=64), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("receipt", sa.LargeBinary(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    for column in ("at", "tenant_id", "actor", "operation", "subject_id", "case_id"):
        op.create_index(f"ix_audit_entries_{column}", "audit_entries", [column])
    op.create_table(
        "audit_tree_heads",
        sa.Column("tree_size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tree_size"),
    )
    state = op.create_table(
        "audit_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("frontier", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(state, [{"id": 1, "size": 0, "frontier": b""}])
    triggers = _PG_TRIGGERS if op.get_bind().dialect.name == "postgresql" else _SQLITE_TRIGGERS
    for statement in triggers:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_entries_append_only ON audit_entries")
        op.execute("DROP FUNCTION audit_append_only()")
    op.drop_table("audit_state")
    op.drop_table("audit_tree_heads")
    for column in ("at", "tenant_id", "actor", "operation", "subject_id", "case_id"):
        op.drop_index(f"ix_audit_entries_{column}", table_name="audit_entries")
    op.drop_table("audit_entries")
