"""HTTP tests of the review-flow routes: claims, undo, replacement, timeline and report; database checked each time."""
from __future__ import annotations

import io
import re
from datetime import datetime, timedelta, timezone

import pytest

from lhb_review.extensions import db
from lhb_review.models import ReviewStage
from lhb_review import review
from lhb_review.review import fingerprints
from tests import upload_files as files
from tests.factories import make_order_with_stages, make_user
from tests.flow_helpers import (ANA, BEN, age_decisions, approval_row, audit_actions, audit_rows, claim_row, decision_rows,
                                expire_claim, stage_row)


@pytest.fixture
def reviewer():
    return make_user("ana@example.com")


@pytest.fixture
def other():
    return make_user("ben@example.com")


def path(order_id, stage="preBria", action=None):
    base = f"/orders/{order_id}/stages/{stage}"
    return f"{base}/{action}" if action else base


# --- claims ---------------------------------------------------------------------------------------------

def test_claim_with_htmx_answers_the_claim_bar(app, login_as, reviewer):
    order_id = make_order_with_stages("pending").order_id
    browser = login_as(reviewer)
    response = browser.post(path(order_id, action="claim"), htmx=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="claim-bar"' in html and "<html" not in html
    assert "You are reviewing this stage" in html and response.headers["HX-Trigger"] == "claim-changed"
    assert stage_row(order_id).status == "in_review" and claim_row(order_id).claimed_by == "ana@example.com"
    assert audit_actions(order_id) == ["stage_claimed"]


def test_claim_without_javascript_redirects_to_the_stage(app, login_as, reviewer):
    order_id = make_order_with_stages("pending").order_id
    response = login_as(reviewer).post(path(order_id, action="claim"))
    assert response.status_code == 303 and response.headers["Location"].endswith(path(order_id))
    assert claim_row(order_id).claimed_by == "ana@example.com"


def test_a_second_reviewer_sees_who_holds_the_stage_and_gets_409(app, login_as, reviewer, other):
    order_id = make_order_with_stages("pending").order_id
    login_as(reviewer).post(path(order_id, action="claim"), htmx=True)
    ben = login_as(other)
    response = ben.post(path(order_id, action="claim"), htmx=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 409 and "Being reviewed by ana@example.com" in html and "Take over" in html
    assert claim_row(order_id).claimed_by == "ana@example.com"
    assert audit_actions(order_id) == ["stage_claimed"]
    presence = ben.get(path(order_id, action="presence"), headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Being reviewed by ana@example.com" in presence


def test_takeover_release_and_renew(app, login_as, reviewer, other):
    order_id = make_order_with_stages("pending").order_id
    ana = login_as(reviewer)
    ana.post(path(order_id, action="claim"), htmx=True)
    ben = login_as(other)
    assert ben.post(path(order_id, action="takeover"), htmx=True).status_code == 200
    assert claim_row(order_id).claimed_by == "ben@example.com"
    refused = ana.post(path(order_id, action="renew"), htmx=True)
    assert refused.status_code == 409 and "ben@example.com" in refused.get_data(as_text=True)
    assert ben.post(path(order_id, action="renew"), htmx=True).status_code == 200
    assert ben.post(path(order_id, action="release"), htmx=True).status_code == 200
    assert stage_row(order_id).status == "pending" and claim_row(order_id) is None
    assert audit_actions(order_id) == ["stage_claimed", "stage_claim_taken_over", "stage_released"]


def test_a_page_closing_gives_its_claim_back_quietly(app, login_as, reviewer):
    order_id = make_order_with_stages("pending").order_id
    ana = login_as(reviewer)
    ana.post(path(order_id, action="claim"), htmx=True)
    assert ana.post(path(order_id, action="release"), {"beacon": "1"}).status_code == 204
    assert ana.post(path(order_id, action="release"), {"beacon": "1"}).status_code == 204  # nothing left: still quiet
    assert claim_row(order_id) is None and audit_actions(order_id) == ["stage_claimed", "stage_released"]


@pytest.mark.parametrize("action", ["claim", "renew", "release", "takeover", "undo"])
def test_flow_actions_need_a_csrf_token(app, login_as, reviewer, action):
    order_id = make_order_with_stages("pending").order_id
    response = login_as(reviewer).post(path(order_id, action=action), csrf=False)
    assert response.status_code == 400
    assert stage_row(order_id).status == "pending" and audit_rows(order_id) == []


@pytest.mark.parametrize("action", ["claim", "release", "takeover", "undo"])
def test_flow_actions_need_a_login(app, client, action):
    order_id = make_order_with_stages("pending").order_id
    response = client.post(path(order_id, action=action))
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert audit_rows(order_id) == []


@pytest.mark.parametrize("url", ["/orders/NOPE/stages/preBria/claim", "/orders/{o}/stages/final/claim",
                                 "/orders/{o}/stages/postPdf/claim"])
def test_unknown_order_or_stage_is_404(app, login_as, reviewer, url):
    order_id = make_order_with_stages("pending").order_id
    assert login_as(reviewer).post(url.format(o=order_id), htmx=True).status_code == 404
    assert audit_rows(order_id) == []


def test_a_lapsed_claim_lets_the_next_reviewer_in(app, login_as, reviewer, other):
    order_id = make_order_with_stages("pending").order_id
    login_as(reviewer).post(path(order_id, action="claim"), htmx=True)
    expire_claim(order_id)
    assert login_as(other).post(path(order_id, action="claim"), htmx=True).status_code == 200
    assert claim_row(order_id).claimed_by == "ben@example.com"


# --- uploads ----------------------------------------------------------------------------------------------

def upload(browser, order_id, key, data, name="new.png", stage="preBria"):
    return browser.post(path(order_id, stage, "replace"),
                        {"asset_key": key, "file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def test_replacing_an_asset_through_the_form(app, login_as, reviewer):
    order = make_order_with_stages("pending")
    review.approve(ANA, order.order_id, "preBria")
    key = order.r2_assets["preBria"][0]["key"]
    browser = login_as(reviewer)
    response = upload(browser, order.order_id, key, files.image_bytes("WEBP"), "fix.webp")
    assert response.status_code == 303 and response.headers["Location"].endswith(path(order.order_id))
    assert stage_row(order.order_id).status == "pending" and approval_row(order.order_id).status == "pending"
    assert sorted(audit_actions(order.order_id)) == ["approval_voided", "asset_replaced", "stage_approved"]
    new_key = next(a for a in audit_rows(order.order_id) if a.action == "asset_replaced").details["new_key"]
    served = browser.get(f"/assets/{new_key}")
    assert served.status_code == 200 and served.data == files.image_bytes("WEBP")


@pytest.mark.parametrize("data,name,message", [
    (b"#!/bin/sh\nrm -rf /\n", "innocent.png", "not a PNG, JPEG or WebP image, or a PDF"),
    (files.png_bomb(), "bomb.png", "decompression bomb"),
], ids=["script", "bomb"])
def test_refused_uploads_flash_why_and_change_nothing(app, login_as, reviewer, data, name, message):
    order = make_order_with_stages("pending")
    browser = login_as(reviewer)
    response = upload(browser, order.order_id, order.r2_assets["preBria"][0]["key"], data, name)
    assert response.status_code == 303
    assert audit_rows(order.order_id) == []
    with browser.client.session_transaction() as session:
        flashes = [text for _, text in session.get("_flashes", [])]
    assert any(message in text for text in flashes)


# --- undo ---------------------------------------------------------------------------------------------------

def test_undo_within_the_window(app, login_as, reviewer):
    order_id = make_order_with_stages("pending").order_id
    browser = login_as(reviewer)
    review.approve(ANA, order_id, "preBria")
    response = browser.post(path(order_id, action="undo"), htmx=True)
    assert response.status_code == 200 and 'id="decision-panel"' in response.get_data(as_text=True)
    assert response.headers["HX-Trigger"] == "stage-decided"
    assert stage_row(order_id).status == "pending" and approval_row(order_id) is None
    assert audit_actions(order_id) == ["stage_approved", "stage_undone"]


def test_undo_after_the_window_is_409_and_changes_nothing(app, login_as, reviewer):
    order_id = make_order_with_stages("pending").order_id
    review.approve(ANA, order_id, "preBria")
    age_decisions(order_id, 3600)
    response = login_as(reviewer).post(path(order_id, action="undo"), htmx=True)
    assert response.status_code == 409 and "admin can reopen" in response.get_data(as_text=True)
    assert stage_row(order_id).status == "approved" and audit_actions(order_id) == ["stage_approved"]
    assert decision_rows(order_id)[0].undone_at is None


def test_undo_by_someone_else_is_403(app, login_as, other):
    order_id = make_order_with_stages("pending").order_id
    review.approve(ANA, order_id, "preBria")
    assert login_as(other).post(path(order_id, action="undo"), htmx=True).status_code == 403
    assert stage_row(order_id).status == "approved"


# --- timeline and report ---------------------------------------------------------------------------------------

def test_timeline_page_and_its_fragment(app, login_as, reviewer):
    order_id = make_order_with_stages("pending").order_id
    review.claim(ANA, order_id, "preBria")
    review.reject(ANA, order_id, "preBria", notes="<b>hair</b>", reasons=["character_drift"])
    browser = login_as(reviewer)
    page = browser.get(f"/orders/{order_id}/timeline").get_data(as_text=True)
    assert "Timeline of" in page and "Character drift" in page and "&lt;b&gt;hair&lt;/b&gt;" in page
    fragment = browser.get(f"/orders/{order_id}/timeline?kind=claims", headers={"HX-Request": "true"})
    html = fragment.get_data(as_text=True)
    assert 'id="timeline"' in html and "<html" not in html and "Claimed" in html and "Rejected" not in html
    assert browser.get("/orders/NOPE/timeline").status_code == 404


def test_reject_report_counts_reasons_per_stage(app, login_as, reviewer):
    for reasons in (["character_drift"], ["character_drift", "anatomy"]):
        order_id = make_order_with_stages("pending").order_id
        review.reject(ANA, order_id, "preBria", notes="no", reasons=reasons)
    html = login_as(reviewer).get("/reports/rejects?period=7").get_data(as_text=True)
    assert "Why stages are rejected" in html
    row = html.split("Character drift", 1)[1].split("</tr>", 1)[0]
    assert '<span class="report-n">2</span>' in row


# --- the decision forms -----------------------------------------------------------------------------------

def test_reject_through_the_form_stores_reasons_and_assets(app, login_as, reviewer):
    order = make_order_with_stages("pending")
    key = order.r2_assets["preBria"][0]["key"]
    response = login_as(reviewer).post(path(order.order_id, action="reject"), {
        "notes": "Hair drifts", "reasons": ["character_drift", "anatomy"], "asset_keys": [key]}, htmx=True)
    assert response.status_code == 200 and response.headers["HX-Trigger"] == "stage-decided"
    [decision] = decision_rows(order.order_id)
    assert (decision.reasons, decision.reason_assets) == (["character_drift", "anatomy"], [key])
    assert audit_rows(order.order_id)[0].details["reasons"] == ["character_drift", "anatomy"]


def test_reject_without_a_reason_is_422_with_the_form_kept(app, login_as, reviewer):
    order_id = make_order_with_stages("pending").order_id
    response = login_as(reviewer).post(path(order_id, action="reject"), {"notes": "Something is off"}, htmx=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="decision-panel"' in html
    assert "Pick at least one reason" in html and "Something is off" in html
    assert stage_row(order_id).status == "pending" and audit_rows(order_id) == [] and decision_rows(order_id) == []


def test_reasons_picked_before_an_error_stay_picked(app, login_as, reviewer):
    order_id = make_order_with_stages("pending").order_id
    html = login_as(reviewer).post(path(order_id, action="reject"), {"notes": "", "reasons": "anatomy"},
                                   htmx=True).get_data(as_text=True)
    assert 'value="anatomy"' in html and re.search(r'value="anatomy"\s+checked', html)


def test_a_decision_on_assets_the_page_did_not_show_is_409(app, login_as, reviewer):
    order = make_order_with_stages("pending")
    response = login_as(reviewer).post(path(order.order_id, action="approve"), {"fingerprint": "0" * 64}, htmx=True)
    assert response.status_code == 409 and "changed while you were looking" in response.get_data(as_text=True)
    assert stage_row(order.order_id).status == "pending" and approval_row(order.order_id) is None
    assert audit_rows(order.order_id) == []


def test_the_page_carries_the_fingerprint_of_the_assets_it_shows(app, login_as, reviewer):
    order = make_order_with_stages("pending")
    html = login_as(reviewer).get(path(order.order_id)).get_data(as_text=True)
    assert f'name="fingerprint" value="{fingerprints.fingerprint(order.r2_assets["preBria"])}"' in html


def test_a_decision_on_a_stage_someone_else_holds_is_409_over_http(app, login_as, reviewer, other):
    order_id = make_order_with_stages("pending").order_id
    review.claim(BEN, order_id, "preBria")
    ana = login_as(reviewer)
    page = ana.get(path(order_id)).get_data(as_text=True)
    assert "Being reviewed by ben@example.com" in page and "is reviewing this stage" in page
    response = ana.post(path(order_id, action="approve"), htmx=True)
    assert response.status_code == 409 and "ben@example.com is reviewing this stage" in response.get_data(as_text=True)
    assert stage_row(order_id).status == "in_review" and audit_actions(order_id) == ["stage_claimed"]


def test_approve_and_next_goes_to_the_next_waiting_stage_and_offers_undo(app, login_as, reviewer):
    first = make_order_with_stages("pending").order_id
    second = make_order_with_stages("pending").order_id
    browser = login_as(reviewer)
    response = browser.post(path(first, action="approve"), {"next": "1"}, htmx=True)
    assert response.status_code == 200 and response.headers["HX-Redirect"] == path(second)
    assert stage_row(first).status == "approved"
    page = browser.get(path(second)).get_data(as_text=True)
    assert "You approved" in page and f'action="{path(first, action="undo")}"' in page
    plain = browser.post(path(second, action="approve"), {"next": "1"})
    assert plain.status_code == 303 and plain.headers["Location"].endswith(f"{path(second)}/next")
    assert browser.get(plain.headers["Location"]).headers["Location"].endswith("/queue")


def test_next_follows_the_queue_filter_the_reviewer_came_from(app, login_as, reviewer):
    shopify = make_order_with_stages("pending").order_id
    make_order_with_stages("pending", platform="amazon")
    amazon = make_order_with_stages("pending", platform="amazon").order_id
    browser = login_as(reviewer)
    browser.get("/queue?platform=amazon")
    first = browser.get(f"{path(shopify)}/next")
    assert first.status_code == 303
    landed = first.headers["Location"]
    assert "amazon" not in landed and landed != path(shopify)
    assert browser.get(f"{landed}/next").headers["Location"].endswith(path(amazon))


# --- queue, compare, PDF pages ------------------------------------------------------------------------------

def test_queue_shows_who_is_reviewing_and_marks_late_stages(app, login_as, reviewer):
    held = make_order_with_stages("pending").order_id
    late = make_order_with_stages("pending").order_id
    review.claim(BEN, held, "preBria")
    db.session.execute(db.update(ReviewStage).where(ReviewStage.order_id == late)
                       .values(created_at=db.func.now() - timedelta(hours=30)))
    db.session.commit()
    html = login_as(reviewer).get("/queue").get_data(as_text=True)
    assert "Being reviewed by ben@example.com" in html
    assert "past service level" in html and "age-breach" in html
    assert html.count("data-queue-row") == 2


def test_queue_sorts_by_order_date(app, login_as, reviewer):
    newer = make_order_with_stages("pending", order_date=datetime.now(timezone.utc) - timedelta(days=1)).order_id
    older = make_order_with_stages("pending", order_date=datetime.now(timezone.utc) - timedelta(days=9)).order_id
    browser = login_as(reviewer)
    by_age = browser.get("/queue").get_data(as_text=True)
    by_date = browser.get("/queue?sort=order_date").get_data(as_text=True)
    assert by_age.index(newer) < by_age.index(older)
    assert by_date.index(older) < by_date.index(newer)
    assert browser.get("/queue?sort=nonsense").status_code == 400


def test_post_pdf_compares_pdf_pages_with_the_illustrations(app, login_as, reviewer):
    from lhb_review.ops.demo_assets import make_order_assets

    assets = make_order_assets(app.config["ASSET_DIR"], "LHB-CMP-1", "dino-friends", {"name": "Kai"},
                               {"theme": "dinosaur parade"})
    order = make_order_with_stages("approved", "approved", "pending", order_id="LHB-CMP-1", r2_assets=assets)
    browser = login_as(reviewer)
    html = browser.get(path(order.order_id, "postPdf")).get_data(as_text=True)
    assert "Compare with Illustrations (after Bria)" in html and "data-compare-slider" in html
    page_url = path(order.order_id, "postPdf", "pages/2.png")
    assert page_url in html
    picture = browser.get(page_url)
    assert picture.status_code == 302
    served = browser.get(picture.headers["Location"])
    assert served.status_code == 200 and served.data.startswith(b"\x89PNG")
    assert browser.get(path(order.order_id, "postPdf", "pages/13.png")).status_code == 404  # a 12-page book


def test_pre_bria_has_nothing_to_compare(app, login_as, reviewer):
    order = make_order_with_stages("pending")
    assert "data-compare" not in login_as(reviewer).get(path(order.order_id)).get_data(as_text=True)


def test_a_voided_approval_says_what_changed_on_the_page(app, login_as, reviewer, tmp_path):
    from lhb_review import review
    from lhb_review.core.storage import LocalStorage

    order = make_order_with_stages("pending")
    review.approve(ANA, order.order_id, "preBria")
    key = order.r2_assets["preBria"][0]["key"]
    review.replace_asset(ANA, order.order_id, "preBria", key, files.image_bytes(),
                          storage=LocalStorage(tmp_path))
    html = login_as(reviewer).get(path(order.order_id)).get_data(as_text=True)
    assert "The approval by ana@example.com was voided" in html and f"Gone: <code>{key}</code>" in html


def test_start_reviewing_opens_the_first_stage_one_can_act_on(app, login_as, reviewer):
    held = make_order_with_stages("pending").order_id
    free = make_order_with_stages("pending").order_id
    review.claim(BEN, held, "preBria")
    browser = login_as(reviewer)
    assert browser.get("/queue/next").headers["Location"].endswith(path(free))
    review.claim(BEN, free, "preBria")
    assert browser.get("/queue/next").headers["Location"].endswith("/queue")
