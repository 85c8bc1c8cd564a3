"""Reviewer statistics: decisions, approval rate, turnaround percentiles, backlog by age, SVG charts."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from xml.etree import ElementTree

import pytest

from lhb_review.extensions import db
from lhb_review.models import AuditLog
from lhb_review.ops import opsstats
from tests.factories import make_order, make_stage, make_user

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def decided(order, stage, action, reviewer, submitted_hours_ago, decided_hours_ago):
    """A stage submitted and decided at known times (audit rows written directly)."""
    make_stage(order, stage, "approved" if action == "stage_approved" else "rejected",
               created_at=NOW - timedelta(hours=submitted_hours_ago))
    db.session.add(AuditLog(order_id=order.order_id, stage=stage, action=action, reviewer_email=reviewer,
                            created_at=NOW - timedelta(hours=decided_hours_ago)))
    db.session.commit()


@pytest.fixture
def history():
    # ann: three approvals, one rejection on preBria; turnarounds 1, 2, 3 and 4 hours.
    for hours in (1, 2, 3):
        decided(make_order(), "preBria", "stage_approved", "ann@example.com", hours + 5, 5)
    decided(make_order(), "preBria", "stage_rejected", "ann@example.com", 4 + 5, 5)
    # bob: one postBria rejection, 10 hours after submission.
    decided(make_order(), "postBria", "stage_rejected", "bob@example.com", 12, 2)
    # Decided long before the period: not counted.
    decided(make_order(), "preBria", "stage_approved", "old@example.com", 24 * 60, 24 * 59)


def test_decisions_per_reviewer_and_stage_with_approval_rate(app, history):
    stats = opsstats.review_stats(30, now=NOW)
    by_name = {r.reviewer: r for r in stats.reviewers}
    assert set(by_name) == {"ann@example.com", "bob@example.com"}
    assert by_name["ann@example.com"].by_stage == {"preBria": {"approved": 3, "rejected": 1}}
    assert by_name["ann@example.com"].approval_rate == 0.75
    assert by_name["bob@example.com"].approval_rate == 0.0
    assert stats.approved == 3 and stats.rejected == 2
    assert stats.approval_rate == pytest.approx(0.6)


def test_median_and_p90_time_to_decision(app, history):
    stats = opsstats.review_stats(30, now=NOW)
    turnaround = {t.stage: t for t in stats.turnaround}
    pre = turnaround["preBria"]
    assert pre.decisions == 4
    assert pre.median_seconds == pytest.approx(2.5 * 3600)
    assert pre.p90_seconds == pytest.approx(3.7 * 3600)  # percentile_cont over 1, 2, 3, 4 hours
    assert turnaround["postBria"].median_seconds == pytest.approx(10 * 3600)
    assert turnaround["all"].decisions == 5


def test_a_resubmission_restarts_the_clock(app):
    order = make_order()
    decided(order, "preBria", "stage_approved", "ann@example.com", 50, 1)
    db.session.add(AuditLog(order_id=order.order_id, stage="preBria", action="stage_submitted",
                            created_at=NOW - timedelta(hours=3)))
    db.session.commit()
    [pre, _all] = opsstats.review_stats(30, now=NOW).turnaround
    assert pre.median_seconds == pytest.approx(2 * 3600)


def test_backlog_by_age(app):
    for hours, stage in ((0.5, "preBria"), (2, "preBria"), (2, "postBria"), (30, "postPdf"), (24 * 10, "preBria")):
        make_stage(make_order(), stage, "pending", created_at=NOW - timedelta(hours=hours))
    make_stage(make_order(), "preBria", "approved", created_at=NOW - timedelta(hours=2))
    backlog = {b["label"]: b for b in opsstats.review_stats(30, now=NOW).backlog}
    assert backlog["< 1 hour"]["total"] == 1
    assert backlog["1–4 hours"]["counts"] == {"preBria": 1, "postBria": 1, "postPdf": 0}
    assert backlog["1–3 days"]["counts"]["postPdf"] == 1
    assert backlog["> 7 days"]["total"] == 1
    assert sum(b["total"] for b in backlog.values()) == 5


def test_stats_page_renders_svg_charts_for_a_reviewer(login_as, history):
    response = login_as(make_user(role="reviewer")).get("/stats")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    svgs = re.findall(r"<svg.*?</svg>", html, re.S)
    assert len(svgs) == 3
    for svg in svgs:
        ElementTree.fromstring(svg)  # well-formed markup, drawn on the server
        assert "<title" in svg
    assert "ann@example.com" in svgs[0] and "3 ✓ 1 ✗ · 75%" in svgs[0]
    assert "median 2.5 h" in svgs[1]
    assert "<script" not in html.split("</head>")[1]
    assert 'style="' not in html


def test_stats_page_period_and_bad_input(login_as, history):
    browser = login_as(make_user())
    assert "Last 7 days" in browser.get("/stats?days=7").get_data(as_text=True)
    assert browser.get("/stats?days=abc").status_code == 200
    assert browser.get("/stats?days=-5").status_code == 200


def test_reviewer_names_are_escaped_in_the_charts(login_as):
    decided(make_order(), "preBria", "stage_approved", "<script>x</script>@example.com", 2, 1)
    html = login_as(make_user()).get("/stats").get_data(as_text=True)
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html


def test_stats_needs_login(client):
    response = client.get("/stats")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_empty_statistics_render(login_as):
    html = login_as(make_user()).get("/stats").get_data(as_text=True)
    assert "No decisions in this period." in html
