"""Service levels: how a stage's wait is judged and how the queue can be ordered."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from lhb_review.extensions import db
from lhb_review.models import Order, ReviewStage
from lhb_review.review import sla
from tests.factories import make_order_with_stages

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("hours,level", [(0, "ok"), (11.9, "ok"), (12, "warn"), (23.9, "warn"), (24, "breach"),
                                         (100, "breach")])
def test_age_levels_follow_the_configured_thresholds(app, hours, level):
    assert (app.config["SLA_WARN_HOURS"], app.config["SLA_BREACH_HOURS"]) == (12, 24)
    assert sla.age(NOW - timedelta(hours=hours), NOW).level == level


@pytest.mark.parametrize("waited,text", [(timedelta(minutes=5), "5 min"), (timedelta(hours=3, minutes=7), "3 h 07 min"),
                                         (timedelta(days=2, hours=4, minutes=30), "2 d 4 h")])
def test_age_reads_like_a_person_would_say_it(app, waited, text):
    assert sla.age(NOW - waited, NOW).text == text


def test_queue_sorts_by_age_or_by_order_date_with_keyset_paging(app):
    old_order = make_order_with_stages("pending", order_date=NOW - timedelta(days=5))
    new_order = make_order_with_stages("pending", order_date=NOW - timedelta(days=1))
    # The newer order's stage was submitted first.
    db.session.execute(db.update(ReviewStage).where(ReviewStage.order_id == new_order.order_id)
                       .values(created_at=NOW - timedelta(hours=30)))
    db.session.execute(db.update(ReviewStage).where(ReviewStage.order_id == old_order.order_id)
                       .values(created_at=NOW - timedelta(hours=2)))
    db.session.commit()

    def page(sort, after=None):
        query = select(ReviewStage, Order).join(Order, Order.order_id == ReviewStage.order_id)
        if after is not None:
            query = query.where(sla.after(sort, after))
        return db.session.execute(query.order_by(*sla.sort_columns(sort)).limit(1)).one()

    first = page("age")
    assert first.Order.order_id == new_order.order_id
    assert page("age", sla.cursor_values("age", *first)).Order.order_id == old_order.order_id
    first = page("order_date")
    assert first.Order.order_id == old_order.order_id
    assert page("order_date", sla.cursor_values("order_date", *first)).Order.order_id == new_order.order_id
    assert sla.parse_sort("'; drop") == "age"
