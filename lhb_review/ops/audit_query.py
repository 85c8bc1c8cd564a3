"""Reading the audit log: filters, keyset pages and a streamed CSV of a filtered view."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterator

from sqlalchemy import Select, select, text

from lhb_review.extensions import db
from lhb_review.models import AuditLog
from lhb_review.core.paging import AFTER, Cursor, decode_cursor, keyset_page
from lhb_review.core.errors import Invalid
from lhb_review.core.timestamps import MAX_YEAR, MIN_YEAR, parse_timestamp

CSV_COLUMNS = ("created_at", "action", "order_id", "stage", "reviewer_email", "ip_address", "user_agent",
               "details", "id")
PAGE_SIZES = (25, 50, 100, 200)
# Who held a stage and for how long: useful when asked for, noise when reading what was decided.
CLAIM_ACTIONS = ("stage_claimed", "stage_released", "stage_claim_taken_over", "claim_lapsed")


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
    with_claims: bool = False

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
            with_claims=args.get("claims") == "1",
        )
        if filters.since and filters.until and filters.since >= filters.until:
            raise Invalid("The start of the range must come before its end.", {"until": "After the start."})
        for value in (filters.order_id, filters.reviewer, filters.action):
            if value and "\x00" in value:
                raise Invalid("Filters cannot contain NUL characters.", {"filters": "No NUL."})
        return filters

    def as_args(self) -> dict[str, str]:
        pairs = {"order": self.order_id, "reviewer": self.reviewer, "action": self.action,
                 "since": self.raw_since, "until": self.raw_until, "claims": "1" if self.with_claims else None}
        return {key: value for key, value in pairs.items() if value}

    def apply(self, query: Select) -> Select:
        if self.order_id:
            query = query.where(AuditLog.order_id == self.order_id)
        if self.reviewer:
            # People's e-mails are stored lower-cased; API token names keep their case.
            query = query.where(AuditLog.reviewer_email.in_({self.reviewer, self.reviewer.lower()}))
        if self.action:
            query = query.where(AuditLog.action == self.action)
        elif not self.with_claims:
            query = query.where(AuditLog.action.not_in(CLAIM_ACTIONS))
        if self.since:
            query = query.where(AuditLog.created_at >= self.since)
        if self.until:
            query = query.where(AuditLog.created_at < self.until)
        return query


def page(filters: AuditFilters, after: str | None = None, limit: int = 50):
    """Newest first, keyset-paged on (created_at, id): no OFFSET, no COUNT. Returns (rows, next cursor)."""
    found = keyset_page(filters.apply(select(AuditLog)), AuditLog.created_at, AuditLog.id,
                        decode_cursor("audit", after), limit=limit, purpose="audit", newest_first=True)
    return found.rows, found.next_cursor


def page_both_ways(filters: AuditFilters, after: str | None = None, before: str | None = None,
                   limit: int = 50) -> tuple[list[AuditLog], str | None, str | None]:
    """A keyset page, newest first, that can be walked both ways: ``after`` a cursor gives older entries,
    ``before`` one gives the newer page just above it. Returns (rows, cursor for older, cursor for newer);
    the newer cursor is None on the newest page."""
    found = keyset_page(filters.apply(select(AuditLog)), AuditLog.created_at, AuditLog.id,
                        decode_cursor("audit", before or after), limit=limit, purpose="audit", newest_first=True)
    return found.rows, found.next_cursor, found.prev_cursor


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
    query, cursor = filters.apply(select(AuditLog)), None
    while True:
        rows = keyset_page(query, AuditLog.created_at, AuditLog.id, cursor, limit=batch, purpose="audit",
                           newest_first=True).rows
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
        cursor = Cursor(AFTER, rows[-1].created_at, rows[-1].id)
        db.session.expunge_all()
