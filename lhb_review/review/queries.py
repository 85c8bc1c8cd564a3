"""Read-side queries shared by the review pages, the API and the CLI: the queue, an order, a stage's history.

The queue is review_stages joined to orders, oldest first by (review_stages.created_at, review_stages.id),
paged by keyset on that pair with an opaque signed cursor. Nothing here uses OFFSET or a COUNT over the big
tables (the counts at a glance are kept by the database: review.counts), and every page issues a fixed
number of statements whatever the data.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from functools import lru_cache
from datetime import datetime
from typing import Any, Mapping

from flask import current_app
from sqlalchemy import String, and_, any_, bindparam, case, func, literal, literal_column, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import joinedload

from lhb_review.core import paging
from lhb_review.extensions import db
from lhb_review.models import AuditLog, Order, ReviewStage, StageClaim
from lhb_review.core.stages import STAGE_NAMES, STAGE_ORDER, WAITING, Stage, StageStatus
from lhb_review.review import sla
from lhb_review.review.claims import ClaimView
from lhb_review.review.checks.jobs import check_state_of
from lhb_review.core.errors import DomainError

PAGE_SIZES = (25, 50, 100)
DEFAULT_PAGE_SIZE = 50
MAX_SEARCH = 200
SEARCH_LIST_MAX = 2000  # matching orders listed by id before a search walks the queue (search_filter)
MAX_FILTER_VALUE = 100
HISTORY_LIMIT = 50
ORDER_AUDIT_LIMIT = 200
WAITING_FILTER = "waiting"
CHECK_FILTERS = (None, "failing")
ANY_STATUS = "any"
STATUS_FILTERS = (WAITING_FILTER, *(s.value for s in StageStatus), ANY_STATUS)


class BadQuery(DomainError):
    """A filter, search or cursor the queue cannot use (malformed or tampered): answered with 400."""

    status = 400
    code = "bad_query"


@dataclass(frozen=True)
class QueueFilter:
    """What the reviewer asked the queue for; every field maps onto a query string parameter."""

    stage: str | None = None
    status: str = WAITING_FILTER
    platform: str | None = None
    project: str | None = None
    q: str | None = None
    size: int = DEFAULT_PAGE_SIZE
    cursor: str | None = None
    sort: str = sla.DEFAULT_SORT
    checks: str | None = None  # "failing": only stages whose machine checks fail

    def params(self, **changes) -> dict[str, Any]:
        """The query string for this filter (defaults left out, so shared URLs stay short)."""
        values = replace(self, **changes) if changes else self
        out = {
            "stage": values.stage,
            "status": values.status if values.status != WAITING_FILTER else None,
            "platform": values.platform,
            "project": values.project,
            "q": values.q,
            "size": values.size if values.size != DEFAULT_PAGE_SIZE else None,
            "sort": values.sort if values.sort != sla.DEFAULT_SORT else None,
            "checks": values.checks,
            "cursor": values.cursor,
        }
        return {k: v for k, v in out.items() if v not in (None, "")}

    @property
    def is_default(self) -> bool:
        return not self.params(size=DEFAULT_PAGE_SIZE, cursor=None)


def _text_param(args: Mapping[str, str], name: str, limit: int) -> str | None:
    value = (args.get(name) or "").strip()
    if not value:
        return None
    if "\x00" in value or any(ord(c) < 32 for c in value):
        raise BadQuery(f"The {name} filter contains control characters; remove them and try again.")
    if len(value) > limit:
        raise BadQuery(f"The {name} filter is limited to {limit} characters.")
    return value


def page_size(raw: str | None) -> int:
    """One of PAGE_SIZES: a number in between is rounded up, a larger one is capped."""
    if raw is None or raw.strip() == "":
        return DEFAULT_PAGE_SIZE
    try:
        wanted = int(raw)
    except ValueError:
        raise BadQuery(f"Page size must be a number: one of {', '.join(map(str, PAGE_SIZES))}.") from None
    return next((size for size in PAGE_SIZES if wanted <= size), PAGE_SIZES[-1])


def parse_queue_filter(args: Mapping[str, str]) -> QueueFilter:
    """A QueueFilter from query parameters; BadQuery (400) names the parameter that cannot be used."""
    stage = _text_param(args, "stage", MAX_FILTER_VALUE)
    if stage is not None and stage not in STAGE_NAMES:
        raise BadQuery(f"Unknown stage {stage!r}: choose one of {', '.join(STAGE_NAMES)}.")
    status = _text_param(args, "status", MAX_FILTER_VALUE) or WAITING_FILTER
    if status not in STATUS_FILTERS:
        raise BadQuery(f"Unknown status {status!r}: choose one of {', '.join(STATUS_FILTERS)}.")
    sort = _text_param(args, "sort", MAX_FILTER_VALUE) or sla.DEFAULT_SORT
    if sort not in sla.SORTS:
        raise BadQuery(f"Unknown sort {sort!r}: choose one of {', '.join(sla.SORTS)}.")
    checks = _text_param(args, "checks", MAX_FILTER_VALUE)
    if checks not in CHECK_FILTERS:
        raise BadQuery(f"Unknown checks filter {checks!r}: use checks=failing or leave it out.")
    cursor = _text_param(args, "cursor", 500)
    if cursor is not None:
        decode_cursor(cursor)
    return QueueFilter(
        stage=stage,
        status=status,
        platform=_text_param(args, "platform", MAX_FILTER_VALUE),
        project=_text_param(args, "project", MAX_FILTER_VALUE),
        q=_text_param(args, "q", MAX_SEARCH),
        size=page_size(args.get("size")),
        cursor=cursor,
        sort=sort,
        checks=checks,
    )


# --- cursors -------------------------------------------------------------------------------------------

QUEUE_CURSOR = "queue"


def encode_cursor(direction: str, key: datetime, row_id: uuid.UUID) -> str:
    return paging.encode_cursor(QUEUE_CURSOR, direction, key, row_id)


def decode_cursor(token: str) -> paging.Cursor:
    """The position a queue cursor names; BadQuery (400) when it was not made by this app."""
    try:
        return paging.decode_cursor(QUEUE_CURSOR, token)
    except paging.BadCursor as exc:
        raise BadQuery(exc.message) from None


# --- the queue -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QueueRow:
    stage_id: uuid.UUID
    order_id: str
    stage_name: str
    status: str
    created_at: datetime
    reviewer_email: str | None
    reviewed_at: datetime | None
    platform: str
    project: str
    amazon_order_id: str | None
    customer_first_name: str
    customer_last_name: str
    customer_email: str
    order_date: datetime
    claimed_by: str | None = None  # who holds a live claim on the stage, if anyone
    checks: str | None = None  # its machine checks: pending, failing, pass, or None when never queued

    @property
    def customer_name(self) -> str:
        return f"{self.customer_first_name} {self.customer_last_name}"


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    filter: QueueFilter
    next_cursor: str | None = None
    prev_cursor: str | None = None

    @property
    def is_first(self) -> bool:
        return self.filter.cursor is None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_clause(q: str):
    """Exact order id or Amazon order id, or a case-insensitive part of the e-mail or the full name."""
    pattern = f"%{_escape_like(q)}%"
    # Spelled as customer_first_name || ' ' || customer_last_name, so an expression index on it applies.
    full_name = Order.customer_first_name.op("||")(literal_column("' '")).op("||")(Order.customer_last_name)
    return or_(
        Order.order_id == q,
        Order.amazon_order_id == q,
        Order.customer_email.ilike(pattern, escape="\\"),
        full_name.ilike(pattern, escape="\\"),
    )


@lru_cache(maxsize=1)
def _queue_select():
    """The queue's columns and joins, built once (statements are immutable; each page adds its filter), and
    the check-state column the checks filter compares."""
    live_claim = case((StageClaim.expires_at > func.now(), StageClaim.claimed_by))
    check_state = check_state_of(ReviewStage.order_id, ReviewStage.stage_name)
    stmt = (
        select(
            ReviewStage.id, ReviewStage.order_id, ReviewStage.stage_name, ReviewStage.status,
            ReviewStage.created_at, ReviewStage.reviewer_email, ReviewStage.reviewed_at,
            Order.platform, Order.project, Order.amazon_order_id, Order.customer_first_name,
            Order.customer_last_name, Order.customer_email, Order.order_date, live_claim, check_state,
        )
        .join(Order, Order.order_id == ReviewStage.order_id)
        .outerjoin(StageClaim, and_(StageClaim.order_id == ReviewStage.order_id,
                                    StageClaim.stage == ReviewStage.stage_name))
    )
    return stmt, check_state


def search_filter(q: str):
    """The queue's condition for a search: its stages are those of the matching orders, listed first (one
    statement over the search indexes) when there are at most SEARCH_LIST_MAX of them.

    Left to itself the planner guesses how many orders a pattern matches; guessing many, it walks the whole
    queue in order looking for them, which takes seconds at a million orders when only one matches. A short
    list of the matching orders' ids makes each page a lookup by order. A search that matches more orders
    than that (a common first name) keeps the plain condition: with matches that dense, the walk in queue
    order finds a page of them quickly."""
    matches = db.session.scalars(
        select(Order.order_id).where(search_clause(q)).limit(SEARCH_LIST_MAX + 1)).all()
    if len(matches) > SEARCH_LIST_MAX:
        return search_clause(q)
    return ReviewStage.order_id == any_(bindparam("search_matches", list(matches), type_=ARRAY(String)))


def queue_page(f: QueueFilter) -> QueuePage:
    """One page of the queue in one statement: size rows after (or before) the cursor, oldest first
    (by submission, or by order date with sort "order_date"), with who holds a live claim on each."""
    first, second = sla.sort_columns(f.sort)
    stmt, check_state = _queue_select()
    if f.stage:
        stmt = stmt.where(ReviewStage.stage_name == f.stage)
    if f.status == WAITING_FILTER:
        stmt = stmt.where(ReviewStage.status.in_([s.value for s in WAITING]))
    elif f.status != ANY_STATUS:
        stmt = stmt.where(ReviewStage.status == f.status)
    if f.platform:
        stmt = stmt.where(Order.platform == f.platform)
    if f.project:
        stmt = stmt.where(Order.project == f.project)
    if f.q:
        stmt = stmt.where(search_filter(f.q))
    if f.checks == "failing":
        stmt = stmt.where(check_state == "failing")

    found = paging.keyset_page(stmt, first, second, decode_cursor(f.cursor) if f.cursor else None, limit=f.size,
                               purpose=QUEUE_CURSOR, key_of=lambda row: (position(row, f.sort), row.stage_id),
                               fetch=lambda s: [QueueRow(*r) for r in db.session.execute(s).all()])
    return QueuePage(rows=found.rows, filter=f, next_cursor=found.next_cursor, prev_cursor=found.prev_cursor)


def position(row: QueueRow, sort: str) -> datetime:
    """The row's value of the sort's first key (the cursor carries it with the stage id)."""
    return row.order_date if sort == "order_date" else row.created_at


# --- one order, one stage ------------------------------------------------------------------------------

def order_with_stages(order_id: str) -> Order | None:
    """The order and its stages, in one statement."""
    return db.session.scalars(
        select(Order).options(joinedload(Order.stages)).where(Order.order_id == order_id)
    ).unique().one_or_none()


def stages_in_order(order: Order) -> list[tuple[str, ReviewStage | None]]:
    """Every pipeline stage in order, with the order's row for it (None when not submitted yet)."""
    by_name = {s.stage_name: s for s in order.stages}
    return [(stage.value, by_name.get(stage.value)) for stage in STAGE_ORDER]


def order_audit(order_id: str, limit: int = ORDER_AUDIT_LIMIT) -> list[AuditLog]:
    """The order's audit trail, newest first."""
    return list(db.session.scalars(
        select(AuditLog).where(AuditLog.order_id == order_id)
        .order_by(AuditLog.created_at.desc(), AuditLog.id.desc()).limit(limit)
    ))


def stage_history(order_id: str, stage: str, limit: int = HISTORY_LIMIT) -> list[AuditLog]:
    """What happened to one stage of one order, newest first."""
    return list(db.session.scalars(
        select(AuditLog).where(and_(AuditLog.order_id == order_id, AuditLog.stage == stage))
        .order_by(AuditLog.created_at.desc(), AuditLog.id.desc()).limit(limit)
    ))


def filter_choices() -> dict[str, tuple[str, ...]]:
    """The platform and project filter options: a fixed list from configuration, never a DISTINCT scan."""
    return {
        "platforms": tuple(current_app.config.get("QUEUE_PLATFORMS") or ()),
        "projects": tuple(current_app.config.get("QUEUE_PROJECTS") or ()),
    }


@lru_cache(maxsize=None)
def _claim_bar_select(stage: str):
    """claim_bar_facts' statement for one stage name, built once (the order id is a parameter)."""
    earlier = [s.value for s in Stage(stage).earlier]
    order_id = bindparam("order_id", type_=String)
    approved_earlier = (select(func.count()).where(
        ReviewStage.order_id == order_id, ReviewStage.stage_name.in_(earlier),
        ReviewStage.status == StageStatus.APPROVED.value).scalar_subquery() if earlier else literal(0))
    stmt = (
        select(ReviewStage.status, approved_earlier.label("approved_earlier"),
               StageClaim.claimed_by, StageClaim.claimed_at, StageClaim.expires_at)
        .outerjoin(StageClaim, and_(StageClaim.order_id == ReviewStage.order_id,
                                    StageClaim.stage == ReviewStage.stage_name, StageClaim.expires_at > func.now()))
        .where(ReviewStage.order_id == order_id, ReviewStage.stage_name == stage)
    )
    return stmt, len(earlier)


def claim_bar_facts(order_id: str, stage: str) -> tuple[str, bool, ClaimView | None] | None:
    """In one statement: the stage's status, whether an earlier stage is not approved yet, and its live
    claim; None when the order has no such stage. Polled by every open stage page, so kept to one query."""
    stmt, earlier = _claim_bar_select(Stage(stage).value)
    row = db.session.execute(stmt, {"order_id": order_id}).first()
    if row is None:
        return None
    claim = (ClaimView(order_id, stage, row.claimed_by, row.claimed_at, row.expires_at)
             if row.claimed_by else None)
    return row.status, row.approved_earlier < earlier, claim
