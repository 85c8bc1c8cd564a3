"""Unhandled errors: recorded in error_logs with the request id, a friendly page, the database-down fallback."""
from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import select

from lhb_review.extensions import db
from lhb_review.models import ErrorLog
from lhb_review.web.observability import choose_request_id
from tests.factories import PASSWORD, make_user
from tests.ops_helpers import closed_port_url, make_app

ERROR_ID = re.compile(r"E-[A-Z2-9]{4}-[A-Z2-9]{4}")


@pytest.fixture(scope="module")
def boom_app(database_url, tmp_path_factory):
    return make_app(database_url, tmp_path_factory.mktemp("boom"))


@pytest.fixture(scope="module")
def down_app(tmp_path_factory):
    return make_app(closed_port_url(), tmp_path_factory.mktemp("down"))


def test_unhandled_error_is_recorded_with_its_request_id(app, boom_app):
    response = boom_app.test_client().get("/boom", headers={"X-Request-ID": "req-abc-123", "User-Agent": "probe/1"})
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "req-abc-123"
    row = db.session.scalars(select(ErrorLog)).one()
    assert row.request_id == "req-abc-123"
    assert row.error_type == "RuntimeError"
    assert row.severity == "error"
    assert "flux capacitor" in row.message
    assert "raise RuntimeError" in row.stack_trace
    assert row.user_agent == "probe/1"
    assert row.ip_address == "127.0.0.1"
    assert row.details["route"] == "/boom"
    assert row.resolved is False
    assert row.error_id in response.get_data(as_text=True)


def test_friendly_page_shows_the_error_id_and_escapes_nothing_of_the_message(app, boom_app):
    response = boom_app.test_client().get("/boom")
    html = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Something went wrong" in html
    match = ERROR_ID.search(html)
    assert match and db.session.scalar(select(ErrorLog.error_id)) == match.group(0)
    assert "flux capacitor" not in html  # internals stay in the log, not on the page
    assert "Traceback" not in html


def test_error_records_the_signed_in_user(app, boom_app):
    user = make_user("erin@example.com")
    client = boom_app.test_client()
    from tests.conftest import Browser

    browser = Browser(client)
    assert browser.login(user.email, PASSWORD).status_code == 302
    client.get("/boom")
    assert db.session.scalar(select(ErrorLog.user_id)) == "erin@example.com"


def test_api_errors_answer_json_with_the_error_id(app, boom_app):
    response = boom_app.test_client().get("/api/v1/boom")
    assert response.status_code == 500
    body = response.get_json()
    assert body["error"]["code"] == "internal_error"
    assert body["error"]["error_id"] == db.session.scalar(select(ErrorLog.error_id))
    assert body["error"]["request_id"] == response.headers["X-Request-ID"]


def test_database_errors_are_critical(app, boom_app):
    response = boom_app.test_client().get("/boom/db")
    assert response.status_code == 500
    row = db.session.scalars(select(ErrorLog)).one()
    assert row.severity == "critical"
    assert row.error_type == "ProgrammingError"


def test_http_errors_are_not_recorded(app, boom_app):
    assert boom_app.test_client().get("/boom/403").status_code == 403
    assert boom_app.test_client().get("/no/such/page").status_code == 404
    assert db.session.scalars(select(ErrorLog)).all() == []


def test_database_down_error_goes_to_the_application_log(down_app, caplog):
    caplog.set_level(logging.ERROR, logger="lhb_review.errors")
    response = down_app.test_client().get("/boom", headers={"X-Request-ID": "down-1"})
    html = response.get_data(as_text=True)
    assert response.status_code == 500
    error_id = ERROR_ID.search(html).group(0)
    assert "could not be written" in html
    logged = [r for r in caplog.records if getattr(r, "error_id", None) == error_id]
    assert logged and logged[0].stored is False
    assert "RuntimeError" in logged[0].getMessage() and "flux capacitor" in logged[0].getMessage()
    assert logged[0].request_id == "down-1"


def test_database_down_gives_503_with_a_useful_page(down_app, caplog):
    caplog.set_level(logging.ERROR, logger="lhb_review.errors")
    response = down_app.test_client().get("/boom/db")
    html = response.get_data(as_text=True)
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "database is not reachable" in html
    assert ERROR_ID.search(html)


def test_database_down_api_answers_json(down_app):
    response = down_app.test_client().get("/boom/db", headers={"Accept": "application/json"})
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "database_unavailable"


@pytest.mark.parametrize("incoming, kept", [
    ("abc-123", True),
    ("0f8fad5b-d9cb-469f-a165-70867728950e", True),
    ("evil\nheader", False),
    ("x" * 101, False),
    ("<script>", False),
    ("", False),
    (None, False),
])
def test_incoming_request_id_is_kept_only_when_sane(incoming, kept):
    chosen = choose_request_id(incoming)
    assert (chosen == incoming) is kept
    assert re.fullmatch(r"[A-Za-z0-9._:@/+=-]{1,100}", chosen)


def test_every_response_carries_a_request_id(client):
    first = client.get("/login").headers["X-Request-ID"]
    second = client.get("/login").headers["X-Request-ID"]
    assert first and second and first != second
    assert client.get("/login", headers={"X-Request-ID": "bad id with spaces"}).headers["X-Request-ID"] != \
        "bad id with spaces"


def test_log_lines_carry_the_request_id(boom_app, app, caplog):
    caplog.set_level(logging.ERROR)
    boom_app.test_client().get("/boom", headers={"X-Request-ID": "trace-me-42"})
    assert any(r.request_id == "trace-me-42" for r in caplog.records)


def test_json_log_format_writes_one_object_per_line():
    import json

    from lhb_review.web.observability import RequestIdFilter, make_formatter

    record = logging.makeLogRecord({"name": "lhb_review.test", "levelname": "WARNING", "levelno": 30,
                                    "msg": "slow %s", "args": ("thing",), "duration_ms": 12.5})
    RequestIdFilter().filter(record)
    line = make_formatter("json").format(record)
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["message"] == "slow thing" and entry["request_id"] == "-" and entry["duration_ms"] == 12.5
    assert entry["level"] == "WARNING"


def test_slow_statements_are_logged_with_duration_and_route(database_url, tmp_path, caplog):
    slow_app = make_app(database_url, tmp_path, SLOW_QUERY_MS=0)
    caplog.set_level(logging.WARNING, logger="lhb_review.sql")
    slow_app.test_client().get("/readyz")
    slow = [r for r in caplog.records if r.name == "lhb_review.sql"]
    assert slow, "no slow statement logged with a zero threshold"
    assert slow[0].route == "/readyz"
    assert slow[0].duration_ms >= 0
    assert "Slow statement" in slow[0].getMessage()


def test_fast_statements_stay_out_of_the_log(database_url, tmp_path, caplog):
    quiet_app = make_app(database_url, tmp_path, SLOW_QUERY_MS=60000)
    caplog.set_level(logging.WARNING, logger="lhb_review.sql")
    quiet_app.test_client().get("/readyz")
    assert not [r for r in caplog.records if r.name == "lhb_review.sql"]


def test_debug_mode_records_then_hands_over_to_the_debugger(app, database_url, tmp_path):
    debug_app = make_app(database_url, tmp_path, DEBUG=True)
    with pytest.raises(RuntimeError, match="flux capacitor"):
        debug_app.test_client().get("/boom")
    assert db.session.scalar(select(ErrorLog.error_type)) == "RuntimeError"
