"""check_runs: machine checks of each stage's files, a job until done, then its results.

Revision ID: 0012_check_runs
Revises: 0013_audit_created_at
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012_check_runs"
down_revision = "0013_audit_created_at"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "check_runs",
        sa.Column("id", postgresql.UUID(as_uuid=True), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("order_id", sa.String(255), nullable=False),
        sa.Column("stage", sa.String(50), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("state", sa.String(20), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("reason", sa.String(50), server_default=sa.text("'submitted'"), nullable=False),
        sa.Column("results", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("failing", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("locked_by", sa.String(100), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stale_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id", "stage"], ["review_stages.order_id", "review_stages.stage_name"],
            name=op.f("fk_check_runs_order_id_review_stages"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_runs")),
    )
    op.create_index("ux_check_runs_current", "check_runs", ["order_id", "stage"], unique=True,
                    postgresql_where=sa.text("stale_at IS NULL"))
    op.create_index("ix_check_runs_due", "check_runs", ["enqueued_at"],
                    postgresql_where=sa.text("state <> 'done' AND stale_at IS NULL"))


def downgrade():
    op.drop_index("ix_check_runs_due", table_name="check_runs")
    op.drop_index("ux_check_runs_current", table_name="check_runs")
    op.drop_table("check_runs")

