"""One cursor format and one keyset query for every paged list: signed, bound to its list, a clear 400."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from lhb_review.core.paging import AFTER, BEFORE, BadCursor, decode_cursor, encode_cursor

WHEN = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def test_a_cursor_round_trips_its_position(app):
    row_id = uuid.uuid4()
    cursor = decode_cursor("audit", encode_cursor("audit", BEFORE, WHEN, row_id))
    assert (cursor.direction, cursor.key, cursor.id) == (BEFORE, WHEN, row_id)


def test_a_cursor_of_one_list_is_no_cursor_of_another(app):
    token = encode_cursor("audit", AFTER, WHEN, uuid.uuid4())
    with pytest.raises(BadCursor):
        decode_cursor("queue", token)


@pytest.mark.parametrize("token", ["not-a-cursor", "[" * 3000, "x" * 600, "é", "WyJhIiwiMjAyNiJd.forged"])
def test_a_cursor_nobody_handed_out_is_a_400(app, token):
    with pytest.raises(BadCursor) as refused:
        decode_cursor("errors", token)
    assert refused.value.status == 400 and "page link is broken" in refused.value.message


def test_no_cursor_is_the_first_page(app):
    assert decode_cursor("deliveries", None) is None and decode_cursor("deliveries", "") is None
