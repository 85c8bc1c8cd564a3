"""Review-flow tables: live claims on stages, the history of decisions, and what each approval saw."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKeyConstraint, Index, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from lhb_review.extensions import db
from lhb_review.models.core import ErrorLog

NOW = text("now()")
EMPTY_LIST = text("'[]'::jsonb")


class StageClaim(db.Model):
    """Who is reviewing a stage right now, until when. One row per claimed stage; gone when released.

    A row whose ``expires_at`` has passed is a lapsed claim: it blocks nobody and is swept away.
    """

    __tablename__ = "stage_claims"

    order_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    stage: Mapped[str] = mapped_column(String(50), primary_key=True)
    claimed_by: Mapped[str] = mapped_column(String(255))
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    renewed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        ForeignKeyConstraint(
            ["order_id", "stage"],
            ["review_stages.order_id", "review_stages.stage_name"],
            ondelete="CASCADE",
        ),
        Index("ix_stage_claims_expires_at", "expires_at"),
        Index("ix_stage_claims_claimed_by", "claimed_by"),
    )


class StageDecision(db.Model):
    """One approve or reject, as the reviewer made it: reasons, the assets it saw, and what it replaced.

    ``previous`` holds the stage, approvals row, claim and fingerprint as they were just before, so an
    undo can put them back exactly. Rows are kept when undone or voided (``undone_at``, ``voided_at``).
    """

    __tablename__ = "stage_decisions"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()"))
    order_id: Mapped[str] = mapped_column(String(255))
    stage: Mapped[str] = mapped_column(String(50))
    outcome: Mapped[str] = mapped_column(String(20))
    reviewer_email: Mapped[str] = mapped_column(String(255))
    notes: Mapped[str | None] = mapped_column(Text)
    reasons: Mapped[list[str]] = mapped_column(JSONB, server_default=EMPTY_LIST)
    reason_assets: Mapped[list[str]] = mapped_column(JSONB, server_default=EMPTY_LIST)
    fingerprint: Mapped[str] = mapped_column(String(64))
    assets: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=EMPTY_LIST)
    previous: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    undone_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    undone_by: Mapped[str | None] = mapped_column(String(255))
    voided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    void_reason: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (
        Index("ix_stage_decisions_order_stage_decided_at", "order_id", "stage", "decided_at"),
        Index("ix_stage_decisions_decided_at", "decided_at"),
    )

    @property
    def active(self) -> bool:
        return self.undone_at is None and self.voided_at is None


class ApprovalFingerprint(db.Model):
    """The fingerprint of the assets an (order, stage) approval covers, written whenever it is approved.

    get_stage_status compares it with the stage's current assets: an approval never covers assets it
    did not see.
    """

    __tablename__ = "approval_fingerprints"

    order_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    stage: Mapped[str] = mapped_column(String(50), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    assets: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=EMPTY_LIST)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)


# The order timeline finds an order's errors by details->>'order_id' (an extra index on the customer's
# table; its columns stay as the seed has them).
Index("idx_error_logs_details_order_id", ErrorLog.details["order_id"].astext)
