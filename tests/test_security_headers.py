"""Security headers: a strict Content-Security-Policy on pages, framing only for our own asset files,
nosniff, a referrer policy, and HSTS only when HTTPS is configured."""
from __future__ import annotations

import pytest

from lhb_review import create_app
from tests.conftest import Browser, test_env
from tests.factories import make_user
from tests.security_routes import ROUTES
from tests.world import World


def policy(response) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    parts = [p.strip() for p in header.split(";") if p.strip()]
    return {p.split()[0]: " ".join(p.split()[1:]) for p in parts}


@pytest.fixture
def asset_file(app):
    folder = app.config["ASSET_DIR"] / "orders" / "7"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "book.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    return "/assets/orders/7/book.pdf"


@pytest.mark.parametrize("path", ["/login", "/queue", "/no-such-page"])
def test_pages_carry_a_strict_policy(login_as, path):
    browser = login_as(make_user())
    response = browser.get(path)
    csp = policy(response)
    assert csp["script-src"] == "'self'"
    assert csp["style-src"] == "'self'"
    assert csp["default-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["form-action"] == "'self'"
    assert csp["base-uri"] == "'self'"
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers


def test_asset_files_may_be_framed_by_our_pages_only(login_as, asset_file):
    browser = login_as(make_user())
    response = browser.get(asset_file)
    assert response.status_code == 200
    csp = policy(response)
    assert csp["frame-ancestors"] == "'self'"
    assert csp["default-src"] == "'none'"
    assert "script-src" not in csp, "asset files run no scripts (default-src 'none')"
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_static_files_get_the_headers_too(client):
    response = client.get("/static/css/app.css")
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" in response.headers


def test_hsts_only_when_https_is_configured(app, database_url, tmp_path):
    secure = create_app({"TESTING": True}, env=test_env(database_url, tmp_path, HTTPS="true"))
    with secure.app_context():
        response = Browser(secure.test_client()).get("/login")
    hsts = response.headers["Strict-Transport-Security"]
    assert "max-age=31536000" in hsts
    assert "includeSubDomains" in hsts


HTML_PAGES = [r for r in ROUTES if r.method == "GET" and not r.rule.startswith(("/api/", "/static", "/assets"))]


@pytest.mark.parametrize("route", HTML_PAGES, ids=lambda r: r.id)
def test_pages_have_no_inline_scripts_or_styles_and_carry_the_headers(app, make_client, route):
    """The policy forbids inline code, so no page may rely on it; and every page carries the headers."""
    import re

    world = World.build(app, make_client)
    browser = world.client("admin")
    response = world.request(browser, route, "admin")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    if response.mimetype != "text/html":
        return
    html = response.get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), route.id
    assert "<style" not in html, route.id
    assert not re.search(r"\sstyle=", html), route.id
    assert not re.search(r"\son[a-z]+=", html), route.id
    assert not re.search(r"\shx-on", html), route.id
