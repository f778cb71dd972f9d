"""subjects: the comparison key of each reference, indexed

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from facewarden.governance.identifiers import reference_key

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # `OBAMA` must reach `obama` without scanning every reference of the tenant on each lookup and enrolment.
    # Not unique: records stored before the rules may already hold two variants of one reference.
    op.add_column("subjects", sa.Column("reference_key", sa.String(200), nullable=True))
    subjects = sa.table("subjects", sa.column("id", sa.String), sa.column("external_id", sa.String),
                        sa.column("reference_key", sa.String))
    conn = op.get_bind()
    for sid, ref in conn.execute(sa.select(subjects.c.id, subjects.c.external_id)).all():
        conn.execute(sa.update(subjects).where(subjects.c.id == sid).values(reference_key=reference_key(ref)[:200]))
    op.create_index("ix_subjects_tenant_reference_key", "subjects", ["tenant_id", "reference_key"])


def downgrade() -> None:
    op.drop_index("ix_subjects_tenant_reference_key", table_name="subjects")
    op.drop_column("subjects", "reference_key")
