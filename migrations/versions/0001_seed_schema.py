"""The customer's schema (database-setup.md, Step 2), with core gen_random_uuid() for UUID defaults.

Revision ID: 0001_seed_schema
Revises:
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0001_seed_schema"
down_revision = None
branch_labels = None
depends_on = None

UUID_DEFAULT = sa.text("gen_random_uuid()")
NOW = sa.text("now()")
TS = sa.DateTime(timezone=True)

INDEXES = [
    ("idx_orders_order_id", "orders", ["order_id"]),
    ("idx_orders_status", "orders", ["status"]),
    ("idx_orders_character_hash", "orders", ["character_hash"]),
    ("idx_orders_order_date", "orders", ["order_date"]),
    ("idx_orders_customer_email", "orders", ["customer_email"]),
    ("idx_review_stages_order_id", "review_stages", ["order_id"]),
    ("idx_review_stages_stage_name", "review_stages", ["stage_name"]),
    ("idx_review_stages_status", "review_stages", ["status"]),
    ("idx_approvals_order_id", "approvals", ["order_id"]),
    ("idx_approvals_stage", "approvals", ["stage"]),
    ("idx_approvals_status", "approvals", ["status"]),
    ("idx_audit_logs_order_id", "audit_logs", ["order_id"]),
    ("idx_audit_logs_action", "audit_logs", ["action"]),
    ("idx_audit_logs_created_at", "audit_logs", ["created_at"]),
    ("idx_error_logs_error_type", "error_logs", ["error_type"]),
    ("idx_error_logs_severity", "error_logs", ["severity"]),
    ("idx_error_logs_resolved", "error_logs", ["resolved"]),
    ("idx_error_logs_created_at", "error_logs", ["created_at"]),
]
TRIGGER_TABLES = ["orders", "review_stages", "approvals"]


def upgrade():
    op.create_table(
        "orders",
        sa.Column("id", pg.UUID(as_uuid=True), server_default=UUID_DEFAULT, nullable=False),
        sa.Column("order_id", sa.String(255), nullable=False),
        sa.Column("platform", sa.String(50), nullable=False),
        sa.Column("amazon_order_id", sa.String(255)),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("customer_first_name", sa.String(100), nullable=False),
        sa.Column("customer_last_name", sa.String(100), nullable=False),
        sa.Column("customer_email", sa.String(255), nullable=False),
        sa.Column("order_date", TS, nullable=False),
        sa.Column("status", sa.String(50), nullable=False),
        sa.Column("ai_generation_started_at", TS),
        sa.Column("character_hash", sa.String(100)),
        sa.Column("character_path", sa.String(500)),
        sa.Column("template_path", sa.String(500)),
        sa.Column("character_specs", pg.JSONB()),
        sa.Column("book_specs", pg.JSONB()),
        sa.Column("order_details", pg.JSONB()),
        sa.Column("asset_prefix", sa.String(500)),
        sa.Column("webhooks", pg.JSONB()),
        sa.Column("r2_assets", pg.JSONB()),
        sa.Column("created_at", TS, server_default=NOW),
        sa.Column("updated_at", TS, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="orders_pkey"),
        sa.UniqueConstraint("order_id", name="orders_order_id_key"),
    )
    op.create_table(
        "review_stages",
        sa.Column("id", pg.UUID(as_uuid=True), server_default=UUID_DEFAULT, nullable=False),
        sa.Column("order_id", sa.String(255), nullable=False),
        sa.Column("stage_name", sa.String(50), nullable=False),
        sa.Column("status", sa.String(50), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("reviewed_at", TS),
        sa.Column("reviewer_email", sa.String(255)),
        sa.Column("reviewer_notes", sa.Text()),
        sa.Column("created_at", TS, server_default=NOW),
        sa.Column("updated_at", TS, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="review_stages_pkey"),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.order_id"], name="review_stages_order_id_fkey", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("order_id", "stage_name", name="review_stages_order_id_stage_name_key"),
    )
    op.create_table(
        "approvals",
        sa.Column("id", pg.UUID(as_uuid=True), server_default=UUID_DEFAULT, nullable=False),
        sa.Column("order_id", sa.String(255), nullable=False),
        sa.Column("stage", sa.String(50), nullable=False),
        sa.Column("status", sa.String(50), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("approved_at", TS),
        sa.Column("reviewer_email", sa.String(255), nullable=False),
        sa.Column("reviewer_notes", sa.Text()),
        sa.Column("created_at", TS, server_default=NOW),
        sa.Column("updated_at", TS, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="approvals_pkey"),
        sa.UniqueConstraint("order_id", "stage", name="approvals_order_id_stage_key"),
    )
    op.create_table(
        "audit_logs",
        sa.Column("id", pg.UUID(as_uuid=True), server_default=UUID_DEFAULT, nullable=False),
        sa.Column("order_id", sa.String(255), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("stage", sa.String(50)),
        sa.Column("reviewer_email", sa.String(255)),
        sa.Column("details", pg.JSONB()),
        sa.Column("ip_address", pg.INET()),
        sa.Column("user_agent", sa.Text()),
        sa.Column("created_at", TS, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="audit_logs_pkey"),
    )
    op.create_table(
        "error_logs",
        sa.Column("id", pg.UUID(as_uuid=True), server_default=UUID_DEFAULT, nullable=False),
        sa.Column("error_id", sa.String(100), nullable=False),
        sa.Column("error_type", sa.String(50), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", pg.JSONB()),
        sa.Column("user_id", sa.String(255)),
        sa.Column("request_id", sa.String(100)),
        sa.Column("user_agent", sa.Text()),
        sa.Column("ip_address", pg.INET()),
        sa.Column("stack_trace", sa.Text()),
        sa.Column("resolved", sa.Boolean(), server_default=sa.text("false")),
        sa.Column("resolved_at", TS),
        sa.Column("resolved_by", sa.String(255)),
        sa.Column("created_at", TS, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="error_logs_pkey"),
        sa.UniqueConstraint("error_id", name="error_logs_error_id_key"),
    )
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)

    op.execute(
        """
        CREATE OR REPLACE FUNCTION update_updated_at_column()
        RETURNS TRIGGER AS $$
        BEGIN
            NEW.updated_at = NOW();
            RETURN NEW;
        END;
        $$ language 'plpgsql';
        """
    )
    for table in TRIGGER_TABLES:
        op.execute(
            f"CREATE TRIGGER update_{table}_updated_at BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()"
        )


def downgrade():
    for table in TRIGGER_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS update_{table}_updated_at ON {table}")
    op.execute("DROP FUNCTION IF EXISTS update_updated_at_column()")
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    for table in ["error_logs", "audit_logs", "approvals", "review_stages", "orders"]:
        op.drop_table(table)
