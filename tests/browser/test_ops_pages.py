"""Admin and statistics pages in Chromium: resolve an error in place with htmx; charts drawn as SVG."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from lhb_review.extensions import db
from lhb_review.models import AuditLog, ErrorLog
from tests.factories import make_order, make_stage, make_user


def test_admin_resolves_an_error_without_a_page_load(page, browser_login, screenshot):
    db.session.add(ErrorLog(error_id="E-BRWS-AAAA", error_type="RuntimeError", severity="critical",
                            message="the printer caught fire", details={}))
    db.session.commit()
    browser_login(page, make_user("boss@example.com", role="admin"))
    page.goto("/admin/errors")
    page.evaluate("window.__marker = 'same page'")
    row = page.locator("#error-E-BRWS-AAAA")
    row.get_by_role("button", name="Resolve").click()
    page.locator("#error-E-BRWS-AAAA .resolved").wait_for()
    assert "Resolved by boss@example.com" in row.inner_text()
    assert page.evaluate("window.__marker") == "same page"
    screenshot(page, "admin-errors-resolved")
    db.session.expire_all()
    resolved = db.session.scalar(select(ErrorLog).where(ErrorLog.error_id == "E-BRWS-AAAA"))
    assert resolved.resolved and resolved.resolved_by == "boss@example.com"
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "error_resolved")) is not None


def test_statistics_page_draws_charts(page, browser_login, screenshot):
    now = datetime.now(timezone.utc)
    for i, (reviewer, action) in enumerate([("ann@example.com", "stage_approved")] * 5
                                           + [("ann@example.com", "stage_rejected")] * 2
                                           + [("bob@example.com", "stage_approved")] * 3):
        order = make_order()
        make_stage(order, "preBria", "approved", created_at=now - timedelta(hours=2 + i))
        db.session.add(AuditLog(order_id=order.order_id, stage="preBria", action=action, reviewer_email=reviewer,
                                created_at=now - timedelta(hours=1)))
        make_stage(order, "postBria", "pending", created_at=now - timedelta(hours=i * 7))
    db.session.commit()
    browser_login(page, make_user())
    page.goto("/stats")
    charts = page.locator("svg.chart")
    assert charts.count() == 3
    box = charts.first.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 30
    assert "5 ✓ 2 ✗ · 71%" in charts.first.inner_html()
    screenshot(page, "statistics")
    page.emulate_media(media="print")
    assert page.locator(".topbar").is_hidden()
    assert charts.first.is_visible()
    screenshot(page, "statistics-print")


def test_admin_disables_a_user_and_filters_the_audit_log(page, browser_login, screenshot):
    make_user("rev@example.com")
    browser_login(page, make_user("boss@example.com", role="admin"))
    page.goto("/admin/users")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.locator("tr", has_text="rev@example.com").get_by_role("button", name="Disable").click()
    page.wait_for_url("**/admin/users")
    assert asked and "rev@example.com" in asked[0]
    assert "Disabled rev@example.com" in page.locator(".flash").inner_text()
    assert "disabled" in page.locator("tr", has_text="rev@example.com").inner_text()
    screenshot(page, "admin-users")
    page.goto("/admin/audit")
    page.select_option("select[name=action]", "user_disabled")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**action=user_disabled**")
    rows = page.locator("#audit-rows tbody tr")
    assert rows.count() == 1 and "boss@example.com" in rows.first.inner_text()
    screenshot(page, "admin-audit")
