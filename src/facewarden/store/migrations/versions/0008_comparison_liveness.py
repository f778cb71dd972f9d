"""liveness sessions for comparisons: no subject, the SHA-256 of the reference photo the live face was checked against

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("liveness_sessions", schema=None) as batch_op:
        batch_op.alter_column("subject_id", existing_type=sa.String(length=36), nullable=True)
        batch_op.add_column(sa.Column("reference_digest", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_liveness_sessions_reference_digest", ["reference_digest"])


def downgrade() -> None:
    # Comparison sessions cannot exist in the older schema: they go, with their sealed audit frames. Their frame
    # keys stay in the key store until destroyed by hand (`facewarden keys status` lists keys the database no
    # longer references).
    op.execute(sa.text("DELETE FROM liveness_frames WHERE session_id IN "
                       "(SELECT id FROM liveness_sessions WHERE subject_id IS NULL)"))
    op.execute(sa.text("DELETE FROM liveness_sessions WHERE subject_id IS NULL"))
    with op.batch_alter_table("liveness_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_liveness_sessions_reference_digest")
        batch_op.drop_column("reference_digest")
        batch_op.alter_column("subject_id", existing_type=sa.String(length=36), nullable=False)
