"""Indexes beyond the seed's for the queue, search and audit pages (created by 0008_performance_indexes).

Declared here, on the customer's tables, so the models keep agreeing with the migrations. The queue
reads review_stages joined to orders ordered by (created_at, id), with keyset pagination on that pair.
"""

from __future__ import annotations

from sqlalchemy import Index, text

from lhb_review.models.core import AuditLog, Order, ReviewStage

# The statuses a reviewer still has to act on; the partial indexes below are only used by queries
# whose WHERE clause implies exactly this predicate.
WAITING_PREDICATE = "status IN ('pending', 'in_review')"
CUSTOMER_NAME_SQL = "((customer_first_name || ' ') || customer_last_name)"

PERFORMANCE_INDEXES = (
    # Default queue: waiting stages, oldest first, and the same per stage.
    Index(
        "ix_review_stages_waiting_queue",
        ReviewStage.created_at,
        ReviewStage.id,
        postgresql_where=text(WAITING_PREDICATE),
    ),
    Index(
        "ix_review_stages_waiting_stage_queue",
        ReviewStage.stage_name,
        ReviewStage.created_at,
        ReviewStage.id,
        postgresql_where=text(WAITING_PREDICATE),
    ),
    # A queue filtered on one status, with or without a stage.
    Index("ix_review_stages_status_queue", ReviewStage.status, ReviewStage.created_at, ReviewStage.id),
    Index(
        "ix_review_stages_stage_status_queue",
        ReviewStage.stage_name,
        ReviewStage.status,
        ReviewStage.created_at,
        ReviewStage.id,
    ),
    # Search: exact Amazon order id, and substrings of e-mail and full name (pg_trgm).
    Index("ix_orders_amazon_order_id", Order.amazon_order_id),
    Index(
        "ix_orders_customer_email_trgm",
        Order.customer_email,
        postgresql_using="gin",
        postgresql_ops={"customer_email": "gin_trgm_ops"},
    ),
    Index(
        "ix_orders_customer_name_trgm",
        text(f"{CUSTOMER_NAME_SQL} gin_trgm_ops"),
        postgresql_using="gin",
        _table=Order.__table__,
    ),
    # An order's audit trail, newest first; a stage's history in time order.
    Index("ix_audit_logs_order_created", AuditLog.order_id, AuditLog.created_at.desc()),
    Index("ix_audit_logs_order_stage_created", AuditLog.order_id, AuditLog.stage, AuditLog.created_at),
)
