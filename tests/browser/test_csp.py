"""The strict Content-Security-Policy holds in a real Chromium: htmx swaps work, the inline PDF frame loads,
and the browser reports no policy violation and no console error on the way."""
from __future__ import annotations

import pytest

from lhb_review.ops.demo_assets import draw_page, pdf_bytes, png_bytes, write_asset
from tests.factories import make_order_with_stages, make_user
from tests.security_routes import ROUTES

WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__violations.push(e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sourceFile || ''));
});
"""


@pytest.fixture
def watched_page(page):
    """A page that records CSP violation events and console errors from its very first script."""
    page.add_init_script(WATCH_VIOLATIONS)
    errors: list[str] = []

    def on_console(msg):
        # A missing file (the favicon, a test asset never written) is a network matter, not a policy one.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            errors.append(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.console_errors = errors
    return page


def violations(page) -> list[str]:
    return page.evaluate("window.__violations")


def wait_until(page, expression: str, timeout: float = 10.0) -> None:
    """Poll an expression through the debugger protocol: Playwright's wait_for_function would evaluate the
    predicate with eval() inside the page, which this very policy forbids."""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        page.wait_for_timeout(50)


@pytest.fixture
def book_assets(app):
    root = app.config["ASSET_DIR"]
    picture = draw_page({"name": "Maya"}, "my-first-adventure", {"title": "Maya"}, 1)
    return {
        "pdf": write_asset(root, "csp/book.pdf", pdf_bytes([picture]), "Book", "application/pdf")["key"],
        "png": write_asset(root, "csp/page.png", png_bytes(picture), "Page", "image/png")["key"],
    }


def test_the_policy_really_blocks_inline_script(watched_page, browser_login):
    """The watcher above can see a violation: an injected inline script is refused and reported."""
    page = watched_page
    browser_login(page, make_user("inline@example.com"))
    page.goto("/queue")
    page.evaluate("""() => {
        const s = document.createElement('script');
        s.textContent = 'window.__ran = true';
        document.body.appendChild(s);
    }""")
    wait_until(page, "window.__violations.length > 0")
    assert page.evaluate("window.__ran === undefined")
    assert any("script-src" in v for v in violations(page))


def test_asset_files_load_in_a_frame_and_an_image_without_violations(watched_page, browser_login, book_assets):
    page = watched_page
    browser_login(page, make_user("frames@example.com"))
    page.goto("/queue")
    loaded = page.evaluate("""(keys) => new Promise((resolve) => {
        const img = document.createElement('img');
        img.id = 'png';
        img.src = '/assets/' + keys.png;
        document.body.appendChild(img);
        const frame = document.createElement('iframe');
        frame.id = 'pdf';
        frame.onload = () => resolve(true);
        frame.src = '/assets/' + keys.pdf;
        document.body.appendChild(frame);
    })""", book_assets)
    assert loaded
    wait_until(page, "document.getElementById('png').complete")
    assert page.evaluate("document.getElementById('png').naturalWidth") > 0
    assert violations(page) == []
    assert page.console_errors == []


def test_our_pages_refuse_to_be_framed(watched_page, browser_login):
    """frame-ancestors 'none': even this site cannot frame its own pages (clickjacking)."""
    page = watched_page
    browser_login(page, make_user("framing@example.com"))
    page.goto("/queue")
    page.evaluate("""() => new Promise((resolve) => {
        const frame = document.createElement('iframe');
        frame.onload = () => resolve(true);
        frame.src = '/queue';
        document.body.appendChild(frame);
    })""")
    refused = [e for e in page.console_errors if "frame-ancestors" in e]
    assert refused, page.console_errors
    assert page.frames[-1].url != page.url or page.frames[-1].content().count("Sign out") == 0


def test_an_htmx_decision_swaps_the_panel_under_the_policy(watched_page, browser_login):
    order = make_order_with_stages("pending")
    page = watched_page
    browser_login(page, make_user("decider@example.com"))
    response = page.goto(f"/orders/{order.order_id}/stages/preBria")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    wait_until(page, "window.htmx !== undefined")
    before = page.evaluate("performance.getEntriesByType('navigation').length")
    page.click("#decision-panel button[data-action=approve]")
    page.wait_for_selector("#decision-panel[data-status=approved]")
    assert page.evaluate("performance.getEntriesByType('navigation').length") == before, "no page load"
    assert violations(page) == []
    assert page.console_errors == []


def test_the_queue_filter_swaps_the_list_under_the_policy(watched_page, browser_login):
    make_order_with_stages("pending")
    page = watched_page
    browser_login(page, make_user("filterer@example.com"))
    page.goto("/queue")
    wait_until(page, "window.htmx !== undefined")
    with page.expect_response(lambda r: "/queue" in r.url and r.request.headers.get("hx-request") == "true"):
        page.select_option("select[name=stage]", "postBria")
    page.wait_for_selector("#queue-rows")
    assert violations(page) == []
    assert page.console_errors == []


PAGES = [r for r in ROUTES if r.method == "GET" and not r.rule.startswith(("/api/", "/static", "/assets", "/metrics"))
         and r.endpoint not in ("admin.audit_csv", "review.action_page")]


def test_every_page_renders_without_a_policy_violation(watched_page, browser_login, app, book_assets):
    """A crawl of every HTML page of the URL map as an admin: the policy never has to block anything."""
    from tests.world import World

    world = World.build(app, lambda: None)
    page = watched_page
    browser_login(page, world.users["admin"])
    seen = []
    for route in PAGES:
        url = route.url(world.values)
        response = page.goto(url)
        assert response.status < 500, url
        seen.append((url, violations(page), list(page.console_errors)))
        page.console_errors.clear()
    assert [s for s in seen if s[1]] == []
    assert [s for s in seen if s[2]] == []
