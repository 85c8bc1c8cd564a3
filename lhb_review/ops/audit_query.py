"""Reading the audit log: filters, keyset pages and a streamed CSV of a filtered view."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterator

from sqlalchemy import Select, select, text, tuple_

from lhb_review.extensions import db
from lhb_review.models import AuditLog
from lhb_review.core.paging import decode_cursor, encode_cursor
from lhb_review.core.errors import Invalid
from lhb_review.core.timestamps import MAX_YEAR, MIN_YEAR, parse_timestamp

CSV_COLUMNS = ("created_at", "action", "order_id", "stage", "reviewer_email", "ip_address", "user_agent",
               "details", "id")
PAGE_SIZES = (25, 50, 100, 200)


def _parse_moment(value: str, field: str, end_of_day: bool = False) -> datetime | None:
    """An ISO date or date-time; a bare date means the start (or, for ``until``, the end) of that day, UTC."""
    value = (value or "").strip()
    if not value:
        return None
    moment = None
    if len(value) == 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            day = None
        if day is not None and MIN_YEAR <= day.year <= MAX_YEAR:
            moment = datetime.combine(day, time.min, tzinfo=timezone.utc) + timedelta(days=int(end_of_day))
    else:
        moment = parse_timestamp(value, assume_utc=True)
    if moment is None:
        raise Invalid("Dates look like 2025-01-31 or 2025-01-31T14:00, between 1900 and 2200.",
                      {field: "Use YYYY-MM-DD[THH:MM]."})
    return moment


@dataclass
class AuditFilters:
    order_id: str | None = None
    reviewer: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    raw_since: str = ""
    raw_until: str = ""

    @classmethod
    def parse(cls, args) -> "AuditFilters":
        since_raw = (args.get("since") or "").strip()[:40]
        until_raw = (args.get("until") or "").strip()[:40]
        filters = cls(
            order_id=(args.get("order") or "").strip()[:255] or None,
            reviewer=(args.get("reviewer") or "").strip()[:255] or None,
            action=(args.get("action") or "").strip()[:100] or None,
            since=_parse_moment(since_raw, "since"),
            until=_parse_moment(until_raw, "until", end_of_day=True),
            raw_since=since_raw,
            raw_until=until_raw,
        )
        if filters.since and filters.until and filters.since >= filters.until:
            raise Invalid("The start of the range must come before its end.", {"until": "After the start."})
        for value in (filters.order_id, filters.reviewer, filters.action):
            if value and "\x00" in value:
                raise Invalid("Filters cannot contain NUL characters.", {"filters": "No NUL."})
        return filters

    def as_args(self) -> dict[str, str]:
        pairs = {"order": self.order_id, "reviewer": self.reviewer, "action": self.action,
                 "since": self.raw_since, "until": self.raw_until}
        return {key: value for key, value in pairs.items() if value}

    def apply(self, query: Select) -> Select:
        if self.order_id:
            query = query.where(AuditLog.order_id == self.order_id)
        if self.reviewer:
            # People's e-mails are stored lower-cased; API token names keep their case.
            query = query.where(AuditLog.reviewer_email.in_({self.reviewer, self.reviewer.lower()}))
        if self.action:
            query = query.where(AuditLog.action == self.action)
        if self.since:
            query = query.where(AuditLog.created_at >= self.since)
        if self.until:
            query = query.where(AuditLog.created_at < self.until)
        return query


def page(filters: AuditFilters, after: str | None = None, limit: int = 50):
    """Newest first, keyset-paged on (created_at, id): no OFFSET, no COUNT. Returns (rows, next cursor)."""
    query = filters.apply(select(AuditLog))
    position = decode_cursor(after)
    if position:
        query = query.where(tuple_(AuditLog.created_at, AuditLog.id) < tuple_(*position))
    rows = db.session.scalars(
        query.order_by(AuditLog.created_at.desc(), AuditLog.id.desc()).limit(limit + 1)
    ).all()
    next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


def known_actions() -> list[str]:
    return distinct_values("audit_logs", "action")


def distinct_values(table: str, column: str) -> list[str]:
    """The distinct values of an indexed column by a loose index scan: one index probe per value, so a
    handful of actions are listed without reading millions of audit rows (plain DISTINCT reads them all)."""
    return list(db.session.scalars(text(
        f"WITH RECURSIVE v AS ("
        f"  SELECT min({column}) AS value FROM {table} "
        f"  UNION ALL SELECT (SELECT min({column}) FROM {table} WHERE {column} > v.value) FROM v "
        f"  WHERE v.value IS NOT NULL) "
        f"SELECT value FROM v WHERE value IS NOT NULL"
    )))


def csv_safe(value: str) -> str:
    """Spreadsheet apps run cells starting with = + - @ as formulas; a leading quote keeps them text."""
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value


def csv_lines(filters: AuditFilters, batch: int = 1000) -> Iterator[str]:
    """The filtered view as CSV, produced in batches so a large export never sits in memory."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    query = filters.apply(select(AuditLog)).order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
    position = None
    while True:
        chunk = query
        if position is not None:
            chunk = chunk.where(tuple_(AuditLog.created_at, AuditLog.id) < tuple_(*position))
        rows = db.session.scalars(chunk.limit(batch)).all()
        if not rows:
            return
        buffer.seek(0)
        buffer.truncate()
        for row in rows:
            writer.writerow([
                row.created_at.isoformat() if row.created_at else "",
                csv_safe(row.action), csv_safe(row.order_id or ""), csv_safe(row.stage or ""),
                csv_safe(row.reviewer_email or ""), row.ip_address or "", csv_safe(row.user_agent or ""),
                csv_safe(json.dumps(row.details or {}, sort_keys=True, ensure_ascii=False)), str(row.id),
            ])
        yield buffer.getvalue()
        position = (rows[-1].created_at, rows[-1].id)
        db.session.expunge_all()
