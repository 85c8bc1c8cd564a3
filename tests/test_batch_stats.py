"""Statistics tell single decisions and batch decisions apart (by details.batch in the decision's audit row)."""
from __future__ import annotations

from lhb_review import review
from lhb_review.ops import opsstats
from lhb_review.review import batches
from lhb_review.review.batches import Choice
from tests.factories import make_order_with_stages, make_user
from tests.flow_helpers import ANA, BEN


def test_review_stats_count_batch_and_single_decisions_apart(app):
    for _ in range(6):
        make_order_with_stages("pending")
    opened = batches.open_batch(ANA, "preBria", size=6)
    batches.decide(ANA, opened.batch_id, [Choice(c, batches.APPROVE) for c in opened.cards[:4]])
    batches.release(ANA, opened.batch_id, opened.cards)
    rest = opened.cards[4:]
    review.approve(ANA, rest[0].order_id, "preBria")
    review.reject(BEN, rest[1].order_id, "preBria", "Wrong outfit.", ["character_drift"])

    stats = opsstats.review_stats(30)

    by_name = {r.reviewer: r for r in stats.reviewers}
    assert (by_name[ANA.email].single, by_name[ANA.email].in_batches) == (1, 4)
    assert (by_name[BEN.email].single, by_name[BEN.email].in_batches) == (1, 0)
    assert (stats.single, stats.in_batches) == (2, 4)


def test_the_statistics_page_shows_single_and_batch_decisions(app, login_as):
    make_order_with_stages("pending")
    opened = batches.open_batch(ANA, "preBria", size=6)
    batches.decide(ANA, opened.batch_id, [Choice(c, batches.APPROVE) for c in opened.cards])
    html = login_as(make_user("viewer@example.com")).get("/stats").get_data(as_text=True)
    assert '<strong data-stat="single">0</strong>' in html and '<strong data-stat="in-batches">1</strong>' in html
