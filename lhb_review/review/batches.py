"""Batch review: a grid of waiting stages of one kind, claimed together and judged together, each card its own
decision through the state machine (its own lock, rule checks, approvals row, audit row and outbox event).

Every audit row a batch causes carries ``details.batch`` (the batch id), passed to the machine's entry points
as ``context``. That is also how a batch knows what it already decided: submitting the same batch twice
decides nothing twice, and undoing a batch undoes what it decided.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select, tuple_
from sqlalchemy.sql.elements import ColumnElement

from lhb_review.core.actors import Actor
from lhb_review.core.clock import db_now
from lhb_review.core.errors import DomainError, Invalid
from lhb_review.extensions import db
from lhb_review.models import AuditLog, Order, ReviewStage
from lhb_review.review import claims, machine, next_stage, sla

BATCH_STAGES = ("preBria", "postBria")
DEFAULT_SIZE, MIN_SIZE, MAX_SIZE = 12, 6, 24
DECISIONS = ("stage_approved", "stage_rejected")
APPROVE, REJECT, FLAG = "approve", "reject", "flag"
CHOICES = (APPROVE, REJECT, FLAG)
ALREADY = "already decided in this batch"


@dataclass(frozen=True)
class Card:
    order_id: str
    stage: str


@dataclass(frozen=True)
class Choice:
    """What the reviewer chose for one card: approve, reject (with notes and reasons) or flag (leave it)."""

    card: Card
    choice: str
    notes: str | None = None
    reasons: tuple[str, ...] = ()
    fingerprint: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What happened to one card: ``result`` is approved, rejected, undone, flagged, already or refused."""

    card: Card
    result: str
    message: str = ""
    code: str = ""
    status: int = 200

    @property
    def decided(self) -> bool:
        return self.result in ("approved", "rejected")


@dataclass
class Opened:
    batch_id: str
    stage: str
    cards: list[Card]
    skipped: list[tuple[Card, str]] = field(default_factory=list)  # someone else had it meanwhile, and why


@dataclass
class Result:
    batch_id: str
    outcomes: list[Outcome]

    def having(self, *results: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.result in results]

    @property
    def decided(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.decided]

    @property
    def refused(self) -> list[Outcome]:
        return self.having("refused")


def new_batch_id() -> str:
    return str(uuid.uuid4())


def parse_batch_id(value: str) -> str:
    """The batch id as stored (a UUID's canonical form); Invalid for anything else."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise Invalid("That is not a batch id.", {"batch": "A batch id is a UUID."}) from None


def parse_size(raw: str | None) -> int:
    """How many cards a batch shows: DEFAULT_SIZE unless asked, kept within MIN_SIZE..MAX_SIZE."""
    if raw is None or str(raw).strip() == "":
        return DEFAULT_SIZE
    try:
        wanted = int(raw)
    except ValueError:
        raise Invalid(f"A batch size is a number from {MIN_SIZE} to {MAX_SIZE}.", {"size": "Give a number."}) from None
    return min(max(wanted, MIN_SIZE), MAX_SIZE)


def parse_batch_stage(stage: str | None) -> str:
    if stage not in BATCH_STAGES:
        raise Invalid(f"Batches are for {' and '.join(BATCH_STAGES)}: choose one of them.",
                      {"stage": "Choose preBria or postBria."})
    return stage


def _context(batch_id: str) -> dict[str, str]:
    return {"batch": batch_id}


# --- opening a batch -----------------------------------------------------------------------------------

def candidates(email: str, stage: str, *, filters: Iterable[ColumnElement[bool]] = (), sort: str = sla.DEFAULT_SORT,
               exclude: Iterable[Card] = (), limit: int) -> list[Card]:
    """Stages of kind ``stage`` that ``email`` can act on now, in the queue's order and filter."""
    columns = sla.sort_columns(sla.parse_sort(sort))
    stmt = (select(ReviewStage.order_id, ReviewStage.stage_name)
            .join(Order, Order.order_id == ReviewStage.order_id)
            .where(ReviewStage.stage_name == stage, *next_stage.actionable(email, db_now()), *filters)
            .order_by(*columns).limit(limit))
    skip = [(c.order_id, c.stage) for c in exclude]
    if skip:
        stmt = stmt.where(tuple_(ReviewStage.order_id, ReviewStage.stage_name).not_in(skip))
    return [Card(o, s) for o, s in db.session.execute(stmt).all()]


def open_batch(actor: Actor, stage: str, *, size: int = DEFAULT_SIZE, filters: Iterable[ColumnElement[bool]] = (),
               sort: str = sla.DEFAULT_SORT, exclude: Iterable[Card] = ()) -> Opened:
    """Claim up to ``size`` waiting stages of kind ``stage`` for ``actor``, each through ``review.claim`` (its own
    transaction, audited ``stage_claimed`` with ``details.batch``; one's own live claim is renewed). A stage that
    someone else claimed or decided in the meantime is skipped and replaced by the next one.

    Raises Invalid (stage)."""
    stage = parse_batch_stage(stage)
    filters = list(filters)
    opened = Opened(new_batch_id(), stage, [])
    tried = list(exclude)
    while len(opened.cards) < size:
        found = candidates(actor.email, stage, filters=filters, sort=sort, exclude=tried, limit=size - len(opened.cards))
        if not found:
            break
        for card in found:
            tried.append(card)
            try:
                machine.claim(actor, card.order_id, card.stage, context=_context(opened.batch_id))
            except DomainError as exc:
                opened.skipped.append((card, exc.message))
                continue
            opened.cards.append(card)
    return opened


def keep(actor: Actor, batch_id: str, cards: Iterable[Card]) -> list[Card]:
    """Coming back to a batch: claim again (or renew) each card still waiting, for a reviewer who stepped into a
    stage page and back. Returns the cards now held by ``actor``; the others are left as they are."""
    held = []
    for card in cards:
        try:
            machine.claim(actor, card.order_id, card.stage, context=_context(batch_id))
        except DomainError:
            continue
        held.append(card)
    return held


def release(actor: Actor, batch_id: str, cards: Iterable[Card]) -> list[Card]:
    """Give back every card of the batch that ``actor`` still holds a live claim on, each through
    ``review.release`` (audited ``stage_released`` with ``details.batch``). Returns the cards released."""
    cards = list(cards)
    live = claims.live_claims([(c.order_id, c.stage) for c in cards])
    released = []
    for card in cards:
        claim = live.get((card.order_id, card.stage))
        if claim is None or not claim.held_by(actor.email):
            continue
        try:
            machine.release(actor, card.order_id, card.stage, context=_context(batch_id))
        except DomainError:
            continue  # decided or taken over in between: nothing of ours to give back
        released.append(card)
    return released


# --- deciding a batch ----------------------------------------------------------------------------------

def decided_in(batch_id: str, cards: Iterable[Card]) -> dict[Card, str]:
    """Cards that this batch has already decided, with the audit action (stage_approved or stage_rejected)."""
    cards = list(cards)
    if not cards:
        return {}
    rows = db.session.execute(
        select(AuditLog.order_id, AuditLog.stage, AuditLog.action)
        .where(AuditLog.order_id.in_({c.order_id for c in cards}), AuditLog.action.in_(DECISIONS),
               AuditLog.details["batch"].astext == batch_id)
    ).all()
    wanted = set(cards)
    return {Card(o, s): a for o, s, a in rows if Card(o, s) in wanted}


def decide(actor: Actor, batch_id: str, choices: Iterable[Choice]) -> Result:
    """Decide every card of a batch, each on its own through ``review.approve`` or ``review.reject`` (one
    transaction, lock, rule check, approvals row, audit row with ``details.batch`` and outbox event each). A
    card that fails its rules (someone else decided or took it, notes missing, ...) is reported with its error
    and the others still go through. A card this batch already decided answers ALREADY and writes nothing, so
    submitting the same batch twice decides nothing twice. Flagged cards are released for a closer look."""
    choices = list(choices)
    earlier = decided_in(batch_id, [c.card for c in choices])
    outcomes, flagged = [], []
    for choice in choices:
        card = choice.card
        if card in earlier:
            outcomes.append(Outcome(card, "already", ALREADY, "already_in_batch"))
            continue
        if choice.choice == FLAG:
            flagged.append(card)
            outcomes.append(Outcome(card, "flagged", "Flagged: left for a closer look on its own page."))
            continue
        try:
            if choice.choice == REJECT:
                machine.reject(actor, card.order_id, card.stage, choice.notes, list(choice.reasons),
                               fingerprint=choice.fingerprint, context=_context(batch_id))
                outcomes.append(Outcome(card, "rejected", "Rejected."))
            else:
                machine.approve(actor, card.order_id, card.stage, choice.notes,
                                fingerprint=choice.fingerprint, context=_context(batch_id))
                outcomes.append(Outcome(card, "approved", "Approved."))
        except DomainError as exc:
            if card in decided_in(batch_id, [card]):  # the same batch, submitted twice at once
                outcomes.append(Outcome(card, "already", ALREADY, "already_in_batch"))
            else:
                outcomes.append(Outcome(card, "refused", exc.message, exc.code, exc.status))
    release(actor, batch_id, flagged)
    return Result(batch_id, outcomes)


def undo(actor: Actor, batch_id: str, only: Card | None = None) -> Result:
    """Undo what this batch decided (or only the card ``only``), each card through ``review.undo`` (its own
    transaction, audited ``stage_undone`` with ``details.batch``), within the undo window. A card whose undo is
    refused (window closed, changed since) is reported with the reason; the others are undone."""
    rows = db.session.execute(
        select(AuditLog.order_id, AuditLog.stage).where(AuditLog.action.in_(DECISIONS),
                                                        AuditLog.details["batch"].astext == batch_id)
        .order_by(AuditLog.created_at, AuditLog.id)
    ).all()
    cards = list(dict.fromkeys(Card(o, s) for o, s in rows))
    if only is not None:
        cards = [c for c in cards if c == only]
    outcomes = []
    for card in cards:
        try:
            machine.undo(actor, card.order_id, card.stage, context=_context(batch_id))
        except DomainError as exc:
            outcomes.append(Outcome(card, "refused", exc.message, exc.code, exc.status))
            continue
        outcomes.append(Outcome(card, "undone", "Undone: back where it was."))
    return Result(batch_id, outcomes)


# --- what the batch page shows -------------------------------------------------------------------------

@dataclass(frozen=True)
class Throughput:
    decisions: int
    since: datetime
    per_hour: float | None


def throughput(email: str, since: datetime) -> Throughput:
    """The reviewer's decisions (single and batch) since ``since``, and how many that makes an hour."""
    now = db_now()
    count = db.session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.reviewer_email == email, AuditLog.action.in_(DECISIONS), AuditLog.created_at >= since)) or 0
    hours = (now - since).total_seconds() / 3600
    return Throughput(count, since, round(count / hours, 1) if hours > 1 / 60 else None)
