"""Indexes for the queue, search and audit pages at a million orders (pg_trgm for substring search).

Created CONCURRENTLY outside the migration's transaction, so a live server keeps taking writes while
they build. A build that failed half-way leaves an invalid index behind; it is dropped and built again.
None of the seed's indexes is touched.

Revision ID: 0008_performance_indexes
Revises: 0006_review_flow
Create Date: 2026-11-25
"""

from alembic import op
from sqlalchemy import text

revision = "0008_performance_indexes"
down_revision = "0006_review_flow"
branch_labels = None
depends_on = None

WAITING = "WHERE status IN ('pending', 'in_review')"
# name -> (table, USING and column list with {trgm} standing for the pg_trgm operator class, suffix)
INDEXES = {
    "ix_review_stages_waiting_queue": ("review_stages", "(created_at, id)", WAITING),
    "ix_review_stages_waiting_stage_queue": ("review_stages", "(stage_name, created_at, id)", WAITING),
    "ix_review_stages_status_queue": ("review_stages", "(status, created_at, id)", ""),
    "ix_review_stages_stage_status_queue": ("review_stages", "(stage_name, status, created_at, id)", ""),
    "ix_orders_amazon_order_id": ("orders", "(amazon_order_id)", ""),
    "ix_orders_customer_email_trgm": ("orders", "USING gin (customer_email {trgm})", ""),
    "ix_orders_customer_name_trgm": (
        "orders",
        "USING gin (((customer_first_name || ' ') || customer_last_name) {trgm})",
        "",
    ),
    "ix_audit_logs_order_created": ("audit_logs", "(order_id, created_at DESC)", ""),
    "ix_audit_logs_order_stage_created": ("audit_logs", "(order_id, stage, created_at)", ""),
}


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def upgrade():
    bind = op.get_bind()
    with op.get_context().autocommit_block():
        # pg_trgm is a trusted extension: the database owner may create it without being a superuser.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        trgm_schema = bind.execute(
            text("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'")
        ).scalar()
        trgm = f"{quote(trgm_schema)}.gin_trgm_ops"
        for name, (table, columns, where) in INDEXES.items():
            valid = bind.execute(
                text(
                    "SELECT x.indisvalid FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                    "WHERE i.relname = :name AND i.relnamespace = current_schema()::regnamespace"
                ),
                {"name": name},
            ).scalar()
            if valid is False:
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.execute(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} "
                f"{columns.format(trgm=trgm)} {where}".rstrip()
            )


def downgrade():
    with op.get_context().autocommit_block():
        for name in reversed(INDEXES):
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        # Leave pg_trgm in place when something else in the database uses it.
        op.execute("""
            DO $$ BEGIN
                DROP EXTENSION IF EXISTS pg_trgm;
            EXCEPTION WHEN dependent_objects_still_exist THEN
                RAISE NOTICE 'pg_trgm kept: other objects depend on it';
            END $$
        """)
