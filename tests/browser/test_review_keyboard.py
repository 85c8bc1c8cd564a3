"""The review flow in headless Chromium: keyboard-only decisions, undo, the compare view, and claims seen by a
second reviewer."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from lhb_review.ops.demo_assets import make_order_assets
from lhb_review.extensions import db
from lhb_review.models import AuditLog, ReviewStage, StageDecision
from lhb_review import review
from lhb_review.core.actors import Actor
from tests.factories import make_order, make_stage, make_user

SPECS = {"name": "Noor", "age": 6, "pronouns": "she/her", "skin_tone": "tan",
         "hair": {"color": "black", "style": "braids"}, "eyes": "brown", "glasses": True, "outfit": "astronaut"}
BOOK = {"title": "Noor and the Lost Comet", "theme": "lost comet", "pages": 24}


def order_with_assets(app, n: int, *statuses: str, hours_ago: float = 30):
    order_id = f"LHB-K{n:04d}"
    assets = make_order_assets(app.config["ASSET_DIR"], order_id, "space-explorer", SPECS, BOOK)
    order = make_order(order_id, character_specs=SPECS, book_specs=BOOK, r2_assets=assets,
                       customer_first_name="Noor", customer_last_name=f"Family {n}")
    now = datetime.now(timezone.utc)
    for i, (stage, status) in enumerate(zip(("preBria", "postBria", "postPdf"), statuses)):
        make_stage(order, stage, status, created_at=now - timedelta(hours=hours_ago - n - i))
    return order


def status_of(order_id: str, stage: str = "preBria") -> str:
    db.session.expire_all()
    return db.session.scalar(select(ReviewStage.status).where(ReviewStage.order_id == order_id,
                                                              ReviewStage.stage_name == stage))


def actions(order_id: str) -> list[str]:
    db.session.expire_all()
    return sorted(db.session.scalars(select(AuditLog.action).where(AuditLog.order_id == order_id)))


@pytest.fixture
def reviewer(app):
    return make_user("kai@example.com")


def on_stage(page, order_id: str, stage: str = "preBria"):
    page.wait_for_url(f"**/orders/{order_id}/stages/{stage}")
    page.wait_for_selector("#claim-bar[data-claim-state=mine]")


def test_three_stages_decided_in_a_row_with_the_keyboard_only(app, page, browser_login, screenshot, reviewer):
    first, second, third = (order_with_assets(app, n, "pending") for n in (1, 2, 3))
    browser_login(page, reviewer)
    page.goto("/queue")
    page.keyboard.press("j")
    assert page.locator("[data-queue-row].is-current").count() == 1
    page.keyboard.press("Enter")
    on_stage(page, first.order_id)

    page.keyboard.press("a")
    page.wait_for_selector("#decision-panel[data-status=approved]")
    assert status_of(first.order_id) == "approved"
    page.keyboard.press("n")
    on_stage(page, second.order_id)

    page.keyboard.press("r")
    assert page.evaluate("document.activeElement.id") == "reject-notes"
    page.keyboard.type("Hair colour drifts; a stray arm.")  # 'a', 'r' and 'n' typed here are text, not shortcuts
    assert status_of(second.order_id) == "in_review"
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # the first reason: character drift
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # the second: anatomy
    screenshot(page, "flow-keyboard-reject")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#decision-panel[data-status=rejected]")
    page.keyboard.press("n")
    on_stage(page, third.order_id)

    page.keyboard.press("Shift+A")  # approve and go on: nothing is left, so back to the queue
    page.wait_for_url("**/queue**")
    assert "Nothing else is waiting" in page.locator(".flash").inner_text()

    assert [status_of(o.order_id) for o in (first, second, third)] == ["approved", "rejected", "approved"]
    rejected = db.session.scalar(select(StageDecision).where(StageDecision.order_id == second.order_id))
    assert (rejected.reasons, rejected.notes) == (["character_drift", "anatomy"], "Hair colour drifts; a stray arm.")
    for order in (first, second, third):
        assert [a for a in actions(order.order_id) if a != "stage_claimed"] in (["stage_approved"], ["stage_rejected"])


def test_undo_from_the_keyboard_and_the_shortcut_list(app, page, browser_login, screenshot, reviewer):
    order = order_with_assets(app, 4, "pending")
    browser_login(page, reviewer)
    page.goto(f"/orders/{order.order_id}/stages/preBria")
    on_stage(page, order.order_id)
    page.keyboard.press("a")
    page.wait_for_selector("#decision-panel[data-status=approved] [data-key=undo]")
    assert "left to take it back" in page.locator(".undo").inner_text()
    screenshot(page, "flow-undo")
    page.keyboard.press("u")
    page.wait_for_selector("#decision-panel[data-status=in_review]")
    assert status_of(order.order_id) == "in_review"
    assert actions(order.order_id) == ["stage_approved", "stage_claimed", "stage_undone"]

    page.keyboard.press("?")
    page.wait_for_selector("#shortcuts[open]")
    screenshot(page, "flow-shortcuts")
    page.keyboard.press("a")  # nothing fires behind an open dialog
    page.keyboard.press("Escape")
    page.wait_for_selector("#shortcuts:not([open])", state="attached")
    assert status_of(order.order_id) == "in_review"


def test_compare_side_by_side_and_one_over_the_other(app, page, browser_login, screenshot, reviewer):
    order = order_with_assets(app, 5, "approved", "pending")
    browser_login(page, reviewer)
    page.goto(f"/orders/{order.order_id}/stages/postBria")
    compare = page.locator("[data-compare]")
    compare.scroll_into_view_if_needed()
    pair = page.locator(".compare-pair")
    assert pair.is_visible() and pair.locator("img").count() == 2
    page.wait_for_function("[...document.querySelectorAll('.compare-pair img')].every(i => i.naturalWidth > 0)")
    assert "/preBria/" in pair.locator("[data-compare-previous]").get_attribute("src")
    assert "/postBria/" in pair.locator("[data-compare-current]").get_attribute("src")
    page.select_option("[data-compare-pick]", index=1)
    assert "character-side" in pair.locator("[data-compare-previous]").get_attribute("src")
    screenshot(page, "flow-compare-side-by-side")

    page.keyboard.press("t")
    overlay = page.locator(".compare-overlay")
    overlay.wait_for(state="visible")
    assert not pair.is_visible()
    slider = page.locator("[data-compare-slider]")
    slider.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    reveal = page.evaluate("getComputedStyle(document.querySelector('[data-compare-stack]')).getPropertyValue('--reveal')")
    assert reveal.strip() == f"{slider.input_value()}%" and int(slider.input_value()) > 50
    screenshot(page, "flow-compare-overlay")


def test_pdf_pages_compare_with_the_illustrations(app, page, browser_login, reviewer):
    order = order_with_assets(app, 6, "approved", "approved", "pending")
    browser_login(page, reviewer)
    page.goto(f"/orders/{order.order_id}/stages/postPdf")
    current = page.locator(".compare-pair [data-compare-current]")
    assert "/postPdf/pages/1.png" in current.get_attribute("src")
    page.wait_for_function("document.querySelector('.compare-pair [data-compare-current]').naturalWidth > 0")


def test_a_claim_is_seen_by_a_second_reviewer(app, new_page, browser_login, screenshot, reviewer, monkeypatch):
    monkeypatch.setitem(app.config, "CLAIM_HEARTBEAT_SECONDS", 1)
    monkeypatch.setitem(app.config, "CLAIM_PRESENCE_SECONDS", 1)
    order = order_with_assets(app, 7, "pending")
    other_order = order_with_assets(app, 8, "pending")
    first, second = new_page(), new_page()
    browser_login(first, reviewer)
    browser_login(second, make_user("mo@example.com"))
    first.goto(f"/orders/{order.order_id}/stages/preBria")
    on_stage(first, order.order_id)

    second.goto("/queue")
    row = second.locator("[data-queue-row]", has_text=order.order_id)
    assert "Being reviewed by kai@example.com" in row.inner_text()
    assert "Being reviewed" not in second.locator("[data-queue-row]", has_text=other_order.order_id).inner_text()
    screenshot(second, "flow-queue-presence")
    second.goto(f"/orders/{order.order_id}/stages/preBria")
    second.wait_for_selector("#claim-bar[data-claim-state=other]")
    assert "Being reviewed by kai@example.com" in second.locator("#claim-bar").inner_text()
    assert second.locator("#decision-panel button[data-action=approve]").is_disabled()
    screenshot(second, "flow-claimed-by-someone-else")

    second.once("dialog", lambda dialog: dialog.accept())
    second.click("#claim-bar button[data-key=takeover]")
    second.wait_for_selector("#claim-bar[data-claim-state=mine]")
    second.wait_for_selector("#decision-panel button[data-action=approve]:not([disabled])")
    first.wait_for_selector("#claim-bar[data-claim-state=other]")  # its next heartbeat learns the news
    assert "Being reviewed by mo@example.com" in first.locator("#claim-bar").inner_text()
    first.wait_for_selector("#decision-panel button[data-action=approve][disabled]")
    assert actions(order.order_id) == ["stage_claim_taken_over", "stage_claimed"]


def test_leaving_the_page_gives_the_claim_back(app, new_page, browser_login, reviewer):
    order = order_with_assets(app, 9, "pending")
    page = new_page()
    browser_login(page, reviewer)
    page.goto(f"/orders/{order.order_id}/stages/preBria")
    on_stage(page, order.order_id)
    page.goto("/queue")  # the stage page gives its claim back as it closes
    for _ in range(50):
        if status_of(order.order_id) == "pending":
            break
        page.wait_for_timeout(100)
    assert status_of(order.order_id) == "pending"
    assert actions(order.order_id) == ["stage_claimed", "stage_released"]


def test_timeline_report_and_queue_pages(app, page, browser_login, screenshot, reviewer):
    order = order_with_assets(app, 10, "pending", hours_ago=40)
    order_with_assets(app, 11, "pending", hours_ago=14)
    ana = Actor(email="ana@example.com", ip="192.0.2.1")
    review.claim(ana, order.order_id, "preBria")
    review.reject(ana, order.order_id, "preBria", notes="Braids became a ponytail", reasons=["character_drift"])
    browser_login(page, reviewer)
    page.goto("/queue?status=any")
    assert page.locator(".age-breach").count() >= 1
    screenshot(page, "flow-queue")
    page.goto(f"/orders/{order.order_id}/timeline")
    assert page.locator(".timeline-entry").count() == 2
    page.uncheck("input[name=kind][value=claims]") if page.is_checked("input[name=kind][value=claims]") else None
    page.check("input[name=kind][value=claims]")
    page.wait_for_url("**kind=claims**")
    page.wait_for_function("document.querySelectorAll('.timeline-entry').length === 1")
    screenshot(page, "flow-timeline")
    page.goto("/reports/rejects")
    assert "character drift" in page.locator("table.report").inner_text().lower()
    screenshot(page, "flow-reject-report")
