"""The order timeline: decisions, claims, submissions, asset changes and errors in one list, newest first."""
from __future__ import annotations

from sqlalchemy import text

from lhb_review.extensions import db
from lhb_review.models import AuditLog, ErrorLog
from lhb_review import review
from lhb_review.review import timeline
from tests.factories import make_order_with_stages
from tests.flow_helpers import ANA, BEN


def at(entries):
    return [(e.kind, e.action) for e in entries]


def build_history():
    order_id = make_order_with_stages("pending", "pending").order_id
    db.session.add(AuditLog(order_id=order_id, action="stage_submitted", stage="preBria",
                            reviewer_email="pipeline@littleherolabs.com", details={"assets": 2}))
    db.session.commit()
    review.claim(ANA, order_id, "preBria")
    review.reject(ANA, order_id, "preBria", notes="Hair drifts", reasons=["character_drift", "anatomy"])
    db.session.add(ErrorLog(error_id="err-1", error_type="render_failed", severity="error",
                            message="Bria timed out", details={"order_id": order_id, "stage": "postBria"}))
    db.session.add(ErrorLog(error_id="err-2", error_type="render_failed", severity="error",
                            message="another order's error", details={"order_id": "SOMEONE-ELSE"}))
    db.session.add(AuditLog(order_id="SOMEONE-ELSE", action="stage_approved", stage="preBria"))
    db.session.commit()
    # Give each row its own moment, in the order they happened. audit_logs is append-only; the suite's
    # superuser steps around its trigger the way the cleanup does, for this one backdating statement.
    db.session.execute(text("SET LOCAL session_replication_role = replica"))
    db.session.execute(text("""
        UPDATE audit_logs SET created_at = now() - make_interval(mins => CASE action
            WHEN 'stage_submitted' THEN 40 WHEN 'stage_claimed' THEN 30 ELSE 20 END)"""))
    db.session.execute(text("UPDATE error_logs SET created_at = now() - interval '10 minutes'"))
    db.session.commit()
    return order_id


def test_everything_about_the_order_newest_first(app):
    order_id = build_history()
    entries = timeline.order_timeline(order_id)
    assert at(entries) == [("errors", "render_failed"), ("review", "stage_rejected"), ("claims", "stage_claimed"),
                           ("pipeline", "stage_submitted")]
    error, rejected, claimed, submitted = entries
    assert error.summary == "Bria timed out" and error.severity == "error" and error.stage == "postBria"
    assert rejected.summary == "Character drift, Anatomy — Hair drifts" and rejected.actor == "ana@example.com"
    assert claimed.title == "Claimed" and submitted.summary == "2 assets"


def test_filters_by_kind_and_stage(app):
    order_id = build_history()
    assert at(timeline.order_timeline(order_id, kinds=["claims", "errors"])) == [
        ("errors", "render_failed"), ("claims", "stage_claimed")]
    assert at(timeline.order_timeline(order_id, stage="postBria")) == [("errors", "render_failed")]
    assert at(timeline.order_timeline(order_id, kinds=["review"], stage="preBria")) == [("review", "stage_rejected")]


def test_unknown_filters_show_everything_rather_than_fail(app):
    order_id = build_history()
    assert len(timeline.order_timeline(order_id, kinds=["<nope>"], stage="'; drop table orders; --")) == 4


def test_other_actions_and_the_limit(app):
    order_id = make_order_with_stages("pending").order_id
    db.session.add_all([AuditLog(order_id=order_id, action="note_added", details={}),
                        AuditLog(order_id=order_id, action="webhook_delivered", details={})])
    db.session.commit()
    review.claim(BEN, order_id, "preBria")
    assert at(timeline.order_timeline(order_id, kinds=["other"])) == [("other", "note_added")]
    assert at(timeline.order_timeline(order_id, kinds=["pipeline"])) == [("pipeline", "webhook_delivered")]
    assert len(timeline.order_timeline(order_id, limit=1)) == 1


def test_errors_on_an_order_route_name_the_order(app):
    from lhb_review.web.errors import _error_context

    with app.test_request_context("/orders/ORD-9/timeline"):
        assert _error_context().details["order_id"] == "ORD-9"
    with app.test_request_context("/queue"):
        assert "order_id" not in _error_context().details
