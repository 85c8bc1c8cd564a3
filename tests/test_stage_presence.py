"""The stage page's side of claims: presence polls answered 304 while nothing changed, refused decisions that
say who and when and bring the claim bar along, notes kept, blocked stages not claimed, claims hidden in history."""
from __future__ import annotations

import re

import pytest

from tests.factories import make_order_with_stages, make_user
from tests.flow_helpers import audit_actions, claim_row, stage_row


@pytest.fixture
def ana():
    return make_user("ana@example.com")


@pytest.fixture
def ben():
    return make_user("ben@example.com")


def path(order_id, stage="preBria", action=None):
    base = f"/orders/{order_id}/stages/{stage}"
    return f"{base}/{action}" if action else base


def presence(browser, order_id, etag=None, seen="free"):
    headers = {"HX-Request": "true"}
    if etag:
        headers["If-None-Match"] = etag
    return browser.get(path(order_id, action=f"presence?seen={seen}"), headers=headers)


def test_a_presence_poll_is_304_until_the_claim_changes_hands(app, login_as, ana, ben):
    order_id = make_order_with_stages("pending").order_id
    a = login_as(ana)
    a.post(path(order_id, action="claim"), htmx=True)
    first = presence(a, order_id, seen="mine")
    assert first.status_code == 200 and first.headers["ETag"]
    version = re.search(r'data-presence-version="([^"]+)"', first.get_data(as_text=True)).group(1)
    assert first.headers["ETag"] == f'"{version}"'
    again = presence(a, order_id, first.headers["ETag"], seen="mine")
    assert again.status_code == 304 and again.get_data() == b""
    login_as(ben).post(path(order_id, action="takeover"), htmx=True)
    changed = presence(a, order_id, first.headers["ETag"], seen="mine")
    html = changed.get_data(as_text=True)
    assert changed.status_code == 200 and changed.headers["HX-Trigger"] == "claim-changed"
    assert "Being reviewed by ben@example.com" in html and changed.headers["ETag"] != first.headers["ETag"]


def test_every_open_stage_page_polls_its_claim_bar_whoever_holds_it(app, login_as, ana):
    order_id = make_order_with_stages("pending").order_id
    html = login_as(ana).get(path(order_id)).get_data(as_text=True)
    bar = re.search(r'<div id="claim-bar"[^>]*>', html, re.S).group(0)
    assert f"every {app.config['CLAIM_PRESENCE_SECONDS']}s" in bar
    assert app.config["CLAIM_PRESENCE_SECONDS"] <= 2


def test_a_refused_decision_says_who_took_it_and_when_keeps_the_notes_and_brings_the_bar(app, login_as, ana, ben):
    order_id = make_order_with_stages("pending").order_id
    a = login_as(ana)
    a.post(path(order_id, action="claim"), htmx=True)
    login_as(ben).post(path(order_id, action="takeover"), htmx=True)
    when = claim_row(order_id).claimed_at.strftime("%H:%M")
    response = a.post(path(order_id, action="reject"), {"notes": "Hair should be brown.", "reasons": "character_drift"},
                      htmx=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert f"ben@example.com took this over at {when} UTC" in html
    assert "Hair should be brown." in html
    assert re.search(r'<div id="claim-bar"[^>]*hx-swap-oob="true"', html)
    assert "Being reviewed by ben@example.com" in html
    assert "Take it over in the bar above" not in html  # one warning, not two
    assert stage_row(order_id).status == "in_review"


def test_notes_are_kept_when_someone_else_decided_first(app, login_as, ana, ben):
    order_id = make_order_with_stages("pending").order_id
    b = login_as(ben)
    b.post(path(order_id, action="claim"), htmx=True)
    b.post(path(order_id, action="approve"), {}, htmx=True)
    response = login_as(ana).post(path(order_id, action="reject"), {"notes": "Eyes are blue, specs say brown."},
                                  htmx=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 409 and "ben@example.com approved this stage at" in html
    unsent = re.search(r'<div class="unsent-notes" data-unsent-notes\s*>.*?</div>', html, re.S)
    assert unsent and "Eyes are blue, specs say brown." in unsent.group(0)
    assert stage_row(order_id).status == "approved"


def test_opening_a_stage_that_cannot_be_decided_yet_does_not_claim_it(app, login_as, ana):
    order_id = make_order_with_stages("pending", "pending").order_id
    html = login_as(ana).get(path(order_id, "postBria")).get_data(as_text=True)
    assert 'hx-trigger="load"' not in html
    assert "It can be claimed once the stages before it are approved." in html
    assert claim_row(order_id, "postBria") is None
    assert stage_row(order_id, "postBria").status == "pending"
    assert audit_actions(order_id) == []


def test_stage_history_marks_claims_to_hide_them_behind_a_switch(app, login_as, ana):
    order_id = make_order_with_stages("pending").order_id
    a = login_as(ana)
    a.post(path(order_id, action="claim"), htmx=True)
    a.post(path(order_id, action="approve"), {}, htmx=True)
    html = a.get(path(order_id)).get_data(as_text=True)
    history = html[html.index('id="stage-history"'):]
    assert 'data-show-claims' in history
    claimed = re.search(r'<li class="timeline-item action-stage_claimed([^"]*)"', history)
    approved = re.search(r'<li class="timeline-item action-stage_approved([^"]*)"', history)
    assert "timeline-claim" in claimed.group(1) and "timeline-claim" not in approved.group(1)
