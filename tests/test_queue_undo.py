"""Deciding the last waiting stage with "& next" lands on the queue, which still offers to undo that decision."""
from __future__ import annotations

from tests.factories import make_order_with_stages, make_user
from tests.flow_helpers import stage_row


def test_the_end_of_the_queue_offers_undo_for_the_last_decision(app, login_as):
    order_id = make_order_with_stages("pending").order_id
    ana = login_as(make_user("ana@example.com"))
    base = f"/orders/{order_id}/stages/preBria"
    ana.post(f"{base}/claim")
    response = ana.post(f"{base}/approve", {"next": "1"}, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert response.request.path == "/queue"
    assert "Nothing else is waiting in this queue" in html
    assert f'action="{base}/undo"' in html and "left to take it back" in html
    assert stage_row(order_id).status == "approved"
    again = ana.get("/queue").get_data(as_text=True)
    assert f'action="{base}/undo"' not in again  # offered once, on the page right after the decision
