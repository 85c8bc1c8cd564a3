"""One parser for outside date-times and one position check for every cursor: nothing PostgreSQL cannot store
gets through, and a hostile cursor is a clear error, never a RecursionError or an overflow."""
from __future__ import annotations

import base64
import json

import pytest

from lhb_review.core.errors import Invalid
from lhb_review.core.paging import BadCursor, decode_cursor
from lhb_review.core.timestamps import parse_timestamp
from lhb_review.pipeline import orders
from tests.pipeline_helpers import order_body

ROW = "00000000-0000-4000-8000-000000000001"
REFUSED = ["2025-01-01T00:00:00+20:00", "2025-01-01T00:00:00-14:01", "2025-01-01T00:00:00+23:59:59",
           "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00Z", "2201-01-01T00:00:00Z", "2025-01-01T00:00:00",
           "2025-01-01T00:00:00Z\n", "2025-01-01T00:00:00\x00Z", "", "x" * 100, None, 20250101]
ACCEPTED = ["2025-01-01T00:00:00Z", "2025-01-01T00:00:00+14:00", "2025-01-01T00:00:00-12:00",
            "2025-06-30T23:59:59.123456+05:30"]


@pytest.mark.parametrize("value", REFUSED)
def test_date_times_outside_what_can_be_stored_are_refused(value):
    assert parse_timestamp(value) is None


@pytest.mark.parametrize("value", ACCEPTED)
def test_real_date_times_are_accepted_with_their_offset(value):
    parsed = parse_timestamp(value)
    assert parsed is not None and parsed.utcoffset() is not None


@pytest.mark.parametrize("field", ["order_date", "ai_generation_started_at"])
def test_an_order_with_an_offset_past_what_postgresql_stores_is_a_422(field):
    with pytest.raises(Invalid) as refused:
        orders.validate_order(order_body(**{field: "2025-01-01T00:00:00+20:00"}))
    assert field in refused.value.fields


def b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize("purpose", ["audit", "errors", "deliveries", "queue", "api-stages"])
@pytest.mark.parametrize("cursor", [
    b64(f"2025-01-01T00:00:00+20:00|{ROW}"), b64(f"9999-12-31T23:59:59-14:00|{ROW}"), b64("[" * 3000),
    "A" * 5000, b64(f"2025-01-01T00:00:00|{ROW}"), b64("[" * 3000 + "]" * 3000),
    b64(json.dumps(["2025-01-01T00:00:00+20:00", ROW])),
])
def test_a_hostile_cursor_is_a_clear_400_for_every_list(app, purpose, cursor):
    with pytest.raises(BadCursor) as refused:
        decode_cursor(purpose, cursor)
    assert refused.value.status == 400
