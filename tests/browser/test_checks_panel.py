"""The machine-checks panel in headless Chromium: running while pending, updating itself, failures first."""
from __future__ import annotations

from lhb_review.core.actors import Actor
from lhb_review.core.storage import get_storage
from lhb_review import review
from lhb_review.review.checks import jobs
from tests.check_files import asset, png
from tests.factories import make_order, make_user

PIPELINE = Actor(email="pipeline-prod", kind="token")
SPECS = {"character_specs": {"name": "Maya"},
         "book_specs": {"title": "Maya and the Moon", "pages": 24, "trim_size": "8.5 x 8.5 in"}}


def submitted(order_id: str, *sizes: tuple[int, int]) -> None:
    files = []
    for n, size in enumerate(sizes, start=1):
        data = png(*size)
        key = f"orders/{order_id}/preBria/view-{n}.png"
        get_storage().put(key, data, "image/png")
        files.append(asset(key, data, "image/png"))
    review.submit(PIPELINE, order_id, "preBria", files)


def work(app) -> None:
    base = jobs.WorkerSettings.from_config(app.config)
    jobs.run_worker(jobs.WorkerSettings(base.checks, base.limits, poll=0.1), once=True)


def test_the_panel_says_checks_are_running_then_shows_failures_first_linked_to_their_file(
        app, page, browser_login, screenshot):
    order = make_order(r2_assets={}, **SPECS)
    submitted(order.order_id, (1400, 1400), (640, 640))
    browser_login(page, make_user())
    page.goto(f"/orders/{order.order_id}/stages/preBria")
    panel = page.locator("#checks-panel")
    assert panel.get_attribute("data-checks-state") == "pending"
    assert "Checks running" in panel.inner_text()
    work(app)
    page.wait_for_selector("#checks-panel[data-checks-state=done]", timeout=20_000)
    first = page.locator("#checks-panel .check").first
    assert first.get_attribute("data-check") == "image.resolution"
    assert "fail" in first.get_attribute("class")
    assert first.locator("a.check-link").get_attribute("href").endswith("/view-2.png")
    assert "Approving needs notes" in page.locator("#checks-panel").inner_text()
    screenshot(page, "checks-panel-failing")


def test_a_stage_whose_checks_all_pass_says_so(app, page, browser_login, screenshot):
    order = make_order(r2_assets={}, **SPECS)
    submitted(order.order_id, (1400, 1400), (1200, 1600))
    work(app)
    browser_login(page, make_user())
    page.goto(f"/orders/{order.order_id}/stages/preBria")
    summary = page.locator("#checks-panel [data-checks-all-pass]")
    # file.exists, file.sha256, file.decodes and image.resolution for each of the two views
    assert f"All {4 * 2} checks pass" in summary.inner_text()
    assert page.locator("#checks-panel .check-fail").count() == 0
    screenshot(page, "checks-panel-passing")


def test_the_queue_marks_stages_with_failing_checks_and_filters_on_them(app, page, browser_login, screenshot):
    failing = make_order(r2_assets={}, **SPECS)
    submitted(failing.order_id, (640, 640))
    passing = make_order(r2_assets={}, **SPECS)
    submitted(passing.order_id, (1400, 1400))
    work(app)
    browser_login(page, make_user())
    page.goto("/queue")
    marked = page.locator("[data-queue-row]", has=page.locator("[data-checks=failing]"))
    assert marked.count() == 1 and failing.order_id in marked.inner_text()
    with page.expect_response(lambda r: "/queue" in r.url and "checks=failing" in r.url):
        page.select_option("select[name=checks]", "failing")
    page.wait_for_function("document.querySelectorAll('[data-queue-row]').length === 1")
    rows = page.locator("[data-queue-row]")
    assert failing.order_id in rows.first.inner_text() and passing.order_id not in page.locator("#queue-rows").inner_text()
    screenshot(page, "checks-queue-filter")
