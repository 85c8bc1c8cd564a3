"""CSRF on every state-changing route of the URL map (the bearer-token API aside): a missing token, another
session's token, an expired token and a forged one are refused and change nothing. And no GET changes state."""
from __future__ import annotations

import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import text

from lhb_review.extensions import db
from tests.conftest import table_names
from tests.security_routes import CSRF_EXEMPT_PREFIXES, PUBLIC, ROUTES
from tests.world import World

STATE_CHANGING = [r for r in ROUTES if r.state_changing and not r.rule.startswith(CSRF_EXEMPT_PREFIXES)]
READS = [r for r in ROUTES if r.method == "GET"]
BAD_TOKENS = ["missing", "other-session", "expired", "forged"]


@pytest.fixture
def world(app, make_client):
    return World.build(app, make_client)


def snapshot() -> dict[str, str]:
    """Every table's row count and a digest of all its contents."""
    result = {}
    with db.engine.connect() as conn:
        for name in table_names(conn):
            row = conn.execute(text(
                f'SELECT count(*), md5(coalesce(string_agg(t::text, \'|\' ORDER BY t::text), \'\')) FROM "{name}" t'
            )).one()
            result[name] = f"{row[0]}:{row[1]}"
    return result


def identity_for(route) -> str:
    return "anonymous" if route.level == PUBLIC else "admin"


def expired_token(app, browser) -> str:
    """A token for this very session, signed as if it had been issued past WTF_CSRF_TIME_LIMIT ago."""
    with browser.client.session_transaction() as sess:
        raw = sess["csrf_token"]
    limit = app.config["WTF_CSRF_TIME_LIMIT"]

    class Signer(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - limit - 60

    serializer = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token", signer=Signer)
    return serializer.dumps(raw)


def bad_token(kind: str, world: World, browser, route) -> str | None:
    if kind == "missing":
        return None
    if kind == "other-session":
        other = world.make_client()
        return other.refresh_csrf("/login")
    if kind == "expired":
        return expired_token(world.app, browser)
    return browser.csrf[:-4] + "AAAA"


@pytest.mark.parametrize("via", ["form", "header"])
@pytest.mark.parametrize("kind", BAD_TOKENS)
@pytest.mark.parametrize("route", STATE_CHANGING, ids=lambda r: r.id)
def test_state_change_refuses_a_bad_csrf_token(world, route, kind, via):
    identity = identity_for(route)
    browser = world.client(identity)
    token = bad_token(kind, world, browser, route)
    url = route.url(world.values)
    data = world.form(route)
    headers = {}
    if token is not None and via == "form":
        data["csrf_token"] = token
    if token is not None and via == "header":
        headers = {"X-CSRFToken": token, "HX-Request": "true"}
    before = snapshot()
    response = browser.client.open(url, method=route.method, data=data, headers=headers)
    assert response.status_code == 400, f"{route.id} with a {kind} token: {response.status_code}"
    assert "CSRF" in response.get_data(as_text=True)
    assert snapshot() == before


@pytest.mark.parametrize("route", STATE_CHANGING, ids=lambda r: r.id)
def test_the_right_token_passes_the_csrf_check(world, route):
    """The control for the test above: with its own fresh token the same request gets past CSRF."""
    browser = world.client(identity_for(route))
    response = world.request(browser, route, identity_for(route))
    assert response.status_code != 400 or "CSRF" not in response.get_data(as_text=True)


def test_an_expired_token_says_so(world):
    browser = world.client("anonymous")
    token = expired_token(world.app, browser)
    response = browser.client.post("/login", data={"csrf_token": token, "email": "a@example.com", "password": "x"})
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True).lower()


@pytest.mark.parametrize("identity", ["anonymous", "reviewer", "admin"])
@pytest.mark.parametrize("route", READS, ids=lambda r: r.id)
def test_no_get_changes_state(world, route, identity):
    browser = world.client(identity)
    before = snapshot()
    response = world.request(browser, route, identity)
    assert response.status_code < 500
    assert snapshot() == before, f"GET {route.rule} as {identity} changed the database"
