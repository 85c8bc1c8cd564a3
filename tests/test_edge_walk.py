"""The URL-map walk: every URL variable and every query parameter a view reads gets hostile values (NUL,
CR/LF, 10,000 characters, numbers and dates past every limit, extreme time-zone offsets, deeply nested
JSON, cursors of every format holding them) as every identity, and nothing answers 5xx."""
from __future__ import annotations

import base64
import json
import uuid
from urllib.parse import quote, urlencode

import pytest
from itsdangerous import URLSafeSerializer
from werkzeug.datastructures import ImmutableMultiDict

from tests.security_routes import ROUTES
from tests.world import World

IDENTITIES = ["anonymous", "reviewer", "admin", "disabled", "token"]
ROW = "00000000-0000-4000-8000-000000000001"
OFFSET = "2025-01-01T00:00:00+20:00"


def b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def hostile_values(secret_key: str) -> list[str]:
    nested = "[" * 3000 + "]" * 3000
    queue_cursor = URLSafeSerializer(secret_key, salt="lhb-review.queue-cursor")
    return [
        "a\x00b", "a\r\nSet-Cookie: x=1", "x" * 10_000, "99999999999999999999", "-1",
        "9999-12-31", "9999-12-31T23:59:59+14:00", OFFSET, nested, b64(nested),
        b64(f"{OFFSET}|{ROW}"),  # the admin lists' cursor
        b64(json.dumps([OFFSET, ROW])),  # the API's cursor
        f"{OFFSET}_{ROW}",  # the deliveries page's cursor
        queue_cursor.dumps(["a", OFFSET, ROW]),  # the queue's signed cursor
    ]


class RecordingArgs(ImmutableMultiDict):
    """Query parameters that remember which names a view asked for."""

    reads: set[str] = set()

    def get(self, key, *args, **kwargs):
        RecordingArgs.reads.add(key)
        return super().get(key, *args, **kwargs)

    def getlist(self, key, *args, **kwargs):
        RecordingArgs.reads.add(key)
        return super().getlist(key, *args, **kwargs)

    def __getitem__(self, key):
        RecordingArgs.reads.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        RecordingArgs.reads.add(key)
        return super().__contains__(key)


@pytest.fixture
def world(app, make_client):
    return World.build(app, make_client)


def signed_in_first(world: World) -> None:
    """Every identity signs in before the walk changes anything (it may disable a user or reset a password)."""
    for identity in IDENTITIES:
        world.client(identity)


def identity_with_access(route) -> str:
    return "token" if route.rule.startswith("/api/") else "admin"


def send(world: World, route, identity: str, url: str):
    browser = world.client(identity)
    headers = world.headers(identity)
    if route.state_changing:
        headers["X-CSRFToken"] = browser.csrf or ""
        if route.rule.startswith("/api/"):
            response = browser.client.open(url, method=route.method, json={}, headers=headers)
        else:
            response = browser.client.open(url, method=route.method, headers=headers,
                                           data={"csrf_token": browser.csrf or "", **world.form(route)})
    else:
        response = browser.client.open(url, method=route.method, headers=headers)
    response.get_data()  # a streamed answer (the audit CSV) must not fail half-way either
    return response


def assert_no_5xx(response, route, identity, what):
    assert response.status_code < 500, f"{route.id} as {identity}, {what}: {response.status_code}"
    if route.rule.startswith("/api/") and response.status_code >= 400:
        assert response.is_json, f"{route.id}: an API error must be JSON"


PATH_ROUTES = [r for r in ROUTES if r.arguments]


@pytest.mark.parametrize("route", PATH_ROUTES, ids=lambda r: r.id)
def test_hostile_url_variables_never_give_a_5xx(app, world, route):
    signed_in_first(world)
    values = hostile_values(app.config["SECRET_KEY"])
    for name in route.arguments:
        for value in values:
            url = route.url({**world.values, name: quote(value, safe="")})
            for identity in IDENTITIES:
                assert_no_5xx(send(world, route, identity, url), route, identity, f"<{name}>={value[:40]!r}")


def parameters_read(app, world, route, monkeypatch) -> set[str]:
    """The query parameters the route's view reads on a well-formed request, by the identity that may call it."""
    monkeypatch.setattr(app.request_class, "parameter_storage_class", RecordingArgs)
    RecordingArgs.reads = set()
    send(world, route, identity_with_access(route), route.url(world.values))
    names = {name for name in RecordingArgs.reads if isinstance(name, str)}
    monkeypatch.undo()
    return names


# A view that reads one of these must be found reading it, or the walk would not be testing what it says.
MUST_READ = {
    "admin.audit_log": {"since", "until", "after"},
    "admin.audit_csv": {"since", "until"},
    "admin.errors": {"type", "after"},
    "deliveries.index": {"order_id", "before", "status"},
    "api.list_stages": {"status", "cursor", "limit"},
    "auth.login": {"next"},
    "queue.index": {"cursor", "stage", "status"},
}


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.id)
def test_hostile_values_in_every_query_parameter_a_view_reads_never_give_a_5xx(app, world, route, monkeypatch):
    """Each parameter alone as the identity that may call the route (so no parameter's refusal hides
    another's); every parameter at once as each other identity."""
    signed_in_first(world)
    names = parameters_read(app, world, route, monkeypatch)
    assert MUST_READ.get(route.endpoint, set()) <= names, f"{route.id} reads {sorted(names)}"
    base = route.url(world.values)
    caller = identity_with_access(route)
    for value in hostile_values(app.config["SECRET_KEY"]):
        for name in sorted(names):
            url = f"{base}?{urlencode({name: value})}"
            assert_no_5xx(send(world, route, caller, url), route, caller, f"?{name}={value[:40]!r}")
        url = f"{base}?{urlencode({name: value for name in sorted(names)})}"
        for identity in IDENTITIES:
            if identity != caller:
                assert_no_5xx(send(world, route, identity, url), route, identity, f"all={value[:40]!r}")


def test_the_walk_covers_routes_with_variables_and_views_with_parameters():
    assert len(PATH_ROUTES) >= 20
    assert {r.endpoint for r in ROUTES} >= set(MUST_READ)


def test_a_nul_in_an_order_id_is_a_clear_404_not_a_500(world):
    browser = world.client("admin")
    for url in ("/orders/a%00b/timeline", f"/orders/{world.values['order_id']}/stages/postBria/pages/1%00.png"):
        assert browser.client.get(url).status_code == 404
    api = world.client("token").client.get("/api/v1/orders/a%00b", headers=world.headers("token"))
    assert api.status_code == 404 and api.is_json


def test_control_characters_in_a_query_are_a_clear_422(world):
    browser = world.client("admin")
    for url in ("/admin/deliveries/?order_id=%00", "/admin/errors?type=%00", "/login?next=/%0d%0aLocation:x"):
        response = browser.client.get(url)
        assert response.status_code == 422
        assert "control characters" in response.get_data(as_text=True)
    api = world.client("token").client.get("/api/v1/stages?status=%00", headers=world.headers("token"))
    assert api.status_code == 422 and api.json["error"]["fields"] == {
        "status": "Query parameters cannot contain control characters (NUL, CR, LF)."}


@pytest.mark.parametrize("value", ["9999-12-31", "2025-01-01T00:00:00+20:00", "0001-01-01T00:00:00-14:00"])
def test_audit_dates_past_the_limits_are_a_clear_422(world, value):
    browser = world.client("admin")
    for path in ("/admin/audit", "/admin/audit.csv"):
        response = browser.client.get(f"{path}?{urlencode({'until': value})}")
        response.get_data()
        assert response.status_code in (400, 422), (path, value, response.status_code)
