"""The batch page without JavaScript: opening claims and redirects to the batch, the form decides each card, the
answer and the next batch follow, the same form twice decides nothing twice, undo and leaving work by form."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from lhb_review.extensions import db
from lhb_review.models import AuditLog
from tests.factories import make_order, make_stage, make_user
from tests.flow_helpers import claim_row, stage_row


@pytest.fixture
def reviewer():
    return make_user("ana@example.com")


def waiting(n: int, **order_fields) -> list[str]:
    now = datetime.now(timezone.utc)
    ids = []
    for i in range(n):
        order = make_order(**order_fields)
        make_stage(order, "preBria", "pending", created_at=now - timedelta(hours=40 - i))
        ids.append(order.order_id)
    return ids


def open_batch(browser, query: str = "stage=preBria&size=6"):
    response = browser.get(f"/queue/batch?{query}")
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    location = response.headers["Location"]
    batch_id = re.search(r"/queue/batch/([0-9a-f-]{36})$", location).group(1)
    page = browser.get(location)
    assert page.status_code == 200
    return batch_id, page.get_data(as_text=True)


def form_of(html: str) -> dict:
    """The batch form as a browser would send it untouched: every card approved."""
    fields = dict(re.findall(r'name="(card-\d+|fingerprint-\d+|stage)" value="([^"]*)"', html))
    for name in [k for k in fields if k.startswith("card-")]:
        fields[name.replace("card-", "choice-")] = "approve"
    return fields


def batch_rows(batch_id: str, action: str) -> list[AuditLog]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditLog).where(AuditLog.details["batch"].astext == batch_id,
                                                          AuditLog.action == action)))


def test_opening_a_batch_claims_the_cards_and_shows_them(app, login_as, reviewer):
    ids = waiting(8)
    batch_id, html = open_batch(login_as(reviewer))
    assert html.count("data-batch-card") == 6
    for order_id in ids[:6]:
        assert order_id in html and claim_row(order_id).claimed_by == reviewer.email
    assert claim_row(ids[6]) is None
    assert len(batch_rows(batch_id, "stage_claimed")) == 6
    assert 'src="/static/js/batch.js"' in html and "<style" not in html and "<script>" not in html


def test_the_queues_filters_apply_to_the_batch(app, login_as, reviewer):
    waiting(3, project="bedtime-hero")
    dinos = waiting(6, project="dino-friends")
    _, html = open_batch(login_as(reviewer), "stage=preBria&size=6&project=dino-friends")
    assert sorted(re.findall(r'name="card-\d+" value="([^"]+)"', html)) == sorted(dinos)


@pytest.mark.parametrize("query", ["stage=postPdf", "stage=nope", "stage=preBria&size=lots",
                                   "stage=preBria&sort=sideways"])
def test_a_batch_that_cannot_be_opened_says_why_and_claims_nothing(app, login_as, reviewer, query):
    ids = waiting(6)
    response = login_as(reviewer).get(f"/queue/batch?{query}")
    assert response.status_code == 400 and "This batch cannot be used" in response.get_data(as_text=True)
    assert all(claim_row(i) is None for i in ids)


def test_submitting_the_form_decides_each_card_then_opens_the_next_batch(app, login_as, reviewer):
    ids = waiting(9)
    browser = login_as(reviewer)
    batch_id, html = open_batch(browser)
    form = form_of(html)
    first = ids[0]
    index = next(k for k, v in form.items() if v == first).split("-")[1]
    form[f"choice-{index}"], form[f"notes-{index}"], form[f"reasons-{index}"] = "reject", "Eyes are green.", "character_drift"
    response = browser.post(f"/queue/batch/{batch_id}", form)
    assert response.status_code == 303 and "/queue/batch?" in response.headers["Location"]
    assert stage_row(first).status == "rejected"
    assert [stage_row(i).status for i in ids[1:6]] == ["approved"] * 5
    assert len(batch_rows(batch_id, "stage_approved")) == 5 and len(batch_rows(batch_id, "stage_rejected")) == 1

    following = browser.get(response.headers["Location"])
    page = browser.get(following.headers["Location"]).get_data(as_text=True)
    assert "Last batch: 6 decided, 0 not" in page
    assert re.search(r"This session: <strong>6</strong> decisions", page)  # per hour once a minute has passed
    assert sorted(re.findall(r'name="card-\d+" value="([^"]+)"', page)) == sorted(ids[6:])


def test_the_same_form_twice_decides_nothing_twice(app, login_as, reviewer):
    waiting(6)
    browser = login_as(reviewer)
    batch_id, html = open_batch(browser)
    form = form_of(html)
    browser.post(f"/queue/batch/{batch_id}", form)
    before = len(batch_rows(batch_id, "stage_approved"))
    response = browser.post(f"/queue/batch/{batch_id}", form)
    assert response.status_code == 303 and len(batch_rows(batch_id, "stage_approved")) == before == 6
    page = browser.get(browser.get(response.headers["Location"]).headers["Location"]).get_data(as_text=True)
    assert page.count("already decided in this batch") == 6


@pytest.mark.parametrize("change", [{"choice-0": "maybe"}, {"card-0": ""}, {"stage": "postPdf"}])
def test_a_form_this_page_could_not_have_sent_decides_nothing(app, login_as, reviewer, change):
    ids = waiting(6)
    browser = login_as(reviewer)
    batch_id, html = open_batch(browser)
    response = browser.post(f"/queue/batch/{batch_id}", {**form_of(html), **change})
    assert response.status_code == 422 and "Nothing was decided" in response.get_data(as_text=True)
    assert all(stage_row(i).status == "in_review" for i in ids)


def test_undo_of_the_batch_by_form(app, login_as, reviewer):
    ids = waiting(6)
    browser = login_as(reviewer)
    batch_id, html = open_batch(browser)
    browser.post(f"/queue/batch/{batch_id}", form_of(html))
    response = browser.post(f"/queue/batch/{batch_id}/undo")
    assert response.status_code == 303
    assert all(stage_row(i).status != "approved" for i in ids)
    assert len(batch_rows(batch_id, "stage_undone")) == 6


def test_leaving_gives_back_the_cards_not_decided(app, login_as, reviewer):
    ids = waiting(6)
    browser = login_as(reviewer)
    batch_id, _ = open_batch(browser)
    response = browser.post(f"/queue/batch/{batch_id}/release", {"beacon": "1"})
    assert response.status_code == 204
    assert all(claim_row(i) is None and stage_row(i).status == "pending" for i in ids)
    assert len(batch_rows(batch_id, "stage_released")) == 6


def test_a_card_whose_machine_checks_fail_says_which_before_anyone_approves_it(app, login_as, reviewer):
    from lhb_review.models import CheckRun
    from lhb_review.review.checks import enqueue_checks

    failing, passing = waiting(2)
    for order_id in (failing, passing):
        enqueue_checks(order_id, "preBria")
    db.session.execute(update(CheckRun).where(CheckRun.order_id == failing)
                       .values(state="done", failing=["image.resolution"]))
    db.session.execute(update(CheckRun).where(CheckRun.order_id == passing).values(state="done", failing=[]))
    db.session.commit()
    _, html = open_batch(login_as(reviewer))
    cards = {order_id: html[html.index(f'value="{order_id}"'):] for order_id in (failing, passing)}
    assert 'data-checks="failing"' in cards[failing].split("</li>", 1)[0]
    assert "image.resolution" in cards[failing].split("</li>", 1)[0]
    assert 'data-checks="failing"' not in cards[passing].split("</li>", 1)[0]
