"""The strict Content-Security-Policy holds in a real Chromium: htmx swaps work, the inline PDF frame loads,
and the browser reports no policy violation and no console error on the way."""
from __future__ import annotations

import pytest

from lhb_review.demo_assets import draw_page, pdf_bytes, png_bytes, write_asset
from tests.factories import make_user

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
        # The browser asks for /favicon.ico on its own; the app has none, which is not a policy matter.
        if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico"):
            errors.append(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.console_errors = errors
    return page


def violations(page) -> list[str]:
    return page.evaluate("window.__violations")


@pytest.fixture
def book_assets(app):
    root = app.config["ASSET_DIR"]
    picture = draw_page({"name": "Maya"}, "my-first-adventure", {"title": "Maya"}, 1)
    return {
        "pdf": write_asset(root, "csp/book.pdf", pdf_bytes([picture]), "Book", "application/pdf")["key"],
        "png": write_asset(root, "csp/page.png", png_bytes(picture), "Page", "image/png")["key"],
    }


def test_htmx_swaps_under_the_policy_without_violations(watched_page, browser_login):
    page = watched_page
    browser_login(page, make_user("csp@example.com"))
    response = page.goto("/queue")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_function("window.htmx !== undefined")
    page.evaluate("document.querySelector('main').setAttribute('id', 'swap-target')")
    page.evaluate("htmx.ajax('GET', '/queue', {target: '#swap-target', select: 'main', swap: 'outerHTML'})")
    page.wait_for_function("document.querySelectorAll('main').length === 1 && !document.getElementById('swap-target')")
    assert page.locator("main").count() == 1
    assert violations(page) == []
    assert page.console_errors == []


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
    page.wait_for_function("window.__violations.length > 0")
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
    page.wait_for_function("document.getElementById('png').complete")
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
