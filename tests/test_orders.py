"""The order page: customer, specs laid out as definition lists, each stage's decision, the audit trail."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from lhb_review.extensions import db
from lhb_review.models import AuditLog
from tests.factories import make_order, make_stage, make_user
from tests.sql_counter import count_statements

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def reviewer(app, login_as):
    return login_as(make_user("rev@example.com"))


def test_order_page_shows_customer_specs_and_stages(app, reviewer):
    order = make_order("LHB-1", customer_first_name="Grace", customer_last_name="Hopper",
                       customer_email="grace@example.com", platform="amazon", amazon_order_id="113-0000001-0000002",
                       project="space-explorer", order_details={"quantity": 2, "gift_wrap": True})
    make_stage(order, "preBria", "approved", reviewer_email="sam@example.com", reviewed_at=T0,
               reviewer_notes="Lovely curls")
    make_stage(order, "postBria", "rejected", reviewer_email="alex@example.com", reviewed_at=T0,
               reviewer_notes="Name misspelled")
    response = reviewer.get("/orders/LHB-1")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    for text in ("Grace Hopper", "grace@example.com", "amazon", "113-0000001-0000002", "space-explorer",
                 "sam@example.com", "Lovely curls", "alex@example.com", "Name misspelled", "Not submitted yet"):
        assert text in body
    assert re.search(r"<dt>Name</dt>\s*<dd>Maya</dd>", body)
    assert re.search(r"<dt>Hair</dt>\s*<dd><dl class=\"specs specs-nested\">", body)
    assert re.search(r"<dt>Title</dt>\s*<dd>Maya and the Moon</dd>", body)
    assert re.search(r"<dt>Gift wrap</dt>\s*<dd>Yes</dd>", body)
    assert "{&#34;" not in body and '{"name"' not in body  # specs are not dumped as JSON
    assert 'href="/orders/LHB-1/stages/preBria"' in body


def test_order_audit_trail_is_newest_first(app, reviewer):
    order = make_order("LHB-2")
    make_stage(order, "preBria", "approved")
    for minutes, action in [(0, "stage_submitted"), (30, "stage_approved"), (10, "stage_rejected")]:
        db.session.add(AuditLog(order_id="LHB-2", action=action, stage="preBria", reviewer_email="sam@example.com",
                                details={"status_before": "pending", "status_after": "approved", "notes": "n" + action},
                                created_at=T0 + timedelta(minutes=minutes)))
    db.session.commit()
    body = reviewer.get("/orders/LHB-2").get_data(as_text=True)
    trail = body[body.index('id="audit-title"'):]
    positions = [trail.index(f"nstage_{a}") for a in ("approved", "rejected", "submitted")]
    assert positions == sorted(positions)
    assert "Pending" in trail and "Approved" in trail


def test_unknown_order_is_404(app, reviewer):
    response = reviewer.get("/orders/NOPE-1")
    assert response.status_code == 404
    assert "There is no order" in response.get_data(as_text=True)


def test_order_without_stages_or_specs_still_renders(app, reviewer):
    make_order("LHB-3", character_specs=None, book_specs=None, r2_assets=None)
    body = reviewer.get("/orders/LHB-3").get_data(as_text=True)
    assert body.count("Not submitted yet") == 3
    assert "No specs were sent with this order." in body


def test_order_page_escapes_markup_in_specs_and_notes(app, reviewer):
    order = make_order("LHB-4", character_specs={"name": "<img src=x onerror=alert(1)>"})
    make_stage(order, "preBria", "rejected", reviewer_notes="<b>bold</b>")
    body = reviewer.get("/orders/LHB-4").get_data(as_text=True)
    assert "<img src=x" not in body and "<b>bold</b>" not in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body


def test_order_page_needs_few_statements(app, reviewer):
    order = make_order("LHB-5")
    make_stage(order, "preBria", "approved")
    with count_statements() as seen:
        assert reviewer.get("/orders/LHB-5").status_code == 200
    assert len(seen) <= 4
