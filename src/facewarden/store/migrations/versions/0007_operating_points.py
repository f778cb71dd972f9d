"""operating points: each purpose's target FMR, and the calibrations that turn it into a distance threshold

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from facewarden.governance.policy import default_target_fmr

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("purposes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("target_fmr", sa.Float(), nullable=False, server_default="0.001"))
    # The default purposes take their own targets (payment 1e-4); the others the general default. Nothing
    # changes in matching until a calibration exists for the target: until then the configured threshold holds.
    purposes = sa.table("purposes", sa.column("name", sa.String), sa.column("target_fmr", sa.Float))
    conn = op.get_bind()
    for (name,) in conn.execute(sa.select(purposes.c.name).distinct()).all():
        conn.execute(sa.update(purposes).where(purposes.c.name == name).values(target_fmr=default_target_fmr(name)))
    op.create_table(
        "calibrations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("model_id", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column("target_fmr", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("threshold_ci_low", sa.Float(), nullable=True),
        sa.Column("threshold_ci_high", sa.Float(), nullable=True),
        sa.Column("extrapolated", sa.Boolean(), nullable=False),
        sa.Column("fmr", sa.Float(), nullable=False),
        sa.Column("fnmr", sa.Float(), nullable=False),
        sa.Column("fnmr_ci_low", sa.Float(), nullable=True),
        sa.Column("fnmr_ci_high", sa.Float(), nullable=True),
        sa.Column("end_to_end_fnmr", sa.Float(), nullable=False),
        sa.Column("dataset", sa.String(length=200), nullable=False),
        sa.Column("dataset_digest", sa.String(length=64), nullable=False),
        sa.Column("identities", sa.Integer(), nullable=False),
        sa.Column("images", sa.Integer(), nullable=False),
        sa.Column("failed_to_enrol", sa.Integer(), nullable=False),
        sa.Column("genuine_pairs", sa.BigInteger(), nullable=False),
        sa.Column("impostor_pairs", sa.BigInteger(), nullable=False),
        sa.Column("bootstrap_draws", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_calibrations_run_id", "calibrations", ["run_id"])
    op.create_index("ix_calibrations_model_target", "calibrations", ["model_version", "target_fmr", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_calibrations_model_target", table_name="calibrations")
    op.drop_index("ix_calibrations_run_id", table_name="calibrations")
    op.drop_table("calibrations")
    with op.batch_alter_table("purposes", schema=None) as batch_op:
        batch_op.drop_column("target_fmr")
