"""Cursors of paged lists: positions (created_at, id) handed out as opaque tokens."""
from __future__ import annotations

import base64
import uuid
from datetime import datetime

from lhb_review.core.errors import Invalid


def encode_cursor(created_at: datetime, row_id) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None):
    """(created_at, id) from a cursor; a tampered cursor is a clear 422, never a 500."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, row_id = raw.split("|", 1)
        return datetime.fromisoformat(stamp), uuid.UUID(row_id)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("That page link is broken; start again from the first page.", {"after": "bad cursor"})
