"""Paged lists: one signed cursor and one keyset query for every list (the queue, the API's stage list, the
audit log, the error log, webhook deliveries). No OFFSET and no COUNT: a page costs the same at row ten or
row ten million, and a cursor nobody handed out is a clear 400."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Sequence

from flask import current_app
from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import Select, literal, tuple_

from lhb_review.core.errors import DomainError
from lhb_review.extensions import db

AFTER, BEFORE = "a", "b"
MAX_CURSOR = 500  # a signed cursor is under 150 characters; anything much longer was not made here
BROKEN = "This page link is broken or out of date. Start again from the first page."


class BadCursor(DomainError):
    """A cursor this app did not hand out (tampered, truncated, from another list): answered with 400."""

    status = 400
    code = "bad_cursor"

    def __init__(self, message: str = BROKEN, **context):
        super().__init__(message, **context)
        self.fields = {"cursor": "Use the cursor (or page link) exactly as it was given."}


@dataclass(frozen=True)
class Cursor:
    """A position in a list: the rows after (``AFTER``) or before (``BEFORE``) the row keyed (key, id)."""

    direction: str
    key: datetime
    id: uuid.UUID


def _signer(purpose: str) -> URLSafeSerializer:
    # The purpose is part of the salt: a cursor of the audit log is no cursor of the queue.
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=f"lhb-review.cursor.{purpose}")


def encode_cursor(purpose: str, direction: str, key: datetime, row_id: uuid.UUID | str) -> str:
    return _signer(purpose).dumps([direction, key.isoformat(), str(row_id)])


def decode_cursor(purpose: str, token: str | None) -> Cursor | None:
    """The position a cursor names (None for no cursor); BadCursor when this app did not make it. The
    signature is checked before anything is parsed, so a forged payload is never even read."""
    if not token:
        return None
    if len(token) > MAX_CURSOR or not token.isascii():
        raise BadCursor()
    try:
        direction, key, row_id = _signer(purpose).loads(token)
        cursor = Cursor(direction, datetime.fromisoformat(key), uuid.UUID(row_id))
    except (BadData, ValueError, TypeError, AttributeError, RecursionError):
        raise BadCursor() from None
    if cursor.direction not in (AFTER, BEFORE) or cursor.key.tzinfo is None:
        raise BadCursor()
    return cursor


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    next_cursor: str | None = None
    prev_cursor: str | None = None


def keyset_page(stmt: Select, key_column, id_column, cursor: Cursor | None, *, limit: int, purpose: str,
                newest_first: bool = False, key_of: Callable[[Any], tuple[datetime, Any]] | None = None,
                fetch: Callable[[Select], Sequence[Any]] | None = None) -> Page:
    """One page of ``stmt`` in (key, id) order (``newest_first`` for descending), ``limit`` rows after or
    before ``cursor``, with the cursors of the pages on either side. ``key_of`` reads (key, id) off a row
    (default: its ``created_at`` and ``id``); ``fetch`` runs the statement (default: ORM objects)."""
    key_of = key_of or (lambda row: (row.created_at, row.id))
    fetch = fetch or (lambda s: db.session.scalars(s).all())
    backwards = cursor is not None and cursor.direction == BEFORE
    descending = newest_first != backwards  # the order rows are fetched in
    key = tuple_(key_column, id_column)
    if cursor is not None:
        bound = tuple_(literal(cursor.key, key_column.type), literal(cursor.id, id_column.type))
        stmt = stmt.where(key < bound if descending else key > bound)
    order = (key_column.desc(), id_column.desc()) if descending else (key_column, id_column)
    fetched = list(fetch(stmt.order_by(*order).limit(limit + 1)))
    more = len(fetched) > limit
    rows = fetched[:limit]
    if backwards:
        rows.reverse()
    has_next = (more and not backwards) or backwards
    has_prev = (more and backwards) or (cursor is not None and not backwards)
    return Page(
        rows,
        encode_cursor(purpose, AFTER, *key_of(rows[-1])) if has_next and rows else None,
        encode_cursor(purpose, BEFORE, *key_of(rows[0])) if has_prev and rows else None,
    )
