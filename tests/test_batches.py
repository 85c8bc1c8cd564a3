"""Batch review as a service: each card its own decision through the machine, with details.batch in its audit row;
conflicts reported per card, a second submit deciding nothing, undo per batch or card, claims skipped and released."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from lhb_review import review
from lhb_review.core.errors import Invalid
from lhb_review.extensions import db
from lhb_review.models import AuditLog, WebhookDelivery
from lhb_review.review import batches
from lhb_review.review.batches import Card, Choice
from tests.factories import make_order, make_stage
from tests.flow_helpers import ANA, BEN, claim_row, expire_claim, stage_row

HOOK = ["https://pipeline.example.com/hooks/review"]


def waiting(n: int, stage: str = "preBria") -> list[Card]:
    """n orders with a waiting ``stage`` (earlier stages approved), oldest first."""
    now = datetime.now(timezone.utc)
    cards = []
    for i in range(n):
        order = make_order(webhooks=HOOK)
        if stage == "postBria":
            make_stage(order, "preBria", "approved", created_at=now - timedelta(hours=100 - i))
        make_stage(order, stage, "pending", created_at=now - timedelta(hours=50 - i))
        cards.append(Card(order.order_id, stage))
    return cards


def batch_audit(batch_id: str, action: str | None = None) -> list[AuditLog]:
    db.session.expire_all()
    stmt = select(AuditLog).where(AuditLog.details["batch"].astext == batch_id)
    if action:
        stmt = stmt.where(AuditLog.action == action)
    return list(db.session.scalars(stmt))


def approve_all(cards):
    return [Choice(card, batches.APPROVE) for card in cards]


def test_opening_a_batch_claims_every_shown_stage_with_the_batch_in_the_audit(app):
    cards = waiting(14)
    opened = batches.open_batch(ANA, "preBria", size=12)
    assert opened.cards == cards[:12]
    for card in opened.cards:
        assert claim_row(card.order_id).claimed_by == ANA.email
        assert stage_row(card.order_id).status == "in_review"
    claimed = batch_audit(opened.batch_id, "stage_claimed")
    assert sorted(a.order_id for a in claimed) == sorted(c.order_id for c in cards[:12])
    assert claim_row(cards[12].order_id) is None


def test_stages_claimed_by_someone_else_are_skipped_and_replaced(app):
    cards = waiting(8)
    review.claim(BEN, cards[1].order_id, "preBria")
    review.claim(BEN, cards[4].order_id, "preBria")
    opened = batches.open_batch(ANA, "preBria", size=6)
    assert opened.cards == [cards[i] for i in (0, 2, 3, 5, 6, 7)]
    assert claim_row(cards[1].order_id).claimed_by == BEN.email


def test_a_claim_lapsed_elsewhere_is_taken_and_its_holder_named(app):
    cards = waiting(6)
    review.claim(BEN, cards[0].order_id, "preBria")
    expire_claim(cards[0].order_id)
    opened = batches.open_batch(ANA, "preBria", size=6)
    assert cards[0] in opened.cards
    [row] = [a for a in batch_audit(opened.batch_id, "stage_claimed") if a.order_id == cards[0].order_id]
    assert row.details["lapsed_claim_of"] == BEN.email


def test_postbria_batch_leaves_out_orders_whose_character_is_not_approved(app):
    ready = waiting(6, "postBria")
    blocked = make_order()
    make_stage(blocked, "preBria", "pending")
    make_stage(blocked, "postBria", "pending")
    opened = batches.open_batch(ANA, "postBria", size=12)
    assert opened.cards == ready


def test_postpdf_is_not_a_batch_stage(app):
    with pytest.raises(Invalid):
        batches.open_batch(ANA, "postPdf")


def test_leaving_releases_what_was_not_decided(app):
    cards = waiting(6)
    opened = batches.open_batch(ANA, "preBria", size=6)
    batches.decide(ANA, opened.batch_id, approve_all(opened.cards[:2]))
    released = batches.release(ANA, opened.batch_id, opened.cards)
    assert released == cards[2:]
    for card in cards[2:]:
        assert claim_row(card.order_id) is None and stage_row(card.order_id).status == "pending"
    assert len(batch_audit(opened.batch_id, "stage_released")) == 4
    assert [stage_row(c.order_id).status for c in cards[:2]] == ["approved", "approved"]


def test_release_leaves_a_claim_someone_took_over_alone(app):
    cards = waiting(6)
    opened = batches.open_batch(ANA, "preBria", size=6)
    review.takeover(BEN, cards[0].order_id, "preBria")
    assert cards[0] not in batches.release(ANA, opened.batch_id, opened.cards)
    assert claim_row(cards[0].order_id).claimed_by == BEN.email


def test_twelve_card_batch_with_one_decided_elsewhere_gives_eleven_decisions_and_one_conflict(app):
    cards = waiting(12)
    opened = batches.open_batch(ANA, "preBria", size=12)
    stolen = opened.cards[5]
    review.takeover(BEN, stolen.order_id, "preBria")
    review.approve(BEN, stolen.order_id, "preBria")

    result = batches.decide(ANA, opened.batch_id, approve_all(opened.cards))

    assert len(result.decided) == 11
    [conflict] = result.refused
    assert conflict.card == stolen and conflict.status == 409 and "already approved" in conflict.message
    decisions = batch_audit(opened.batch_id, "stage_approved")
    assert len(decisions) == 11 and stolen.order_id not in {a.order_id for a in decisions}
    assert all(a.reviewer_email == ANA.email for a in decisions)
    for card in cards:
        assert stage_row(card.order_id).status == "approved"
        assert stage_row(card.order_id).reviewer_email == (BEN.email if card == stolen else ANA.email)
    events = db.session.scalar(select(func.count()).select_from(WebhookDelivery)
                               .where(WebhookDelivery.event == "stage_approved"))
    assert events == 12  # eleven from the batch, one from Ben


def test_a_reject_in_a_batch_needs_its_notes_and_the_other_cards_still_go_through(app):
    cards = waiting(6)
    opened = batches.open_batch(ANA, "preBria", size=6)
    choices = [Choice(cards[0], batches.REJECT, notes="", reasons=("character_drift",)),
               Choice(cards[1], batches.REJECT, notes="Hair is blond, specs say brown.", reasons=("character_drift",)),
               *approve_all(cards[2:])]
    result = batches.decide(ANA, opened.batch_id, choices)
    [refused] = result.refused
    assert refused.card == cards[0] and refused.status == 422
    assert stage_row(cards[0].order_id).status == "in_review"
    assert stage_row(cards[1].order_id).status == "rejected"
    [rejected] = batch_audit(opened.batch_id, "stage_rejected")
    assert rejected.order_id == cards[1].order_id and rejected.details["reasons"] == ["character_drift"]
    assert len(batch_audit(opened.batch_id, "stage_approved")) == 4


def test_submitting_the_same_batch_twice_decides_nothing_twice(app):
    cards = waiting(6)
    opened = batches.open_batch(ANA, "preBria", size=6)
    choices = [Choice(cards[0], batches.REJECT, notes="Wrong eyes.", reasons=("character_drift",)),
               *approve_all(cards[1:])]
    first = batches.decide(ANA, opened.batch_id, choices)
    audit_before = len(batch_audit(opened.batch_id))

    second = batches.decide(ANA, opened.batch_id, choices)

    assert len(first.decided) == 6
    assert [o.result for o in second.outcomes] == ["already"] * 6
    assert all(o.message == batches.ALREADY for o in second.outcomes)
    assert len(batch_audit(opened.batch_id)) == audit_before


def test_flagged_cards_are_not_decided_and_are_released(app):
    cards = waiting(6)
    opened = batches.open_batch(ANA, "preBria", size=6)
    result = batches.decide(ANA, opened.batch_id,
                            [Choice(cards[0], batches.FLAG), Choice(cards[1], batches.FLAG), *approve_all(cards[2:])])
    assert [o.card for o in result.having("flagged")] == cards[:2]
    for card in cards[:2]:
        assert stage_row(card.order_id).status == "pending" and claim_row(card.order_id) is None
    assert len(result.decided) == 4


def test_undo_of_a_batch_undoes_each_card_it_decided(app):
    cards = waiting(6)
    opened = batches.open_batch(ANA, "preBria", size=6)
    batches.decide(ANA, opened.batch_id, [Choice(cards[0], batches.FLAG), *approve_all(cards[1:])])

    result = batches.undo(ANA, opened.batch_id)

    assert sorted(o.card.order_id for o in result.having("undone")) == sorted(c.order_id for c in cards[1:])
    assert len(batch_audit(opened.batch_id, "stage_undone")) == 5
    for card in cards[1:]:
        assert stage_row(card.order_id).status == "in_review"  # as before the decision: claimed by Ana


def test_undo_of_one_card_leaves_the_rest_of_the_batch_decided(app):
    cards = waiting(6)
    opened = batches.open_batch(ANA, "preBria", size=6)
    batches.decide(ANA, opened.batch_id, approve_all(cards))
    result = batches.undo(ANA, opened.batch_id, only=cards[2])
    assert [o.card for o in result.having("undone")] == [cards[2]]
    assert [stage_row(c.order_id).status for c in cards] == ["approved"] * 2 + ["in_review"] + ["approved"] * 3


def test_undo_of_a_batch_reports_a_card_someone_reopened_and_undoes_the_others(app):
    from tests.flow_helpers import ADMIN

    cards = waiting(6)
    opened = batches.open_batch(ANA, "preBria", size=6)
    batches.decide(ANA, opened.batch_id, approve_all(cards))
    review.reopen(ADMIN, cards[0].order_id, "preBria")
    result = batches.undo(ANA, opened.batch_id)
    [refused] = result.refused
    assert refused.card == cards[0] and refused.status == 409
    assert len(result.having("undone")) == 5


def test_audit_context_goes_into_details_without_overriding_the_actions_own(app):
    [card] = waiting(1)
    review.approve(ANA, card.order_id, "preBria", context={"batch": "b-1", "status_after": "forged"})
    db.session.expire_all()
    row = db.session.scalar(select(AuditLog).where(AuditLog.order_id == card.order_id,
                                                   AuditLog.action == "stage_approved"))
    assert row.details["batch"] == "b-1" and row.details["status_after"] == "approved"


def test_a_single_decision_carries_no_batch(app):
    [card] = waiting(1)
    review.approve(ANA, card.order_id, "preBria")
    db.session.expire_all()
    row = db.session.scalar(select(AuditLog).where(AuditLog.order_id == card.order_id,
                                                   AuditLog.action == "stage_approved"))
    assert "batch" not in row.details


@pytest.mark.parametrize("raw, size", [(None, 12), ("", 12), ("3", 6), ("18", 18), ("99", 24)])
def test_batch_size_is_kept_between_six_and_twenty_four(raw, size):
    assert batches.parse_size(raw) == size


def test_throughput_counts_the_reviewers_decisions_since_the_start(app):
    cards = waiting(6)
    since = db.session.scalar(select(func.now())) - timedelta(hours=2)
    opened = batches.open_batch(ANA, "preBria", size=6)
    batches.decide(ANA, opened.batch_id, approve_all(cards))
    found = batches.throughput(ANA.email, since)
    assert found.decisions == 6 and found.per_hour == pytest.approx(3.0, rel=0.05)
