"""Cursors of paged lists: positions (created_at, id) handed out as opaque tokens."""
from __future__ import annotations

import base64
import uuid
from datetime import datetime

from lhb_review.core.errors import Invalid
from lhb_review.core.timestamps import parse_timestamp

MAX_CURSOR = 200  # every cursor this app hands out is far shorter; longer ones are refused unread


def position(stamp, row_id) -> tuple[datetime, uuid.UUID]:
    """A keyset position from a cursor's two parts; ValueError unless both are what this app writes."""
    if not isinstance(stamp, str) or not isinstance(row_id, str):
        raise ValueError("a cursor holds two strings")
    moment = parse_timestamp(stamp)
    if moment is None:
        raise ValueError("not a storable date-time")
    return moment, uuid.UUID(row_id)


def encode_cursor(created_at: datetime, row_id) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None):
    """(created_at, id) from a cursor; a tampered cursor is a clear 422, never a 500."""
    if not cursor:
        return None
    try:
        if len(cursor) > MAX_CURSOR:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, row_id = raw.split("|", 1)
        return position(stamp, row_id)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("That page link is broken; start again from the first page.", {"after": "bad cursor"})
