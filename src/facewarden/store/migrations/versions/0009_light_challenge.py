"""the active light challenge: a per-purpose setting, each session's colour sequence, and the capture page's
per-session token (its SHA-256 only)

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("purposes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("light_challenge", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("liveness_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("light", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("capture_token", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("liveness_sessions", schema=None) as batch_op:
        batch_op.drop_column("capture_token")
        batch_op.drop_column("light")
    with op.batch_alter_table("purposes", schema=None) as batch_op:
        batch_op.drop_column("light_challenge")
