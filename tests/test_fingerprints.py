"""Approvals are bound to the exact assets they saw: fingerprints, voiding, and get_stage_status."""
from __future__ import annotations

import copy

import pytest
from sqlalchemy import text

from lhb_review.extensions import db
from lhb_review.models import Order
from lhb_review import review
from lhb_review.review import fingerprints
from lhb_review.review.approvals import approve_stage, get_stage_status, stage_statuses
from lhb_review.review.history import AssetsChanged
from lhb_review.core.tx import transaction
from lhb_review.core.stages import Stage
from tests.factories import make_order_with_stages
from tests.flow_helpers import (
    ANA,
    approval_row,
    audit_rows,
    claim_row,
    decision_rows,
    fingerprint_row,
    stage_row,
)

A = {"key": "a.png", "sha256": "aa", "label": "A", "content_type": "image/png"}
B = {"key": "b.png", "sha256": "bb", "label": "B", "content_type": "image/png"}


def test_fingerprint_depends_on_keys_and_content_not_order_or_labels():
    assert fingerprints.fingerprint([A, B]) == fingerprints.fingerprint([B, {**A, "label": "renamed"}])
    assert fingerprints.fingerprint([A, B]) != fingerprints.fingerprint([A, {**B, "sha256": "bc"}])
    assert fingerprints.fingerprint([A]) != fingerprints.fingerprint([A, B])
    assert fingerprints.fingerprint(None) == fingerprints.fingerprint([])


def test_diff_names_added_removed_and_changed_keys():
    assert fingerprints.diff([A, B], [{**A, "sha256": "a2"}, {"key": "c.png", "sha256": "cc"}]) == {
        "added": ["c.png"], "removed": ["b.png"], "changed": ["a.png"]}


def set_assets(order_id: str, stage: str, assets: list) -> None:
    order = db.session.get(Order, db.session.scalar(db.select(Order.id).where(Order.order_id == order_id)))
    r2 = copy.deepcopy(order.r2_assets)
    r2[stage] = assets
    order.r2_assets = r2
    db.session.commit()


def test_approve_records_the_fingerprint_of_the_assets_it_saw(app):
    order = make_order_with_stages("pending")
    review.approve(ANA, order.order_id, "preBria")
    expected = fingerprints.fingerprint(order.r2_assets["preBria"])
    assert fingerprint_row(order.order_id).fingerprint == expected
    assert decision_rows(order.order_id)[0].fingerprint == expected
    assert audit_rows(order.order_id)[0].details["fingerprint"] == expected


def test_get_stage_status_is_pending_once_the_assets_differ_from_the_approved_ones(app):
    order = make_order_with_stages("pending")
    review.approve(ANA, order.order_id, "preBria")
    assert get_stage_status(order.order_id, "preBria") == "approved"
    set_assets(order.order_id, "preBria", [{**order.r2_assets["preBria"][0], "sha256": "f" * 64}])
    assert approval_row(order.order_id).status == "approved"  # nothing voided it yet...
    assert get_stage_status(order.order_id, "preBria") == "pending"  # ...but nobody approved these assets


def test_the_bare_store_binds_its_approval_to_the_current_assets_too(app):
    order = make_order_with_stages("pending")
    approve_stage(order.order_id, "preBria")
    assert get_stage_status(order.order_id, "preBria") == "approved"
    set_assets(order.order_id, "preBria", [])
    assert get_stage_status(order.order_id, "preBria") == "pending"


def test_an_approval_without_a_recorded_fingerprint_is_taken_as_it_is(app):
    order = make_order_with_stages("approved")
    db.session.execute(text("INSERT INTO approvals (order_id, stage, status, reviewer_email) "
                            "VALUES (:o, 'preBria', 'approved', 'old-tool@example.com')"), {"o": order.order_id})
    db.session.commit()
    assert get_stage_status(order.order_id, "preBria") == "approved"


def test_a_decision_on_assets_other_than_those_shown_is_a_conflict(app):
    order = make_order_with_stages("pending")
    shown = fingerprints.fingerprint(order.r2_assets["preBria"])
    set_assets(order.order_id, "preBria", [{**order.r2_assets["preBria"][0], "sha256": "e" * 64}])
    with pytest.raises(AssetsChanged):
        review.approve(ANA, order.order_id, "preBria", fingerprint=shown)
    assert stage_row(order.order_id).status == "pending"
    assert approval_row(order.order_id) is None and audit_rows(order.order_id) == []


def test_new_assets_void_the_approval_and_say_what_changed(app):
    order = make_order_with_stages("pending")
    review.approve(ANA, order.order_id, "preBria")
    old = order.r2_assets["preBria"]
    new = [{**old[0], "sha256": "c" * 64}]
    review.submit(ANA, order.order_id, "preBria", new)
    row = stage_row(order.order_id)
    assert (row.status, row.reviewer_email, row.reviewed_at) == ("pending", None, None)
    assert approval_row(order.order_id).status == "pending"
    assert get_stage_status(order.order_id, "preBria") == "pending"
    assert fingerprint_row(order.order_id) is None
    [decision] = decision_rows(order.order_id)
    assert decision.voided_at is not None and decision.void_reason
    [audit] = [a for a in audit_rows(order.order_id) if a.action == "approval_voided"]
    assert audit.details["old_fingerprint"] == fingerprints.fingerprint(old)
    assert audit.details["new_fingerprint"] == fingerprints.fingerprint(new)
    assert audit.details["changed"] == {"added": [], "removed": [], "changed": [old[0]["key"]]}
    assert audit.details["previous_decision"]["reviewer"] == "ana@example.com"


def test_a_resubmission_ends_the_claim_of_whoever_looked_at_the_old_assets(app):
    order = make_order_with_stages("pending")
    review.claim(ANA, order.order_id, "preBria")
    review.submit(ANA, order.order_id, "preBria", [{**order.r2_assets["preBria"][0], "sha256": "d" * 64}])
    assert stage_row(order.order_id).status == "pending" and claim_row(order.order_id) is None


def test_the_same_assets_again_keep_the_approval(app):
    order = make_order_with_stages("pending")
    review.approve(ANA, order.order_id, "preBria")
    review.submit(ANA, order.order_id, "preBria", [{**order.r2_assets["preBria"][0], "label": "Renamed"}])
    assert stage_row(order.order_id).status == "approved"
    assert get_stage_status(order.order_id, "preBria") == "approved"


def test_stage_statuses_answers_many_pairs_at_once(app):
    approved = make_order_with_stages("pending")
    changed = make_order_with_stages("pending")
    for order in (approved, changed):
        review.approve(ANA, order.order_id, "preBria")
    set_assets(changed.order_id, "preBria", [])
    keys = [(approved.order_id, "preBria"), (changed.order_id, "preBria"), ("NEVER-SEEN", "postPdf")]
    assert stage_statuses(keys) == {keys[0]: "approved", keys[1]: "pending", keys[2]: "pending"}


def test_record_approval_keeps_one_row_per_stage(app):
    order = make_order_with_stages("pending")
    with transaction():
        fingerprints.record_approval(order.order_id, Stage.PRE_BRIA)
        fingerprints.record_approval(order.order_id, Stage.PRE_BRIA, assets=[A])
    assert fingerprint_row(order.order_id).fingerprint == fingerprints.fingerprint([A])
