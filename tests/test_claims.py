"""Claims: claim, renew, release, take over and lapse, and how they guard decisions; checked in the database."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from lhb_review.extensions import db
from lhb_review import review
from lhb_review.review import claims
from lhb_review.review.claims import ClaimedByOther, NotClaimed
from lhb_review.core.errors import AlreadyDecided, NotFound
from tests.factories import make_order_with_stages
from tests.flow_helpers import (
    ADMIN,
    ANA,
    BEN,
    approval_row,
    audit_actions,
    audit_rows,
    claim_row,
    expire_claim,
    stage_row,
)


def test_claim_puts_the_stage_in_review_for_the_claimer_until_the_ttl(app):
    order_id = make_order_with_stages("pending").order_id
    view = review.claim(ANA, order_id, "preBria")
    assert view.claimed_by == "ana@example.com"
    assert stage_row(order_id).status == "in_review"
    row = claim_row(order_id)
    assert row.claimed_by == "ana@example.com"
    assert (row.expires_at - row.claimed_at).total_seconds() == app.config["CLAIM_TTL_SECONDS"]
    [audit] = audit_rows(order_id)
    assert (audit.action, audit.reviewer_email, audit.stage) == ("stage_claimed", "ana@example.com", "preBria")
    assert audit.details["status_before"] == "pending" and audit.details["status_after"] == "in_review"
    assert str(audit.ip_address) == "192.0.2.20"


def test_claiming_again_renews_without_a_second_audit_row(app):
    order_id = make_order_with_stages("pending").order_id
    review.claim(ANA, order_id, "preBria")
    db.session.execute(text("UPDATE stage_claims SET expires_at = now() + interval '5 seconds'"))
    db.session.commit()
    review.renew(ANA, order_id, "preBria")
    row = claim_row(order_id)
    assert (row.expires_at - row.renewed_at).total_seconds() == app.config["CLAIM_TTL_SECONDS"]
    assert audit_actions(order_id) == ["stage_claimed"]


def test_a_live_claim_of_someone_else_refuses_a_second_claimer(app):
    order_id = make_order_with_stages("pending").order_id
    review.claim(ANA, order_id, "preBria")
    with pytest.raises(ClaimedByOther) as caught:
        review.claim(BEN, order_id, "preBria")
    assert caught.value.status == 409 and "ana@example.com" in caught.value.message
    assert claim_row(order_id).claimed_by == "ana@example.com"
    assert audit_actions(order_id) == ["stage_claimed"]


def test_renew_after_someone_else_took_over_is_refused(app):
    order_id = make_order_with_stages("pending").order_id
    review.claim(ANA, order_id, "preBria")
    review.takeover(BEN, order_id, "preBria")
    with pytest.raises(ClaimedByOther):
        review.renew(ANA, order_id, "preBria")
    assert claim_row(order_id).claimed_by == "ben@example.com"


@pytest.mark.parametrize("decided", ["approved", "rejected"])
def test_a_decided_stage_cannot_be_claimed(app, decided):
    order_id = make_order_with_stages(decided).order_id
    with pytest.raises(AlreadyDecided):
        review.claim(ANA, order_id, "preBria")
    assert stage_row(order_id).status == decided
    assert claim_row(order_id) is None and audit_rows(order_id) == []


def test_claim_of_a_missing_stage_is_not_found(app):
    order_id = make_order_with_stages("pending").order_id
    with pytest.raises(NotFound):
        review.claim(ANA, order_id, "postPdf")
    assert audit_rows(order_id) == []


def test_release_returns_the_stage_to_pending(app):
    order_id = make_order_with_stages("pending").order_id
    review.claim(ANA, order_id, "preBria")
    review.release(ANA, order_id, "preBria")
    assert stage_row(order_id).status == "pending"
    assert claim_row(order_id) is None
    assert audit_actions(order_id) == ["stage_claimed", "stage_released"]


def test_release_of_someone_elses_claim_changes_nothing(app):
    order_id = make_order_with_stages("pending").order_id
    review.claim(ANA, order_id, "preBria")
    with pytest.raises(ClaimedByOther):
        review.release(BEN, order_id, "preBria")
    with pytest.raises(NotClaimed):
        review.release(BEN, make_order_with_stages("pending").order_id, "preBria")
    assert stage_row(order_id).status == "in_review" and claim_row(order_id).claimed_by == "ana@example.com"
    assert audit_actions(order_id) == ["stage_claimed"]


def test_takeover_is_explicit_and_names_the_previous_holder(app):
    order_id = make_order_with_stages("pending").order_id
    review.claim(ANA, order_id, "preBria")
    review.takeover(BEN, order_id, "preBria")
    assert claim_row(order_id).claimed_by == "ben@example.com"
    assert stage_row(order_id).status == "in_review"
    audit = audit_rows(order_id)[-1]
    assert audit.action == "stage_claim_taken_over" and audit.reviewer_email == "ben@example.com"
    assert audit.details["previous_claimed_by"] == "ana@example.com"


def test_a_lapsed_claim_blocks_nobody(app):
    order_id = make_order_with_stages("pending").order_id
    review.claim(ANA, order_id, "preBria")
    expire_claim(order_id)
    assert claims.live_claim(order_id, "preBria") is None
    review.claim(BEN, order_id, "preBria")
    assert claim_row(order_id).claimed_by == "ben@example.com"
    audit = audit_rows(order_id)[-1]
    assert audit.action == "stage_claimed" and audit.details["lapsed_claim_of"] == "ana@example.com"


def test_a_lapsed_claim_does_not_stop_a_decision(app):
    order_id = make_order_with_stages("pending").order_id
    review.claim(ANA, order_id, "preBria")
    expire_claim(order_id)
    review.approve(BEN, order_id, "preBria")
    assert stage_row(order_id).status == "approved" and claim_row(order_id) is None


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_a_decision_on_a_stage_claimed_by_someone_else_is_a_conflict(app, action):
    order_id = make_order_with_stages("pending").order_id
    review.claim(ANA, order_id, "preBria")
    with pytest.raises(ClaimedByOther) as caught:
        getattr(review, action)(BEN, order_id, "preBria", notes="looks off", **(
            {"reasons": ["anatomy"]} if action == "reject" else {}))
    assert caught.value.status == 409
    assert stage_row(order_id).status == "in_review"
    assert approval_row(order_id) is None
    assert audit_actions(order_id) == ["stage_claimed"]


def test_admins_also_take_over_before_deciding_a_claimed_stage(app):
    order_id = make_order_with_stages("pending").order_id
    review.claim(ANA, order_id, "preBria")
    with pytest.raises(ClaimedByOther):
        review.approve(ADMIN, order_id, "preBria")
    review.takeover(ADMIN, order_id, "preBria")
    review.approve(ADMIN, order_id, "preBria")
    assert stage_row(order_id).status == "approved"
    assert audit_actions(order_id) == ["stage_claimed", "stage_claim_taken_over", "stage_approved"]


def test_the_claimer_decides_and_the_decision_ends_the_claim(app):
    order_id = make_order_with_stages("pending").order_id
    review.claim(ANA, order_id, "preBria")
    review.reject(ANA, order_id, "preBria", notes="Wrong hair", reasons=["character_drift"])
    assert stage_row(order_id).status == "rejected"
    assert claim_row(order_id) is None
    assert audit_rows(order_id)[-1].details["status_before"] == "in_review"


def test_sweep_returns_lapsed_stages_to_pending_and_audits_it(app):
    lapsed = make_order_with_stages("pending").order_id
    live = make_order_with_stages("pending").order_id
    review.claim(ANA, lapsed, "preBria")
    review.claim(BEN, live, "preBria")
    expire_claim(lapsed)
    assert review.expire_lapsed() == 1
    assert stage_row(lapsed).status == "pending" and claim_row(lapsed) is None
    assert stage_row(live).status == "in_review" and claim_row(live) is not None
    audit = audit_rows(lapsed)[-1]
    assert audit.action == "claim_lapsed" and audit.details["claimed_by"] == "ana@example.com"
    assert review.expire_lapsed() == 0


def test_sweep_frees_an_old_in_review_stage_that_has_no_claim(app):
    order_id = make_order_with_stages("in_review").order_id
    fresh = make_order_with_stages("in_review").order_id
    db.session.execute(text("SET LOCAL session_replication_role = replica"))  # keep the updated_at trigger off
    db.session.execute(text("UPDATE review_stages SET updated_at = now() - interval '1 hour' WHERE order_id = :o"),
                       {"o": order_id})
    db.session.commit()
    assert review.expire_lapsed() == 1
    assert stage_row(order_id).status == "pending"
    assert stage_row(fresh).status == "in_review"
    assert audit_actions(order_id) == ["claim_lapsed"]


def test_live_claims_for_the_queue_skip_lapsed_ones(app):
    a = make_order_with_stages("pending").order_id
    b = make_order_with_stages("pending").order_id
    review.claim(ANA, a, "preBria")
    review.claim(BEN, b, "preBria")
    expire_claim(b)
    found = claims.live_claims([(a, "preBria"), (b, "preBria")])
    assert list(found) == [(a, "preBria")] and found[(a, "preBria")].claimed_by == "ana@example.com"


def test_flask_claims_sweep(app, runner):
    order_id = make_order_with_stages("pending").order_id
    review.claim(ANA, order_id, "preBria")
    expire_claim(order_id)
    result = runner.invoke(args=["claims", "sweep"])
    assert result.exit_code == 0 and "Swept 1 lapsed claim." in result.output
    assert stage_row(order_id).status == "pending"


def test_racing_claims_leave_exactly_one_claim_and_one_audit_row(app):
    import threading

    order_id = make_order_with_stages("pending").order_id
    reviewers = [ANA.__class__(email=f"r{i}@example.com") for i in range(8)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(reviewers))

    def attempt(actor):
        with app.app_context():
            barrier.wait()
            try:
                review.claim(actor, order_id, "preBria")
                outcomes.append("claimed")
            except ClaimedByOther:
                outcomes.append("refused")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=attempt, args=(r,)) for r in reviewers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["claimed"] + ["refused"] * 7
    assert audit_actions(order_id) == ["stage_claimed"]
    assert claim_row(order_id).claimed_by == audit_rows(order_id)[0].reviewer_email
