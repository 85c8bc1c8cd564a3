"""Decision rules in the service layer: each decision writes stage, approval and audit together or nothing."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from lhb_review.extensions import db
from lhb_review.models import Approval, AuditLog, ReviewStage
from lhb_review import review
from lhb_review.core.actors import Actor
from lhb_review.core.errors import AlreadyDecided, Conflict, Forbidden, Invalid, NotFound, StageOutOfOrder
from lhb_review.core.stages import UnknownStage
from tests.factories import make_order_with_stages

REVIEWER = Actor(email="rev@example.com", ip="192.0.2.10", user_agent="pytest")
ADMIN = Actor(email="admin@example.com", ip="192.0.2.11", user_agent="pytest", is_admin=True)


def stage_row(order_id, stage):
    db.session.expire_all()
    return db.session.scalar(select(ReviewStage).where(ReviewStage.order_id == order_id,
                                                        ReviewStage.stage_name == stage))


def approval_row(order_id, stage):
    return db.session.scalar(select(Approval).where(Approval.order_id == order_id, Approval.stage == stage))


def audit_rows(order_id):
    return db.session.scalars(select(AuditLog).where(AuditLog.order_id == order_id)).all()


def test_approve_writes_stage_approval_and_one_audit_row(app):
    order_id = make_order_with_stages("pending").order_id
    review.approve(REVIEWER, order_id, "preBria", notes="Looks right")
    stage = stage_row(order_id, "preBria")
    assert (stage.status, stage.reviewer_email, stage.reviewer_notes) == ("approved", "rev@example.com", "Looks right")
    assert stage.reviewed_at is not None
    approval = approval_row(order_id, "preBria")
    assert (approval.status, approval.reviewer_email) == ("approved", "rev@example.com")
    [audit] = audit_rows(order_id)
    assert (audit.action, audit.stage, audit.reviewer_email) == ("stage_approved", "preBria", "rev@example.com")
    assert audit.details["status_before"] == "pending" and audit.details["status_after"] == "approved"
    assert str(audit.ip_address) == "192.0.2.10" and audit.user_agent == "pytest"


def test_reject_keeps_the_approval_pending(app):
    order_id = make_order_with_stages("pending").order_id
    review.reject(REVIEWER, order_id, "preBria", notes="Hair is the wrong colour", reasons=["character_drift"])
    assert stage_row(order_id, "preBria").status == "rejected"
    assert approval_row(order_id, "preBria").status == "pending"
    assert [a.action for a in audit_rows(order_id)] == ["stage_rejected"]


@pytest.mark.parametrize("notes", [None, "", "   \n "])
def test_reject_without_notes_writes_nothing(app, notes):
    order_id = make_order_with_stages("pending").order_id
    with pytest.raises(Invalid):
        review.reject(REVIEWER, order_id, "preBria", notes=notes, reasons=["other"])
    assert stage_row(order_id, "preBria").status == "pending"
    assert approval_row(order_id, "preBria") is None
    assert audit_rows(order_id) == []


@pytest.mark.parametrize("decided", ["approved", "rejected"])
@pytest.mark.parametrize("action", ["approve", "reject"])
def test_decision_on_a_decided_stage_is_a_conflict(app, decided, action):
    order_id = make_order_with_stages(decided).order_id
    with pytest.raises(AlreadyDecided):
        getattr(review, action)(REVIEWER, order_id, "preBria", notes="second opinion")
    assert stage_row(order_id, "preBria").status == decided
    assert audit_rows(order_id) == []


@pytest.mark.parametrize("earlier", ["pending", "rejected", "in_review"])
def test_later_stage_cannot_be_approved_before_an_earlier_one(app, earlier):
    order_id = make_order_with_stages(earlier, "pending").order_id
    with pytest.raises(StageOutOfOrder):
        review.approve(REVIEWER, order_id, "postBria")
    assert stage_row(order_id, "postBria").status == "pending"
    assert approval_row(order_id, "postBria") is None
    assert audit_rows(order_id) == []


def test_later_stage_is_approved_once_earlier_ones_are(app):
    order_id = make_order_with_stages("approved", "approved", "pending").order_id
    review.approve(REVIEWER, order_id, "postPdf")
    assert stage_row(order_id, "postPdf").status == "approved"


def test_unknown_stage_and_missing_stage(app):
    order_id = make_order_with_stages("pending").order_id
    with pytest.raises(UnknownStage):
        review.approve(REVIEWER, order_id, "final")
    with pytest.raises(NotFound):
        review.approve(REVIEWER, order_id, "postPdf")
    with pytest.raises(NotFound):
        review.approve(REVIEWER, "NO-SUCH-ORDER", "preBria")
    assert audit_rows(order_id) == []


def test_reopen_is_for_admins_only(app):
    order_id = make_order_with_stages("rejected").order_id
    with pytest.raises(Forbidden):
        review.reopen(REVIEWER, order_id, "preBria")
    assert stage_row(order_id, "preBria").status == "rejected"
    review.reopen(ADMIN, order_id, "preBria", notes="New render coming")
    assert stage_row(order_id, "preBria").status == "pending"
    assert approval_row(order_id, "preBria").status == "pending"
    assert [a.action for a in audit_rows(order_id)] == ["stage_reopened"]


def test_reopen_of_a_waiting_stage_is_a_conflict(app):
    order_id = make_order_with_stages("pending").order_id
    with pytest.raises(Conflict):
        review.reopen(ADMIN, order_id, "preBria")
    assert audit_rows(order_id) == []


def test_notes_with_nul_are_refused(app):
    order_id = make_order_with_stages("pending").order_id
    with pytest.raises(Invalid):
        review.reject(REVIEWER, order_id, "preBria", notes="bad\x00note")
    assert db.session.scalar(select(func.count()).select_from(AuditLog)) == 0
