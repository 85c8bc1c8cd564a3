"""Every route of the app, from its URL map, as anonymous, reviewer, admin, disabled user and API token,
checked against the access rule declared for it in tests/security_routes.py."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from lhb_review.ops import users as user_service
from lhb_review.core.actors import Actor
from tests.factories import make_order_with_stages, make_user
from tests.security_routes import ADMIN, API, OPEN_PROBE, PUBLIC, ROUTE_PROBLEMS, ROUTES, SIGNED_IN
from tests.world import World

IDENTITIES = ["anonymous", "reviewer", "admin", "disabled", "token"]


def expected(level: str, identity: str) -> str:
    if level in (PUBLIC, OPEN_PROBE):
        return "allowed"
    if level == API:
        return "allowed" if identity == "token" else "unauthorized"
    if identity in ("anonymous", "disabled", "token"):
        return "sign-in"
    if level == ADMIN and identity == "reviewer":
        return "forbidden"
    return "allowed"


def is_sign_in_redirect(response) -> bool:
    if response.status_code not in (301, 302, 303, 307) and response.headers.get("HX-Redirect") is None:
        return False
    location = urlsplit(response.headers.get("Location") or response.headers.get("HX-Redirect", ""))
    return location.path.endswith("/login") and "next" in parse_qs(location.query)


def test_every_route_has_a_declared_access_rule():
    assert ROUTE_PROBLEMS == []


@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.id)
def test_route_answers_each_identity_as_declared(world: World, route, identity):
    browser = world.client(identity)
    response = world.request(browser, route, identity)
    outcome = expected(route.level, identity)
    status = response.status_code
    detail = f"{route.id} as {identity}: {status} {response.headers.get('Location', '')}"
    assert status < 500, detail
    if outcome == "allowed":
        assert status not in (401, 403), detail
        assert not is_sign_in_redirect(response), detail
    elif outcome == "sign-in":
        assert is_sign_in_redirect(response), detail
    elif outcome == "forbidden":
        assert status == 403, detail
    elif outcome == "unauthorized":
        assert status == 401, detail
        assert response.is_json and response.get_json()["error"]["code"], detail


def test_the_walk_can_fail_a_route_that_is_too_open():
    """The rule table is what the walk enforces: a signed-in page declared admin-only is caught as too open."""
    assert expected(ADMIN, "reviewer") == "forbidden"
    assert expected(SIGNED_IN, "anonymous") == "sign-in"
    assert expected(API, "admin") == "unauthorized"


@pytest.fixture
def world(app, make_client):
    return World.build(app, make_client)
