"""The next waiting stage: actionable, in queue order, after the current one, wrapping round."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from lhb_review.extensions import db
from lhb_review.models import Order, ReviewStage
from lhb_review import review
from lhb_review.review.next_stage import next_waiting
from tests.factories import make_order_with_stages
from tests.flow_helpers import BEN

NOW = datetime.now(timezone.utc)


def submitted(order_id: str, hours_ago: float) -> None:
    db.session.execute(db.update(ReviewStage).where(ReviewStage.order_id == order_id)
                       .values(created_at=NOW - timedelta(hours=hours_ago)))
    db.session.commit()


def test_next_in_age_order_skipping_blocked_held_and_decided_stages(app):
    first = make_order_with_stages("pending").order_id
    blocked = make_order_with_stages("pending", "pending").order_id  # its postBria waits on preBria
    held = make_order_with_stages("pending").order_id
    decided = make_order_with_stages("approved").order_id
    last = make_order_with_stages("approved", "pending").order_id
    for hours, order_id in zip((50, 40, 30, 20, 10), (first, blocked, held, decided, last)):
        submitted(order_id, hours)
    review.claim(BEN, held, "preBria")
    me = "ana@example.com"
    assert next_waiting(me) == (first, "preBria")
    assert next_waiting(me, current=(first, "preBria")) == (blocked, "preBria")
    assert next_waiting(me, current=(blocked, "preBria")) == (last, "postBria")
    assert next_waiting(me, current=(last, "postBria")) == (first, "preBria")  # round to the start
    assert next_waiting("ben@example.com", current=(blocked, "preBria")) == (held, "preBria")  # his own claim


def test_filters_and_the_order_date_sort(app):
    a = make_order_with_stages("pending", platform="amazon", order_date=NOW - timedelta(days=1)).order_id
    b = make_order_with_stages("pending", platform="amazon", order_date=NOW - timedelta(days=3)).order_id
    make_order_with_stages("pending", platform="shopify", order_date=NOW - timedelta(days=9))
    amazon = [Order.platform == "amazon"]
    assert next_waiting("x@example.com", filters=amazon, sort="order_date") == (b, "preBria")
    assert next_waiting("x@example.com", filters=amazon, sort="order_date", current=(b, "preBria")) == (a, "preBria")


def test_nothing_left(app):
    only = make_order_with_stages("pending").order_id
    assert next_waiting("x@example.com", current=(only, "preBria")) is None


def test_previous_goes_back_and_wraps_to_the_end(app):
    a = make_order_with_stages("pending").order_id
    b = make_order_with_stages("pending").order_id
    submitted(a, 20)
    submitted(b, 10)
    assert next_waiting("x@example.com", current=(b, "preBria"), direction="prev") == (a, "preBria")
    assert next_waiting("x@example.com", current=(a, "preBria"), direction="prev") == (b, "preBria")
