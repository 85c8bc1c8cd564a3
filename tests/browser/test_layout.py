"""Every main page at the three sizes people use (1440×900, 1280×720, 768×1024): nothing scrolls sideways,
the navigation fits, queue rows keep their Review button in view; screenshots kept under test-artifacts/."""
from __future__ import annotations

import pytest

from tests.browser.scene import build_scene

SIZES = {"1440x900": (1440, 900), "1280x720": (1280, 720), "768x1024": (768, 1024)}
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll('body *')].filter((el) => {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.right <= width + 1 || !el.checkVisibility() || el.closest('.visually-hidden')) return false;
    // Clipped by a box that itself fits (a scrolling table wrapper, an ellipsis) is not the page scrolling.
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== 'visible' && up.getBoundingClientRect().right <= width + 1) return false;
    }
    return true;
  }).slice(0, 5).map((el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + '.' + [...el.classList].join('.'));
  return {scroll: document.documentElement.scrollWidth, width, wide};
}"""


@pytest.fixture
def scene(app):
    return build_scene(app)


def sized_page(chromium, live_server, size):
    width, height = SIZES[size]
    context = chromium.new_context(base_url=live_server.url, viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(10_000)
    return context, page


@pytest.mark.parametrize("size", list(SIZES))
def test_no_main_page_scrolls_sideways(chromium, live_server, browser_login, screenshot, scene, size):
    context, page = sized_page(chromium, live_server, size)
    try:
        browser_login(page, scene["admin"])
        problems = {}
        for name, path in scene["pages"].items():
            page.goto(path)
            page.wait_for_load_state("networkidle")
            screenshot(page, f"layout-{size}-{name}")
            found = page.evaluate(OVERFLOW)
            if found["scroll"] > found["width"] or found["wide"]:
                problems[name] = found
        assert problems == {}
    finally:
        context.close()


@pytest.mark.parametrize("size", list(SIZES))
def test_queue_rows_keep_their_review_button_in_view(chromium, live_server, browser_login, scene, size):
    context, page = sized_page(chromium, live_server, size)
    try:
        browser_login(page, scene["admin"])
        page.goto("/queue")
        width, height = SIZES[size]
        buttons = page.locator("#queue-rows [data-row-link]")
        assert buttons.count() >= 4
        for i in range(buttons.count()):
            box = buttons.nth(i).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width
        first_row = page.locator("#queue-rows [data-queue-row]").first.bounding_box()
        assert first_row["y"] + first_row["height"] < height, "the first queue row sits below the fold"
        rows_in_view = page.evaluate(
            f"[...document.querySelectorAll('[data-queue-row]')].filter(r => r.getBoundingClientRect().bottom <= {height}).length")
        assert rows_in_view >= 3
    finally:
        context.close()


def test_navigation_collapses_behind_a_menu_button_on_a_tablet(chromium, live_server, browser_login, scene):
    context, page = sized_page(chromium, live_server, "768x1024")
    try:
        browser_login(page, scene["admin"])
        page.goto("/queue")
        menu = page.get_by_role("button", name="Menu")
        assert menu.is_visible() and page.locator("#main-nav").is_hidden()
        assert page.get_by_role("button", name="Sign out").is_visible()
        menu.click()
        assert menu.get_attribute("aria-expanded") == "true"
        webhooks = page.locator("#main-nav").get_by_role("link", name="Webhooks")
        box = webhooks.bounding_box()
        assert webhooks.is_visible() and box["x"] + box["width"] <= 768
    finally:
        context.close()


def test_decision_panel_and_specs_sit_beside_the_images_at_1440(chromium, live_server, browser_login, scene):
    context, page = sized_page(chromium, live_server, "1440x900")
    try:
        browser_login(page, scene["admin"])
        page.goto(scene["pages"]["stage-postbria"])
        page.wait_for_selector("#claim-bar[data-claim-state=mine]")  # opened, claimed, panel redrawn
        page.wait_for_load_state("networkidle")
        gallery = page.locator(".assets").bounding_box()
        for selector in ("#decision-panel", ".specs-card"):
            box = page.locator(selector).bounding_box()
            assert box["x"] >= gallery["x"] + gallery["width"], selector
            assert box["y"] < 900, f"{selector} starts below the fold"
    finally:
        context.close()


def test_j_and_k_show_the_current_queue_row(chromium, live_server, browser_login, scene):
    context, page = sized_page(chromium, live_server, "1440x900")
    try:
        browser_login(page, scene["admin"])
        page.goto("/queue")
        page.wait_for_load_state("networkidle")
        rows = page.locator("#queue-rows [data-queue-row]")
        plain = rows.nth(1).evaluate("r => getComputedStyle(r).backgroundColor")
        page.keyboard.press("j")
        page.keyboard.press("j")
        assert rows.nth(1).get_attribute("aria-current") == "true"
        assert rows.nth(1).evaluate("r => getComputedStyle(r).backgroundColor") != plain
        page.keyboard.press("k")
        assert rows.nth(0).get_attribute("aria-current") == "true" and rows.nth(1).get_attribute("aria-current") is None
    finally:
        context.close()


def test_without_javascript_no_key_hints_or_shortcuts_link_show(chromium, live_server, scene):
    from tests.factories import PASSWORD

    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1440, "height": 900},
                                   java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/login")
        page.fill("input[name=email]", scene["admin"].email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        for path in ("/queue", scene["pages"]["stage-prebria"]):
            page.goto(path)
            assert page.locator("kbd:visible").count() == 0, path
            assert page.locator("[data-show-shortcuts]:visible").count() == 0
            assert page.locator("[data-nav-toggle]:visible").count() == 0
        assert page.locator("#main-nav").get_by_role("link", name="Webhooks").is_visible()
    finally:
        context.close()
