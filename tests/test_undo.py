"""Undo: the decider takes a decision back within the window, exactly; everyone else, or later, gets a refusal."""
from __future__ import annotations

import pytest

from lhb_review import review
from lhb_review.review import undoing as undo
from lhb_review.core.errors import Conflict, Forbidden
from lhb_review.review.undoing import NothingToUndo, UndoWindowClosed
from tests.factories import make_order_with_stages
from tests.flow_helpers import (
    ADMIN,
    ANA,
    BEN,
    age_decisions,
    approval_row,
    audit_actions,
    audit_rows,
    claim_row,
    decision_rows,
    fingerprint_row,
    stage_row,
)


def state(order_id, stage="preBria"):
    row, approval, claim, printed = stage_row(order_id, stage), approval_row(order_id, stage), \
        claim_row(order_id, stage), fingerprint_row(order_id, stage)
    return {
        "stage": (row.status, row.reviewed_at, row.reviewer_email, row.reviewer_notes),
        "approval": None if approval is None else (approval.status, approval.approved_at, approval.reviewer_email,
                                                   approval.reviewer_notes),
        "claim": None if claim is None else claim.claimed_by,
        "fingerprint": None if printed is None else printed.fingerprint,
    }


def test_undo_of_an_approval_returns_the_stage_exactly_to_where_it_was(app):
    order_id = make_order_with_stages("pending").order_id
    before = state(order_id)
    review.approve(ANA, order_id, "preBria", notes="fine")
    assert state(order_id) != before
    review.undo(ANA, order_id, "preBria")
    assert state(order_id) == before
    [decision] = decision_rows(order_id)
    assert decision.undone_at is not None and decision.undone_by == "ana@example.com"
    audit = audit_rows(order_id)[-1]
    assert audit.action == "stage_undone" and audit.details["undone_action"] == "stage_approved"
    assert (audit.details["status_before"], audit.details["status_after"]) == ("approved", "pending")


def test_undo_restores_an_earlier_approvals_row_and_the_claim(app):
    order_id = make_order_with_stages("pending").order_id
    review.reject(BEN, order_id, "preBria", notes="first look", reasons=["anatomy"])
    review.reopen(ADMIN, order_id, "preBria", notes="new render")
    review.claim(ANA, order_id, "preBria")
    before = state(order_id)
    review.reject(ANA, order_id, "preBria", notes="still wrong", reasons=["text_error"])
    review.undo(ANA, order_id, "preBria")
    assert state(order_id) == before
    assert claim_row(order_id).claimed_by == "ana@example.com"
    assert stage_row(order_id).status == "in_review"


def test_only_the_decider_can_undo(app):
    order_id = make_order_with_stages("pending").order_id
    review.approve(ANA, order_id, "preBria")
    for other in (BEN, ADMIN):
        with pytest.raises(Forbidden):
            review.undo(other, order_id, "preBria")
    assert stage_row(order_id).status == "approved"
    assert audit_actions(order_id) == ["stage_approved"]


def test_after_the_window_only_an_admin_can_reopen(app):
    order_id = make_order_with_stages("pending").order_id
    review.approve(ANA, order_id, "preBria")
    age_decisions(order_id, app.config["UNDO_WINDOW_SECONDS"] + 1)
    with pytest.raises(UndoWindowClosed) as caught:
        review.undo(ANA, order_id, "preBria")
    assert "admin" in caught.value.message
    assert stage_row(order_id).status == "approved" and approval_row(order_id).status == "approved"
    assert audit_actions(order_id) == ["stage_approved"]
    review.reopen(ADMIN, order_id, "preBria")
    assert stage_row(order_id).status == "pending"


def test_undo_twice_or_after_a_reopen_has_nothing_to_undo(app):
    order_id = make_order_with_stages("pending").order_id
    review.approve(ANA, order_id, "preBria")
    review.undo(ANA, order_id, "preBria")
    with pytest.raises(NothingToUndo):
        review.undo(ANA, order_id, "preBria")
    review.approve(ANA, order_id, "preBria")
    review.reopen(ADMIN, order_id, "preBria")
    with pytest.raises(NothingToUndo):
        review.undo(ANA, order_id, "preBria")
    assert stage_row(order_id).status == "pending"
    assert audit_actions(order_id)[-1] == "stage_reopened"


def test_undoable_reports_the_seconds_left_to_the_decider_only(app):
    order_id = make_order_with_stages("pending").order_id
    review.approve(ANA, order_id, "preBria")
    found = undo.undoable(order_id, "preBria", "ana@example.com")
    assert found is not None and 0 < found[1] <= app.config["UNDO_WINDOW_SECONDS"]
    assert undo.undoable(order_id, "preBria", "ben@example.com") is None
    age_decisions(order_id, app.config["UNDO_WINDOW_SECONDS"])
    assert undo.undoable(order_id, "preBria", "ana@example.com") is None
