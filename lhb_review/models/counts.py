"""The queue's counts at a glance, kept by triggers (migration 0014_stage_counts) as insert-only deltas."""
from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from lhb_review.extensions import db


class StageCountDelta(db.Model):
    """A change of ``n`` stages in one (stage, status, platform, project). The count of a combination is the
    sum of its rows: a status change adds a -1 row and a +1 row, and compaction sums the rows into one.

    Written only by the database's triggers and by lhb_review.review.counts (compaction, rebuild)."""

    __tablename__ = "stage_count_deltas"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    stage_name: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(50))
    platform: Mapped[str] = mapped_column(String(50))
    project: Mapped[str] = mapped_column(String(100))
    n: Mapped[int] = mapped_column(Integer)
