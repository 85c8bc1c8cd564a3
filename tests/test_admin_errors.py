"""The admin error list: filters, detail, resolve with htmx (resolved_by, resolved_at, audited)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from lhb_review.extensions import db
from lhb_review.models import AuditLog, ErrorLog
from tests.factories import make_user


def make_error(error_id: str, error_type: str = "RuntimeError", severity: str = "error", resolved: bool = False,
               minutes_ago: int = 0, message: str = "it broke") -> ErrorLog:
    row = ErrorLog(error_id=error_id, error_type=error_type, severity=severity, message=message,
                   resolved=resolved, details={"path": "/x"}, stack_trace="Traceback ...",
                   created_at=datetime.now(timezone.utc) - timedelta(minutes=minutes_ago))
    db.session.add(row)
    db.session.commit()
    return row


def test_errors_are_listed_newest_first(login_as):
    make_error("E-OLD1-AAAA", minutes_ago=10)
    make_error("E-NEW1-AAAA", minutes_ago=1)
    html = login_as(make_user(role="admin")).get("/admin/errors").get_data(as_text=True)
    assert html.index("E-NEW1-AAAA") < html.index("E-OLD1-AAAA")


def test_filter_by_type_severity_and_resolved(login_as):
    make_error("E-TYPE-AAAA", error_type="KeyError")
    make_error("E-CRIT-AAAA", severity="critical")
    make_error("E-DONE-AAAA", resolved=True)
    browser = login_as(make_user(role="admin"))
    html = browser.get("/admin/errors?type=KeyError").get_data(as_text=True)
    assert "E-TYPE-AAAA" in html and "E-CRIT-AAAA" not in html
    html = browser.get("/admin/errors?severity=critical").get_data(as_text=True)
    assert "E-CRIT-AAAA" in html and "E-TYPE-AAAA" not in html
    html = browser.get("/admin/errors?resolved=yes").get_data(as_text=True)
    assert "E-DONE-AAAA" in html and "E-CRIT-AAAA" not in html
    html = browser.get("/admin/errors?resolved=no").get_data(as_text=True)
    assert "E-DONE-AAAA" not in html and "E-CRIT-AAAA" in html


def test_bad_filters_are_a_message_not_a_500(login_as):
    browser = login_as(make_user(role="admin"))
    response = browser.get("/admin/errors?severity=apocalyptic", follow_redirects=True)
    assert response.status_code == 200 and "Unknown severity" in response.get_data(as_text=True)
    response = browser.get("/admin/errors?after=%%%garbage", follow_redirects=True)
    assert response.status_code == 400 and "page link is broken" in response.get_data(as_text=True)


def test_keyset_paging(login_as):
    for i in range(5):
        make_error(f"E-PAGE-000{i}", minutes_ago=i)
    browser = login_as(make_user(role="admin"))
    first = browser.get("/admin/errors?size=25").get_data(as_text=True)
    assert "Older errors" not in first
    from lhb_review.ops import errorlog

    rows, cursor = errorlog.list_errors(errorlog.ErrorFilters(), limit=2)
    assert [r.error_id for r in rows] == ["E-PAGE-0000", "E-PAGE-0001"]
    rows, cursor = errorlog.list_errors(errorlog.ErrorFilters(), after=cursor, limit=2)
    assert [r.error_id for r in rows] == ["E-PAGE-0002", "E-PAGE-0003"]
    rows, cursor = errorlog.list_errors(errorlog.ErrorFilters(), after=cursor, limit=2)
    assert [r.error_id for r in rows] == ["E-PAGE-0004"] and cursor is None


def test_detail_page_shows_the_stack_trace_escaped(login_as):
    make_error("E-DETL-AAAA", message="<img src=x onerror=alert(1)>")
    html = login_as(make_user(role="admin")).get("/admin/errors/E-DETL-AAAA").get_data(as_text=True)
    assert "Traceback ..." in html
    assert "<img src=x" not in html and "&lt;img src=x" in html


def test_resolve_with_htmx_swaps_the_row_and_audits(login_as):
    make_error("E-RSLV-AAAA")
    admin = make_user("boss@example.com", role="admin")
    browser = login_as(admin)
    response = browser.post("/admin/errors/E-RSLV-AAAA/resolve", htmx=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<tr id="error-E-RSLV-AAAA"')
    assert "<html" not in html and "Resolved by boss@example.com" in html
    db.session.expire_all()
    row = db.session.scalar(select(ErrorLog).where(ErrorLog.error_id == "E-RSLV-AAAA"))
    assert row.resolved is True and row.resolved_by == "boss@example.com" and row.resolved_at is not None
    [entry] = db.session.scalars(select(AuditLog).where(AuditLog.action == "error_resolved")).all()
    assert entry.reviewer_email == "boss@example.com" and entry.details["error_id"] == "E-RSLV-AAAA"


def test_resolve_without_javascript_redirects(login_as):
    make_error("E-PLAI-AAAA")
    browser = login_as(make_user(role="admin"))
    response = browser.post("/admin/errors/E-PLAI-AAAA/resolve")
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/errors")


def test_resolving_twice_is_a_conflict_and_audits_once(login_as):
    make_error("E-TWCE-AAAA")
    browser = login_as(make_user(role="admin"))
    assert browser.post("/admin/errors/E-TWCE-AAAA/resolve", htmx=True).status_code == 200
    second = browser.post("/admin/errors/E-TWCE-AAAA/resolve", htmx=True)
    assert second.status_code == 409 and "already resolved" in second.get_data(as_text=True)
    assert len(db.session.scalars(select(AuditLog).where(AuditLog.action == "error_resolved")).all()) == 1


def test_resolve_unknown_error_is_404(login_as):
    browser = login_as(make_user(role="admin"))
    assert browser.post("/admin/errors/E-NONE-XXXX/resolve").status_code == 404


def test_resolve_without_javascript_returns_to_the_filtered_list(login_as):
    make_error("E-BACK-AAAA", severity="critical")
    browser = login_as(make_user(role="admin"))
    page = browser.get("/admin/errors?severity=critical").get_data(as_text=True)
    assert 'name="next" value="/admin/errors?severity=critical"' in page
    response = browser.post("/admin/errors/E-BACK-AAAA/resolve", {"next": "/admin/errors?severity=critical"})
    assert response.status_code == 303 and response.headers["Location"] == "/admin/errors?severity=critical"
    response = browser.post("/admin/errors/E-BACK-AAAA/resolve", {"next": "https://evil.example/"})
    assert response.headers["Location"].endswith("/admin/errors")
