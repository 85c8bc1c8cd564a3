"""A reviewer's day in headless Chromium: the queue, its filters, a stage page, approve and reject in place."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from lhb_review.ops.demo_assets import make_order_assets
from lhb_review.extensions import db
from lhb_review.models import Approval, AuditLog, ReviewStage
from tests.factories import make_order, make_stage, make_user

SPECS = {"name": "Maya", "age": 5, "pronouns": "she/her", "skin_tone": "medium",
         "hair": {"color": "brown", "style": "curly"}, "eyes": "brown", "glasses": False, "outfit": "explorer"}
BOOK = {"title": "Maya and the Hidden Treasure", "theme": "hidden treasure", "pages": 24, "trim_size": "8.5 x 8.5 in",
        "cover": "hardcover", "dedication": "For Maya, with love.", "language": "en"}


def order_with_assets(app, n: int, *statuses: str, platform: str = "shopify", first: str = "Ada"):
    order_id = f"LHB-{n:05d}"
    assets = make_order_assets(app.config["ASSET_DIR"], order_id, "my-first-adventure", SPECS, BOOK)
    now = datetime.now(timezone.utc)
    order = make_order(order_id, platform=platform, customer_first_name=first, character_specs=SPECS, book_specs=BOOK,
                       r2_assets=assets, amazon_order_id=f"113-{n:07d}-0000001" if platform == "amazon" else None)
    for i, (stage, status) in enumerate(zip(("preBria", "postBria", "postPdf"), statuses)):
        make_stage(order, stage, status, created_at=now - timedelta(hours=60 - n * 3 - i))
    return order


def stage_status(order_id: str, stage: str) -> str:
    db.session.expire_all()
    return db.session.scalar(select(ReviewStage.status).where(ReviewStage.order_id == order_id,
                                                              ReviewStage.stage_name == stage))


def audit_actions(order_id: str) -> list[str]:
    return list(db.session.scalars(select(AuditLog.action).where(AuditLog.order_id == order_id)))


@pytest.fixture
def reviewer(app):
    return make_user("reviewer@example.com")


def test_queue_filters_swap_only_the_list(app, page, browser_login, screenshot, reviewer):
    order_with_assets(app, 1, "pending")
    order_with_assets(app, 2, "approved", "pending", platform="amazon", first="Grace")
    order_with_assets(app, 3, "approved", "approved", "pending")
    order_with_assets(app, 4, "in_review")
    browser_login(page, reviewer)
    page.goto("/queue")
    assert page.locator("#queue-rows tbody tr").count() == 4
    screenshot(page, "queue")

    page.evaluate("window.__samePage = 'yes'")
    page.select_option("#f-stage", "postBria")
    page.wait_for_url("**stage=postBria**")
    page.wait_for_function("document.querySelectorAll('#queue-rows tbody tr').length === 1")
    assert "LHB-00002" in page.locator("#queue-rows tbody").inner_text()
    assert page.evaluate("window.__samePage") == "yes"

    page.select_option("#f-stage", "")
    page.fill("#q", "grace")
    page.wait_for_url("**q=grace**")
    page.wait_for_function("document.querySelectorAll('#queue-rows tbody tr').length === 1")
    assert page.evaluate("window.__samePage") == "yes"
    screenshot(page, "queue-search")

    page.goto("/queue?status=approved")
    assert page.locator("#f-status").input_value() == "approved"
    assert page.locator("#queue-rows tbody tr").count() == 3


def test_approve_then_reject_in_place(app, page, browser_login, screenshot, reviewer):
    order = order_with_assets(app, 5, "pending", "pending")
    browser_login(page, reviewer)
    page.goto("/queue")
    page.click(f"a[href='/orders/{order.order_id}/stages/preBria']:has-text('Review')")
    page.wait_for_url(f"**/orders/{order.order_id}/stages/preBria")
    assert page.locator(".gallery img").count() == 2
    screenshot(page, "review-page")

    page.evaluate("window.__samePage = 'yes'")
    page.click("#decision-panel button[data-action=approve]")
    page.wait_for_selector("#decision-panel[data-status=approved]")
    assert "Approved" in page.locator("#decision-panel .notice-success").inner_text()
    assert page.evaluate("window.__samePage") == "yes"
    page.wait_for_selector("#stage-history .action-stage_approved")
    page.wait_for_selector("#pipeline .step-current.step-approved")
    assert stage_status(order.order_id, "preBria") == "approved"
    screenshot(page, "review-page-approved")

    page.goto(f"/orders/{order.order_id}/stages/postBria")
    page.evaluate("window.__samePage = 'yes'")
    page.wait_for_selector("#claim-bar[data-claim-state=mine]")  # opening a waiting stage claims it
    page.click("#decision-panel button[data-action=reject]")
    page.wait_for_selector("#reject-notes[aria-invalid=true]")
    assert "required" in page.locator("#reject-notes-error").inner_text()
    screenshot(page, "review-page-reject-needs-notes")
    assert stage_status(order.order_id, "postBria") == "in_review"
    page.fill("#reject-notes", "The name is misspelled on page 2.")
    page.check("#decision-panel input[name=reasons][value=text_error]")
    page.click("#decision-panel button[data-action=reject]")
    page.wait_for_selector("#decision-panel[data-status=rejected]")
    assert "misspelled" in page.locator("#decision-panel").inner_text()
    assert page.evaluate("window.__samePage") == "yes"
    assert stage_status(order.order_id, "postBria") == "rejected"
    decisions = [a for a in audit_actions(order.order_id) if a != "stage_claimed"]  # opening a stage claims it
    assert sorted(decisions) == ["stage_approved", "stage_rejected"]
    approval = db.session.scalar(select(Approval).where(Approval.order_id == order.order_id, Approval.stage == "postBria"))
    assert approval.status == "pending"


def test_second_reviewer_sees_the_first_decision_instead_of_overwriting_it(app, new_page, browser_login, reviewer,
                                                                          monkeypatch):
    monkeypatch.setitem(app.config, "CLAIM_PRESENCE_SECONDS", 1)
    order = order_with_assets(app, 10, "pending")
    first, second = new_page(), new_page()
    browser_login(first, reviewer)
    browser_login(second, make_user("second@example.com"))
    first.goto(f"/orders/{order.order_id}/stages/preBria")
    first.wait_for_selector("#claim-bar[data-claim-state=mine]")
    second.goto(f"/orders/{order.order_id}/stages/preBria")
    second.wait_for_selector("#claim-bar[data-claim-state=other]")
    assert second.locator("#decision-panel button[data-action=reject]").is_disabled()
    first.click("#decision-panel button[data-action=approve]")
    first.wait_for_selector("#decision-panel[data-status=approved]")

    second.wait_for_selector("#decision-panel[data-status=approved]")  # its page follows without a reload
    assert "reviewer@example.com" in second.locator("#decision-panel").inner_text()
    assert stage_status(order.order_id, "preBria") == "approved"
    assert sorted(audit_actions(order.order_id)) == ["stage_approved", "stage_claimed"]


def test_gallery_opens_an_image_full_size(app, page, browser_login, reviewer):
    order = order_with_assets(app, 6, "approved", "pending")
    browser_login(page, reviewer)
    page.goto(f"/orders/{order.order_id}/stages/postBria")
    page.click(".gallery a[data-gallery-item] >> nth=1")
    dialog = page.locator("#lightbox")
    dialog.wait_for(state="visible")
    assert page.locator("#lightbox-caption").inner_text() == "Illustration, pages 3–4"
    page.wait_for_function("document.getElementById('lightbox-img').naturalWidth > 0")
    page.keyboard.press("ArrowRight")
    assert page.locator("#lightbox-caption").inner_text() == "Illustration, pages 5–6"
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")


def test_print_pdf_is_shown_inline(app, page, browser_login, screenshot, reviewer):
    order = order_with_assets(app, 7, "approved", "approved", "pending")
    browser_login(page, reviewer)
    page.goto(f"/orders/{order.order_id}/stages/postPdf")
    frame = page.locator("iframe.pdf-frame")
    assert frame.get_attribute("src") == f"/assets/orders/{order.order_id}/postPdf/book.pdf"
    screenshot(page, "review-page-pdf")


def test_order_page_reads_well(app, page, browser_login, screenshot, reviewer):
    order = order_with_assets(app, 8, "approved", "rejected")
    browser_login(page, reviewer)
    page.goto(f"/orders/{order.order_id}")
    assert page.locator(".stage-list > li").count() == 3
    assert "Curly" in page.locator("#character-title + dl").inner_text() or \
        "curly" in page.locator("#character-title + dl").inner_text()
    screenshot(page, "order-page")


def test_forms_work_without_javascript(app, chromium, live_server, browser_login, reviewer):
    order = order_with_assets(app, 9, "pending")
    context = chromium.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        browser_login(page, reviewer)
        page.goto(f"/orders/{order.order_id}/stages/preBria")
        page.fill("#reject-notes", "Hair colour drifts between the two views.")
        page.check("#decision-panel input[name=reasons][value=character_drift]")
        page.click("#decision-panel button[data-action=reject]")
        page.wait_for_url(f"**/orders/{order.order_id}/stages/preBria")
        assert "Rejected" in page.locator(".flash-success").inner_text()
        assert page.locator("#decision-panel").get_attribute("data-status") == "rejected"
        assert stage_status(order.order_id, "preBria") == "rejected"
        page.goto("/queue?stage=preBria&status=rejected")
        assert order.order_id in page.locator("#queue-rows").inner_text()
    finally:
        context.close()


def test_demo_data_screenshots(app, page, browser_login, screenshot, reviewer):
    from lhb_review.ops.seed import seed_demo

    seed_demo(27, app.config["ASSET_DIR"])
    browser_login(page, reviewer)
    page.goto("/queue")
    assert page.locator("#queue-rows tbody tr").count() >= 10
    screenshot(page, "queue-demo")
    page.goto("/queue?status=any&size=25")
    assert page.locator("a[rel=next]").count() == 1
    page.goto("/orders/LHB-DEMO-0006/stages/postBria")
    screenshot(page, "review-demo-rejected")
    page.goto("/orders/LHB-DEMO-0006")
    screenshot(page, "order-demo")


def test_sign_in_and_error_pages_share_the_layout(app, page, browser_login, screenshot, reviewer):
    page.goto("/login")
    screenshot(page, "login")
    browser_login(page, reviewer)
    response = page.goto("/orders/NOPE-404")
    assert response.status == 404
    assert "There is no order" in page.locator("main").inner_text()
    screenshot(page, "not-found")


def test_admin_reopens_in_place(app, page, browser_login, screenshot):
    admin = make_user("admin@example.com", role="admin")
    order = order_with_assets(app, 11, "approved", "rejected")
    browser_login(page, admin)
    page.goto(f"/orders/{order.order_id}/stages/postBria")
    screenshot(page, "review-page-admin-decided")
    page.evaluate("window.__samePage = 'yes'")
    page.fill("#reopen-notes", "New illustrations uploaded.")
    page.click("#decision-panel button[data-action=reopen]")
    page.wait_for_selector("#decision-panel[data-status=pending]")
    assert page.evaluate("window.__samePage") == "yes"
    page.wait_for_selector("#stage-history .action-stage_reopened")
    assert stage_status(order.order_id, "postBria") == "pending"
    assert audit_actions(order.order_id) == ["stage_reopened"]


def test_signed_out_reviewer_is_taken_to_sign_in_not_shown_it_inside_the_panel(app, page, browser_login, reviewer):
    from lhb_review.models import User

    order = order_with_assets(app, 12, "pending")
    browser_login(page, reviewer)
    page.goto(f"/orders/{order.order_id}/stages/preBria")
    page.wait_for_selector("#claim-bar[data-claim-state=mine]")
    db.session.get(User, reviewer.id).active = False
    db.session.commit()
    page.click("#decision-panel button[data-action=approve]")
    page.wait_for_url("**/login?next=**")
    assert "preBria" in page.url
    assert page.locator("#decision-panel").count() == 0
    assert stage_status(order.order_id, "preBria") == "in_review"  # claimed when opened, never decided
    assert audit_actions(order.order_id) == ["stage_claimed"]
