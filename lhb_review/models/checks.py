"""Machine-check runs: one row per stage and asset fingerprint, a job until done, then its results."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKeyConstraint, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from lhb_review.extensions import db

NOW = text("now()")
EMPTY_LIST = text("'[]'::jsonb")


class CheckRun(db.Model):
    """The checks of one stage's assets as they were (``fingerprint``): ``pending`` until a worker claims it,
    ``running`` while leased (``locked_until``), ``done`` with ``results``. A newer run of the same stage
    makes the older ones stale (``stale_at``): their results describe files the stage no longer has."""

    __tablename__ = "check_runs"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()"))
    order_id: Mapped[str] = mapped_column(String(255))
    stage: Mapped[str] = mapped_column(String(50))
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20), server_default=text("'pending'"))
    reason: Mapped[str] = mapped_column(String(50), server_default=text("'submitted'"))
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=EMPTY_LIST)
    failing: Mapped[list[str]] = mapped_column(JSONB, server_default=EMPTY_LIST)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    locked_by: Mapped[str | None] = mapped_column(String(100))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    enqueued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stale_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        ForeignKeyConstraint(
            ["order_id", "stage"],
            ["review_stages.order_id", "review_stages.stage_name"],
            ondelete="CASCADE",
        ),
        # A stage has at most one current run: the one that is not stale.
        Index("ux_check_runs_current", "order_id", "stage", unique=True, postgresql_where=text("stale_at IS NULL")),
        # What workers claim: live runs not yet done.
        Index("ix_check_runs_due", "enqueued_at", postgresql_where=text("state <> 'done' AND stale_at IS NULL")),
    )
