"""How long stages have waited against the service levels (SLA_WARN_HOURS, SLA_BREACH_HOURS), and the
queue orders that go with it: oldest submission first (age) or oldest order first (order date)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import tuple_
from sqlalchemy.sql.elements import ColumnElement

from lhb_review.models import Order, ReviewStage

SORTS: dict[str, str] = {"age": "Waiting longest", "order_date": "Oldest order"}
DEFAULT_SORT = "age"


@dataclass(frozen=True)
class Age:
    """How long a stage has waited, and where that stands against the service levels."""

    waited: timedelta
    level: str  # ok, warn or breach

    @property
    def text(self) -> str:
        minutes = max(int(self.waited.total_seconds() // 60), 0)
        days, rest = divmod(minutes, 24 * 60)
        hours, minutes = divmod(rest, 60)
        if days:
            return f"{days} d {hours} h"
        if hours:
            return f"{hours} h {minutes:02d} min"
        return f"{minutes} min"

    @property
    def label(self) -> str:
        return {"ok": "within service level", "warn": "getting late", "breach": "past service level"}[self.level]


def thresholds() -> tuple[timedelta, timedelta]:
    config = current_app.config
    return timedelta(hours=config.get("SLA_WARN_HOURS", 12)), timedelta(hours=config.get("SLA_BREACH_HOURS", 24))


def age(waiting_since: datetime | None, now: datetime) -> Age:
    """The age of a stage that has waited since ``waiting_since`` (its submission), at ``now``."""
    warn, breach = thresholds()
    waited = now - waiting_since if waiting_since else timedelta(0)
    level = "breach" if waited >= breach else "warn" if waited >= warn else "ok"
    return Age(waited, level)


def parse_sort(value: str | None) -> str:
    return value if value in SORTS else DEFAULT_SORT


def sort_columns(sort: str) -> tuple[ColumnElement, ...]:
    """The queue's ORDER BY for a sort, ending in the stage id so that keyset paging is total."""
    if sort == "order_date":
        return (Order.order_date, ReviewStage.id)
    return (ReviewStage.created_at, ReviewStage.id)


def after(sort: str, values: tuple) -> ColumnElement[bool]:
    """The keyset condition for the page after the row whose sort values are ``values``."""
    return tuple_(*sort_columns(sort)) > tuple_(*values)


def before(sort: str, values: tuple) -> ColumnElement[bool]:
    """The keyset condition for the rows before the one whose sort values are ``values``."""
    return tuple_(*sort_columns(sort)) < tuple_(*values)


def cursor_values(sort: str, stage: ReviewStage, order: Order) -> tuple:
    return (order.order_date, stage.id) if sort == "order_date" else (stage.created_at, stage.id)
