"""Pipeline integration tables: API tokens, and the webhook outbox (deliveries and their attempts)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lhb_review.extensions import db
from lhb_review.models.core import NOW, UUID_PK


class ApiToken(db.Model):
    """A bearer token of the pipeline. Only the SHA-256 of the token is kept; the name is the audit actor."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), **UUID_PK)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class WebhookDelivery(db.Model):
    """One event for one callback URL. Its id is the idempotency key the receiver sees on every attempt.

    status: pending (waiting or due), delivered, failed (gave up after the last attempt).
    locked_until is the lease of the worker that claimed it; once it passes, another worker may retry.
    """

    __tablename__ = "webhook_deliveries"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), **UUID_PK)
    order_id: Mapped[str] = mapped_column(String(255))
    stage: Mapped[str | None] = mapped_column(String(50))
    event: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(2000))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(20), server_default=text("'pending'::character varying"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    locked_by: Mapped[str | None] = mapped_column(String(100))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)

    attempt_rows: Mapped[list["WebhookAttempt"]] = relationship(
        back_populates="delivery", order_by="WebhookAttempt.number", passive_deletes=True
    )

    __table_args__ = (
        db.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        # The worker's claim query: due pending deliveries, oldest first.
        Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        Index("ix_webhook_deliveries_order_id", "order_id"),
        Index("ix_webhook_deliveries_created_at", "created_at"),
    )

    @property
    def idempotency_key(self) -> str:
        return str(self.id)


class WebhookAttempt(db.Model):
    """One try at sending a delivery: opened when a worker claims it, closed with the outcome.

    An attempt never closed (finished_at NULL) belongs to a worker that died mid-delivery.
    """

    __tablename__ = "webhook_attempts"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), **UUID_PK)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    number: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(20))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    response_body: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)

    delivery: Mapped[WebhookDelivery] = relationship(back_populates="attempt_rows")

    __table_args__ = (
        db.UniqueConstraint("delivery_id", "number"),
        db.CheckConstraint("outcome IN ('delivered', 'failed', 'abandoned')", name="outcome"),
    )
