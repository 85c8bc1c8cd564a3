"""Claims as two reviewers see them in Chromium: a takeover reaches the first page within 2 s and it can no
longer decide; a refused decision redraws bar and panel together, says who and when, and keeps the notes;
no policy violation on the way (409, 422 and takeover swaps included)."""
from __future__ import annotations

import pytest

from tests.browser.test_csp import WATCH_VIOLATIONS, wait_until
from tests.browser.test_review_flow import order_with_assets, stage_status
from tests.factories import make_user


def watched(page):
    page.add_init_script(WATCH_VIOLATIONS)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error"
            and not msg.text.startswith("Failed to load resource") else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.console_errors = errors
    return page


@pytest.fixture
def two_reviewers(app, new_page, browser_login):
    first, second = watched(new_page()), watched(new_page())
    browser_login(first, make_user("rev1@example.com"))
    browser_login(second, make_user("rev2@example.com"))
    return first, second


def take_over(page, url):
    page.goto(url)
    page.wait_for_selector("#claim-bar[data-claim-state=other]")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#claim-bar button[data-key=takeover]")
    page.wait_for_selector("#claim-bar[data-claim-state=mine]")


def test_a_takeover_reaches_the_first_page_within_two_seconds(app, two_reviewers, screenshot):
    first, second = two_reviewers
    order = order_with_assets(app, 31, "pending")
    url = f"/orders/{order.order_id}/stages/preBria"
    first.goto(url)
    first.wait_for_selector("#claim-bar[data-claim-state=mine]")
    first.fill("#reject-notes", "The hair should be curly.")
    take_over(second, url)
    # The poll runs every CLAIM_PRESENCE_SECONDS (2 s): the first page must have followed by the next one or two.
    first.wait_for_selector("#claim-bar[data-claim-state=other]", timeout=app.config["CLAIM_PRESENCE_SECONDS"] * 1000 + 1500)
    assert "Being reviewed by rev2@example.com" in first.locator("#claim-bar").inner_text()
    first.wait_for_selector("#decision-panel .notice-warn")
    assert first.locator("#decision-panel button[data-action=approve]").is_disabled()
    assert first.locator("#decision-panel button[data-action=reject]").is_disabled()
    assert first.locator("#claim-bar").get_by_role("button", name="Release").count() == 0
    assert first.locator("#reject-notes").input_value() == "The hair should be curly."  # typed notes survive
    screenshot(first, "claims-after-takeover")
    assert first.evaluate("window.__violations") == [] and second.evaluate("window.__violations") == []
    assert first.console_errors == [] and second.console_errors == []


def test_a_refused_decision_redraws_bar_and_panel_with_who_and_when(app, two_reviewers, monkeypatch, screenshot):
    monkeypatch.setitem(app.config, "CLAIM_PRESENCE_SECONDS", 600)  # the first page does not learn by itself
    first, second = two_reviewers
    order = order_with_assets(app, 32, "pending")
    url = f"/orders/{order.order_id}/stages/preBria"
    first.goto(url)
    first.wait_for_selector("#claim-bar[data-claim-state=mine]")
    take_over(second, url)
    assert first.locator("#claim-bar[data-claim-state=mine]").count() == 1  # still stale
    first.fill("#reject-notes", "Eyes are blue; the specs say brown.")
    first.check("#decision-panel input[name=reasons][value=character_drift]")
    with first.expect_response(lambda r: r.url.endswith("/reject")) as answer:
        first.click("#decision-panel button[data-action=reject]")
    assert answer.value.status == 409
    first.wait_for_selector("#claim-bar[data-claim-state=other]")
    panel = first.locator("#decision-panel").inner_text()
    assert "rev2@example.com took this over at" in panel
    assert first.locator("#decision-panel .notice").count() == 1  # one message, not two near-identical ones
    assert first.locator("#reject-notes").input_value() == "Eyes are blue; the specs say brown."
    assert "Being reviewed by rev2@example.com" in first.locator("#claim-bar").inner_text()
    screenshot(first, "claims-refused-decision")
    assert stage_status(order.order_id, "preBria") == "in_review"
    assert first.evaluate("window.__violations") == [] and second.evaluate("window.__violations") == []
    assert first.console_errors == [] and second.console_errors == []


def test_a_422_swap_and_a_decision_in_flight_under_the_policy(app, two_reviewers, screenshot):
    first, _ = two_reviewers
    order = order_with_assets(app, 33, "pending")
    first.goto(f"/orders/{order.order_id}/stages/preBria")
    first.wait_for_selector("#claim-bar[data-claim-state=mine]")
    with first.expect_response(lambda r: r.url.endswith("/reject")) as answer:
        first.click("#decision-panel button[data-action=reject]")
    assert answer.value.status == 422
    first.wait_for_selector("#reject-notes[aria-invalid=true]")
    # While a decision is on its way every button of the panel waits and the panel says "Saving…".
    first.route("**/approve", lambda route: (first.wait_for_timeout(800), route.continue_()))
    first.click("#decision-panel button[data-action=approve]")
    wait_until(first, "document.getElementById('decision-panel').classList.contains('is-saving')")
    assert first.locator("#decision-panel .saving").is_visible()
    assert first.locator("#decision-panel button[data-action=reject]").is_disabled()
    screenshot(first, "decision-in-flight")
    first.wait_for_selector("#decision-panel[data-status=approved]")
    assert first.evaluate("window.__violations") == []
    assert first.console_errors == []
