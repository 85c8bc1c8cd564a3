"""Date-times from outside (API bodies, query strings, cursors): one parser that PostgreSQL can always store."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

# Real time zones run from -12:00 to +14:00; PostgreSQL refuses offsets much past that and Python's
# datetime overflows near years 1 and 9999, so anything outside these bounds is refused, never sent on.
MAX_OFFSET = timedelta(hours=14)
MIN_YEAR, MAX_YEAR = 1900, 2200
MAX_LENGTH = 40
PRINTABLE = re.compile(r"[0-9A-Za-z:.+\- ]+")  # digits, T/Z, separators: no control characters or newlines


def parse_timestamp(value, *, assume_utc: bool = False) -> datetime | None:
    """An aware datetime from ISO 8601 text (a trailing Z is UTC), or None when it is not one we can store.

    Naive text is refused unless ``assume_utc``. The offset must lie within +-14:00 and the year, in UTC,
    within 1900-2200.
    """
    if not isinstance(value, str) or not 10 <= len(value) <= MAX_LENGTH or not PRINTABLE.fullmatch(value):
        return None
    text = value
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        if not assume_utc:
            return None
        parsed = parsed.replace(tzinfo=timezone.utc)
    offset = parsed.utcoffset()
    if offset is None or abs(offset) > MAX_OFFSET:
        return None
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        return None
    try:
        in_utc = parsed.astimezone(timezone.utc)
    except OverflowError:
        return None
    return parsed if MIN_YEAR <= in_utc.year <= MAX_YEAR else None
