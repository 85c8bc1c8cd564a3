"""Review flow: stage claims, decision history, approval fingerprints; errors findable by order.

Revision ID: 0006_review_flow
Revises: 0004_pipeline_api
Create Date: 2026-11-25
"""
import hashlib
import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0006_review_flow"
down_revision = "0004_pipeline_api"
branch_labels = None
depends_on = None

EMPTY_LIST = sa.text("'[]'::jsonb")


def upgrade():
    op.create_table(
        "stage_claims",
        sa.Column("order_id", sa.String(255), nullable=False),
        sa.Column("stage", sa.String(50), nullable=False),
        sa.Column("claimed_by", sa.String(255), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("renewed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "stage", name="stage_claims_pkey"),
        sa.ForeignKeyConstraint(["order_id", "stage"], ["review_stages.order_id", "review_stages.stage_name"],
                                name="stage_claims_order_id_fkey", ondelete="CASCADE"),
    )
    op.create_index("ix_stage_claims_expires_at", "stage_claims", ["expires_at"])
    op.create_index("ix_stage_claims_claimed_by", "stage_claims", ["claimed_by"])

    op.create_table(
        "stage_decisions",
        sa.Column("id", pg.UUID(as_uuid=True), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("order_id", sa.String(255), nullable=False),
        sa.Column("stage", sa.String(50), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("reviewer_email", sa.String(255), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("reasons", pg.JSONB(), server_default=EMPTY_LIST, nullable=False),
        sa.Column("reason_assets", pg.JSONB(), server_default=EMPTY_LIST, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("assets", pg.JSONB(), server_default=EMPTY_LIST, nullable=False),
        sa.Column("previous", pg.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undone_by", sa.String(255), nullable=True),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("void_reason", sa.String(100), nullable=True),
        sa.PrimaryKeyConstraint("id", name="stage_decisions_pkey"),
    )
    op.create_index("ix_stage_decisions_order_stage_decided_at", "stage_decisions",
                    ["order_id", "stage", "decided_at"])
    op.create_index("ix_stage_decisions_decided_at", "stage_decisions", ["decided_at"])

    op.create_table(
        "approval_fingerprints",
        sa.Column("order_id", sa.String(255), nullable=False),
        sa.Column("stage", sa.String(50), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("assets", pg.JSONB(), server_default=EMPTY_LIST, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "stage", name="approval_fingerprints_pkey"),
    )
    # The order timeline finds an order's errors by details->>'order_id'.
    op.execute("CREATE INDEX idx_error_logs_details_order_id ON error_logs ((details->>'order_id'))")
    backfill_fingerprints()


def identity(assets):
    entries = [a for a in (assets if isinstance(assets, list) else []) if isinstance(a, dict) and a.get("key")]
    return sorted(({"key": str(a["key"]), "sha256": a.get("sha256")} for a in entries), key=lambda a: a["key"])


BACKFILL_BATCH = 5000


def backfill_fingerprints():
    """Approvals made before fingerprints existed cover the assets the stage has at this upgrade.

    Read through a server-side cursor and written batch by batch, without the statement timeout: a
    database with millions of approvals neither fills the migrating process's memory nor times out.
    """
    conn = op.get_bind()
    conn.execute(sa.text("SET LOCAL statement_timeout = 0"))
    result = conn.execute(sa.text(
        "SELECT a.order_id, a.stage, o.r2_assets -> a.stage FROM approvals a "
        "LEFT JOIN orders o ON o.order_id = a.order_id WHERE a.status = 'approved'"
    ).execution_options(stream_results=True, yield_per=BACKFILL_BATCH))
    table = sa.table("approval_fingerprints", sa.column("order_id"), sa.column("stage"),
                     sa.column("fingerprint"), sa.column("assets", pg.JSONB()))
    for rows in result.partitions():
        values = []
        for order_id, stage, stage_assets in rows:
            assets = identity(stage_assets)
            canonical = json.dumps(assets, sort_keys=True, separators=(",", ":"))
            values.append({"order_id": order_id, "stage": stage, "assets": assets,
                           "fingerprint": hashlib.sha256(canonical.encode()).hexdigest()})
        op.bulk_insert(table, values)


def downgrade():
    op.execute("DROP INDEX IF EXISTS idx_error_logs_details_order_id")
    op.drop_table("approval_fingerprints")
    op.drop_index("ix_stage_decisions_decided_at", table_name="stage_decisions")
    op.drop_index("ix_stage_decisions_order_stage_decided_at", table_name="stage_decisions")
    op.drop_table("stage_decisions")
    op.drop_index("ix_stage_claims_claimed_by", table_name="stage_claims")
    op.drop_index("ix_stage_claims_expires_at", table_name="stage_claims")
    op.drop_table("stage_claims")
