"""The review state machine: the one door every change to an order's stages goes through.

``ALLOWED`` says, for each state a stage can be in, which actions are offered and to whom. ``perform``
locks the order's stages, checks that the action is offered to the actor now, runs it, and hands what it
changed to ``transition_to``, which writes the stage, its approvals row, the history, the audit row and
the outbox event, and, when a stage stops being approved, returns every later approved or in-review stage
to pending with its approval voided (the stage order holds on every path). All of it commits together or
not at all; a broken rule raises a domain error before anything is written. The database checks the
same stage order at commit (migration 0010_stage_order).

Every write is a Core statement run where the machine makes it, most with ``RETURNING``, never the ORM's
unit of work: the stage rows are read into plain ``StageRow`` values under the lock, ``write_stage`` changes
one with an ``UPDATE ... RETURNING`` (nothing when nothing differs), and what an action returns is what the
database wrote, so a page can show the result without reading it back.
"""
from __future__ import annotations

import copy
import logging
import uuid
from pathlib import Path
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Callable

from flask import current_app
from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql import ClauseElement

from lhb_review.core import audit
from lhb_review.core.actors import Actor
from lhb_review.core.clock import db_now
from lhb_review.core.errors import AlreadyDecided, Conflict, DomainError, Forbidden, Invalid, NotFound, StageOutOfOrder
from lhb_review.core.stages import DECIDED, STAGE_ORDER, Stage, StageStatus, parse_stage
from lhb_review.core.storage import InvalidKey, Storage, StorageError, get_storage
from lhb_review.core.tx import transaction
from lhb_review.extensions import db
from lhb_review.models import Approval, ApprovalFingerprint, Order, ReviewStage, StageClaim, StageDecision
from lhb_review.review import claims, fingerprints, history, outbox, undoing
from lhb_review.review.approvals import upsert_approval
from lhb_review.review.checks import enqueue_checks, require_override
from lhb_review.review.claims import ClaimView, NotClaimed
from lhb_review.review.submissions import Submission, same_assets, validate_assets
from lhb_review.review.uploads import REPLACED, Replacement, StorageUnavailable, check_upload, new_key

log = logging.getLogger(__name__)

MAX_NOTES = 5000
NEW = "new"  # the state of a stage the pipeline has not submitted yet (no review_stages row)
PENDING, IN_REVIEW, APPROVED, REJECTED = (s.value for s in StageStatus)


class Action(StrEnum):
    SUBMIT = "submit"      # the pipeline hands in a stage's assets (again)
    CLAIM = "claim"        # a reviewer starts looking at a stage
    RENEW = "renew"        # the page's heartbeat keeps the claim alive
    TAKEOVER = "takeover"  # a reviewer takes someone's live claim
    RELEASE = "release"    # the holder gives the stage back
    EXPIRE = "expire"      # a lapsed claim is tidied away
    APPROVE = "approve"
    REJECT = "reject"
    REOPEN = "reopen"      # an admin returns a decided stage to pending
    UNDO = "undo"          # the decider takes their decision back within the undo window
    REPLACE = "replace"    # a reviewer replaces one asset with an uploaded file
    IMPORT = "import"      # an approval from the old file-based store


class Who(StrEnum):
    ANYONE = "anyone"        # whoever reaches the service: the views and the API decide who that is
    UNCLAIMED = "unclaimed"  # anyone, unless someone else holds a live claim on the stage
    HOLDER = "holder"        # the reviewer whose claim (live or lapsed) it is
    DECIDER = "decider"      # the reviewer who made the decision in force, within the undo window
    ADMIN = "admin"
    SYSTEM = "system"        # lhb-review itself (the claim sweep, the importer)


A, W = Action, Who
# Which action is offered in which state, and to whom. Pending and in review offer the same: a pending
# stage may still carry a lapsed claim, and an in-review one may have lost its holder.
ALLOWED: dict[str, dict[Action, Who]] = {
    NEW:       {A.SUBMIT: W.ANYONE, A.IMPORT: W.SYSTEM},
    PENDING:   {A.SUBMIT: W.ANYONE, A.CLAIM: W.UNCLAIMED, A.RENEW: W.UNCLAIMED, A.TAKEOVER: W.ANYONE,
                A.RELEASE: W.HOLDER, A.EXPIRE: W.SYSTEM, A.APPROVE: W.UNCLAIMED, A.REJECT: W.UNCLAIMED,
                A.REPLACE: W.UNCLAIMED, A.IMPORT: W.SYSTEM},
    IN_REVIEW: {A.SUBMIT: W.ANYONE, A.CLAIM: W.UNCLAIMED, A.RENEW: W.UNCLAIMED, A.TAKEOVER: W.ANYONE,
                A.RELEASE: W.HOLDER, A.EXPIRE: W.SYSTEM, A.APPROVE: W.UNCLAIMED, A.REJECT: W.UNCLAIMED,
                A.REPLACE: W.UNCLAIMED, A.IMPORT: W.SYSTEM},
    APPROVED:  {A.SUBMIT: W.ANYONE, A.UNDO: W.DECIDER, A.REOPEN: W.ADMIN, A.REPLACE: W.UNCLAIMED,
                A.IMPORT: W.SYSTEM},
    REJECTED:  {A.SUBMIT: W.ANYONE, A.UNDO: W.DECIDER, A.REOPEN: W.ADMIN, A.REPLACE: W.UNCLAIMED,
                A.IMPORT: W.SYSTEM},
}
# Actions that need the order row locked too (they rewrite orders.r2_assets); the order row is always
# locked before the stage rows, so two actions on one order never wait on each other in a circle.
LOCKS_ORDER = {A.SUBMIT, A.REPLACE}
CLAIM_ACTIONS = {A.CLAIM, A.RENEW, A.TAKEOVER, A.RELEASE}
# Audit actions whose details always carry the statuses, even when unchanged (the sweep of an orphan claim).
ALWAYS_STATUSES = {"claim_lapsed", "stage_submitted"}


def offered(state: str, action: Action) -> Who | None:
    """Who may take ``action`` on a stage in ``state`` (None: it is not offered there)."""
    return ALLOWED.get(state, {}).get(action)


# --- what perform works on -----------------------------------------------------------------------------

STAGES = ReviewStage.__table__
CLAIMS = StageClaim.__table__
DECISIONS = StageDecision.__table__


@dataclass
class StageRow:
    """One review_stages row as the machine read or last wrote it (plain values, not an ORM object)."""

    id: uuid.UUID
    order_id: str
    stage_name: str
    status: str
    reviewed_at: datetime | None
    reviewer_email: str | None
    reviewer_notes: str | None
    created_at: datetime | None
    updated_at: datetime | None

    def take(self, found) -> "StageRow":
        for key, value in found._mapping.items():
            setattr(self, key, value)
        return self


def write_stage(row: StageRow, **values) -> StageRow:
    """``UPDATE review_stages ... RETURNING``: the columns in ``values`` that differ from ``row`` (a SQL
    expression such as now() always counts), and ``row`` takes what was written. Nothing differs: no
    statement (a stage's updated_at only moves when the stage does)."""
    changed = {k: v for k, v in values.items() if isinstance(v, ClauseElement) or getattr(row, k) != v}
    if changed:
        row.take(db.session.execute(update(STAGES).where(STAGES.c.id == row.id).values(**changed)
                                    .returning(*STAGES.c)).one())
    return row


def _claim_row(order_id: str, stage: str):
    """The stage's claim (live or lapsed) as it is now, or None."""
    return db.session.execute(select(CLAIMS).where(CLAIMS.c.order_id == order_id, CLAIMS.c.stage == stage)).first()

@dataclass
class Locked:
    """The order's stage rows, locked FOR UPDATE and re-read, and what the action reads under the lock."""

    order_id: str
    stage: Stage
    rows: dict[str, StageRow]
    order: Order | None = None
    _now: datetime | None = None
    _seen: history.Seen | None = None
    _claim: Any = None
    _claim_read: bool = False

    @property
    def row(self) -> StageRow | None:
        return self.rows.get(self.stage.value)

    @property
    def state(self) -> str:
        return self.row.status if self.row is not None else NEW

    @property
    def now(self) -> datetime:
        if self._now is None:
            self._now = self._seen.now if self._seen is not None else db_now()
        return self._now

    @property
    def claim(self):
        """The stage's claim row (live or lapsed), read once."""
        if not self._claim_read:
            self._claim, self._claim_read = _claim_row(self.order_id, self.stage.value), True
        return self._claim

    def seen(self, actor: Actor, expected_fingerprint: str | None = None) -> history.Seen:
        """What a decision checks and replaces, read once under the lock (history.before_decision)."""
        if self._seen is None:
            self._seen = history.before_decision(actor, self.row, expected_fingerprint=expected_fingerprint)
        return self._seen

    def later(self) -> list[StageRow]:
        return [self.rows[s.value] for s in STAGE_ORDER[self.stage.position + 1:] if s.value in self.rows]

    def waiting_before(self) -> list[str]:
        """Earlier stages that are not approved (missing ones included)."""
        return [s.value for s in self.stage.earlier
                if s.value not in self.rows or self.rows[s.value].status != APPROVED]


@dataclass
class Change:
    """What an action did to its stage, for transition_to to record."""

    audit: str | None                     # the audit action, None for an unaudited change (a heartbeat)
    details: dict[str, Any] = field(default_factory=dict)
    event: str | None = None              # the outbox event, if the pipeline hears of it
    payload: dict[str, Any] | None = None
    known: outbox.Known | None = None
    cause: str | None = None              # why later stages lose their approval when this one leaves approved
    result: Any = None                    # what the entry point returns
    statuses: bool = True                 # whether the audit details carry status_before and status_after


def _lock(order_id: str, stage: Stage, action: Action, *, missing_order: str | None = None) -> Locked:
    order = None
    if action in LOCKS_ORDER:
        order = db.session.scalars(select(Order).where(Order.order_id == order_id).with_for_update()
                                   .execution_options(populate_existing=True)).one_or_none()
        if order is None:
            raise NotFound(missing_order or f"There is no order {order_id}.", order_id=order_id)
    rows = db.session.execute(
        select(STAGES).where(STAGES.c.order_id == order_id).order_by(STAGES.c.stage_name).with_for_update()
    ).all()
    return Locked(order_id, stage, {r.stage_name: StageRow(*r) for r in rows}, order)


def _refusal(ctx: Locked, action: Action) -> DomainError:
    """The error for an action that the stage's state does not offer."""
    row = ctx.row
    if row is None:
        return NotFound(f"Order {ctx.order_id} has no {ctx.stage.value} stage.", order_id=ctx.order_id,
                        stage=ctx.stage.value)
    by = row.reviewer_email or "someone else"
    if action in CLAIM_ACTIONS:
        return AlreadyDecided(f"This stage was already {row.status} by {by}: there is nothing to claim.",
                              status=row.status, reviewer=row.reviewer_email)
    if action in (A.APPROVE, A.REJECT):
        return AlreadyDecided(f"This stage was already {row.status} by {by}.", status=row.status,
                              reviewer=row.reviewer_email)
    if action == A.REOPEN:
        return Conflict(f"This stage is {row.status}, not decided: there is nothing to reopen.", status=row.status)
    if action == A.UNDO:
        return undoing.NothingToUndo("There is no decision on this stage to undo.", status=row.status)
    return Conflict(f"This stage is {row.status}: it cannot be {action.value}ed now.", status=row.status)


def _check_role(actor: Actor, who: Who | None, action: Action) -> None:
    """The checks that need no data: who the actor is."""
    if who == W.ADMIN and not actor.is_admin:
        raise Forbidden(f"Only an admin can {action.value} a decided stage.")
    if who == W.SYSTEM and actor.kind != "system":
        raise Forbidden(f"Only lhb-review itself can {action.value} a stage.")


def _check_holder(ctx: Locked, actor: Actor, who: Who, action: Action) -> None:
    """The checks that need the locked rows: claims and the decision in force."""
    if who == W.UNCLAIMED:
        if action in (A.APPROVE, A.REJECT):
            return  # history.before_decision checks the claim with everything else, in one statement
        claim = ctx.claim
        if claim is not None:
            claims.refuse_claim_of_other(actor, claim.claimed_by, claim.expires_at, ctx.now)
    elif who == W.HOLDER:
        claim = ctx.claim
        if claim is None:
            raise NotClaimed("Nobody holds a claim on this stage: there is nothing to release.")
        if claim.claimed_by != actor.email:
            claims.refuse_claim_of_other(actor, claim.claimed_by, claim.expires_at, ctx.now)
            raise NotClaimed(f"The lapsed claim belongs to {claim.claimed_by}, not to you.")


def perform(actor: Actor, order_id: str, stage: str, action: Action, *, context: dict[str, Any] | None = None,
            **args) -> Any:
    """Take ``action`` on one stage of one order for ``actor``: lock the order's stages, check the action
    is offered in the stage's state and to this actor, apply it and record the transition, in one
    transaction. ``context`` (what the caller acts within, e.g. ``{"batch": id}``) goes into the audit row's
    details. Returns what the action's entry point promises; raises a DomainError (nothing written)."""
    parsed = parse_stage(stage)
    handler = HANDLERS[action]
    prepared = handler.prepare(actor, **args) if handler.prepare else args
    if action == A.REOPEN:
        _check_role(actor, W.ADMIN, action)
    with transaction():
        ctx = _lock(order_id, parsed, action, missing_order=handler.missing_order(order_id))
        who = offered(ctx.state, action)
        if who is None:
            raise _refusal(ctx, action)
        _check_role(actor, who, action)
        _check_holder(ctx, actor, who, action)
        before = ctx.row.status if ctx.row is not None else None
        change = handler.apply(ctx, actor, **prepared)
        transition_to(ctx, actor, change, before=before, context=context)
    return change.result


def transition_to(ctx: Locked, actor: Actor, change: Change, *, before: str | None,
                  context: dict[str, Any] | None = None) -> None:
    """Record what an action changed (``before``: the stage's status before it): its audit row (with the
    caller's ``context`` merged into its details; the action's own details win) and outbox event and, when
    the stage has just stopped being approved, the withdrawal of every later stage's approval (void_later)."""
    row = ctx.row
    audited = None
    if change.audit is not None:
        details = dict(change.details)
        after = row.status if row else None
        # A change that leaves the status as it was (a claim taken over, a lapsed claim renewed) says so by
        # naming no status change: the history never shows "In review → In review".
        if change.statuses and (before != after or change.audit in ALWAYS_STATUSES):
            details = {"status_before": before, "status_after": after, **details}
        details = {**(context or {}), **details}  # the caller's context never overrides the action's own facts
        audited = audit.statement(actor, change.audit, order_id=ctx.order_id, stage=ctx.stage.value, details=details)
    if change.event is not None:  # the audit row travels with the deliveries, in one statement
        outbox.enqueue(ctx.order_id, ctx.stage.value, change.event, change.payload, known=change.known, along=audited)
    elif audited is not None:
        db.session.execute(audited)
    if change.cause is not None:
        void_later(ctx, actor, change.cause)


# --- the pieces every action shares --------------------------------------------------------------------

def clean_notes(notes: str | None, *, required: bool) -> str | None:
    """Notes as stored: stripped, None when empty. Raises Invalid when required and missing, or unstorable."""
    text = (notes or "").strip()
    if "\x00" in text:
        raise Invalid("Notes cannot contain NUL characters.", {"notes": "Remove the NUL characters."})
    if len(text) > MAX_NOTES:
        raise Invalid(f"Notes are limited to {MAX_NOTES} characters.", {"notes": f"At most {MAX_NOTES} characters."})
    if required and not text:
        raise Invalid("Say what is wrong: notes are required to reject.", {"notes": "Notes are required to reject."})
    return text or None


def reset_to_pending(row: StageRow, notes: str | None = None) -> None:
    """The one way a stage goes back to waiting: status pending, the decision's fields cleared."""
    write_stage(row, status=PENDING, reviewed_at=None, reviewer_email=None, reviewer_notes=notes)


def _previous_decision(row: StageRow) -> dict[str, Any]:
    return {"reviewer": row.reviewer_email, "reviewed_at": outbox.isoformat(row.reviewed_at),
            "notes": row.reviewer_notes}


def forget_approval(order_id: str, stage: str, *, reason: str) -> None:
    """An approval is voided: its fingerprint goes and its decision is marked voided (kept in the history)."""
    db.session.execute(delete(ApprovalFingerprint.__table__).where(ApprovalFingerprint.order_id == order_id,
                                                         ApprovalFingerprint.stage == stage))
    db.session.execute(
        update(DECISIONS)
        .where(DECISIONS.c.order_id == order_id, DECISIONS.c.stage == stage,
               DECISIONS.c.outcome == APPROVED, DECISIONS.c.undone_at.is_(None),
               DECISIONS.c.voided_at.is_(None))
        .values(voided_at=func.now(), void_reason=reason[:100])
    )


def _claim_of(order_id: str, stage: str):
    return delete(CLAIMS).where(CLAIMS.c.order_id == order_id, CLAIMS.c.stage == stage)


def drop_claim(order_id: str, stage: str) -> None:
    db.session.execute(_claim_of(order_id, stage))


def void_approval(ctx: Locked, actor: Actor, *, reason: str, old_assets: list, new_assets: list) -> None:
    """The stage's assets changed under its approval: back to pending, approvals row pending, fingerprint
    dropped and decision voided; audited ``approval_voided`` (old and new assets and fingerprints, which keys
    changed) with an outbox event. Later stages follow through the change's cause."""
    row = ctx.row
    recorded = fingerprints.approved_fingerprint(row.order_id, ctx.stage)
    covered = recorded.assets if recorded is not None else fingerprints.asset_identity(old_assets)
    change = {
        "old_fingerprint": recorded.fingerprint if recorded is not None else fingerprints.fingerprint(old_assets),
        "new_fingerprint": fingerprints.fingerprint(new_assets),
        "changed": fingerprints.diff(covered, new_assets),
    }
    forget_approval(row.order_id, row.stage_name, reason=reason)
    before, previous = row.status, _previous_decision(row)
    reset_to_pending(row)
    upsert_approval(row.order_id, ctx.stage, status=PENDING, reviewer=actor.email, notes=f"Approval voided: {reason}")
    audit.record(actor, "approval_voided", order_id=row.order_id, stage=row.stage_name, details={
        "status_before": before, "status_after": row.status, "reason": reason, "previous_decision": previous,
        "assets_before": old_assets, "assets_after": new_assets, **change})
    outbox.enqueue(row.order_id, row.stage_name, "approval_voided", {"reason": reason, "previous_decision": previous})


def void_later(ctx: Locked, actor: Actor, cause: str) -> list[str]:
    """The stage order on every path: ``ctx.stage`` is no longer approved, so each later stage that was
    approved or in review returns to pending in this transaction: its approval voided (approvals row pending,
    fingerprint dropped, decision marked voided), its claim ended; audited ``stage_voided`` with the cause,
    and announced to the order's webhooks. A rejected later stage stays rejected. Returns the stages voided."""
    voided = []
    for row in ctx.later():
        if row.status not in (APPROVED, IN_REVIEW):
            continue
        before, previous = row.status, _previous_decision(row)
        reason = f"{cause}: an earlier stage is no longer approved."
        if before == APPROVED:
            forget_approval(row.order_id, row.stage_name, reason=reason)
            upsert_approval(row.order_id, Stage(row.stage_name), status=PENDING, reviewer=actor.email,
                            notes=f"Approval withdrawn: {reason}")
        drop_claim(row.order_id, row.stage_name)
        reset_to_pending(row)
        details = {"cause": cause, "cause_stage": ctx.stage.value, "status_before": before,
                   "status_after": row.status, "previous_decision": previous}
        audit.record(actor, "stage_voided", order_id=row.order_id, stage=row.stage_name, details=details)
        outbox.enqueue(row.order_id, row.stage_name, "stage_voided",
                       {"cause": cause, "cause_stage": ctx.stage.value, "status_before": before,
                        "previous_decision": previous})
        voided.append(row.stage_name)
    return voided


def _known(seen: history.Seen, actor: Actor, approval: str, status: str, notes: str | None,
           reasons: list[str]) -> outbox.Known:
    """The stage after a decision as outbox.stage_snapshot would read it back, from what the decision wrote."""
    return outbox.Known(seen.webhooks, seen.now, {
        "status": approval, "review_status": status, "reviewer": actor.email, "notes": notes,
        "reviewed_at": outbox.isoformat(seen.now), "reasons": list(reasons),
    }, checks=seen.checks)


@dataclass(frozen=True)
class Decided:
    """What an approve or a reject wrote, as the database returned it: the stage row after the decision and the
    decision's history entry. Enough to show the decided stage without reading anything back."""

    stage: StageRow
    decision_id: uuid.UUID
    outcome: str
    reasons: list[str]
    decided_at: datetime

    @property
    def status(self) -> str:
        return self.stage.status


def _record_decision(ctx: Locked, actor: Actor, seen: history.Seen, *, status: str, notes: str | None,
                     reasons: list[str] | None = None, reason_assets: list[str] | None = None) -> dict[str, Any]:
    """The decided stage's approvals row (``status``), its history entry and the end of its claim, in one
    statement: the approvals upsert with the history INSERT and the claim's DELETE as CTEs. Returns the
    decision as written."""
    row = ctx.row
    decision = {
        "id": uuid.uuid4(), "order_id": row.order_id, "stage": row.stage_name, "outcome": row.status,
        "reviewer_email": actor.email, "notes": notes, "reasons": reasons or [], "reason_assets": reason_assets or [],
        "fingerprint": seen.fingerprint, "assets": fingerprints.asset_identity(seen.assets),
        "previous": seen.previous, "decided_at": seen.now,
    }
    along = [insert(DECISIONS).values(**decision).cte("decision")]
    if seen.claimed:  # the stage row is locked: no claim can have appeared since before_decision looked
        along.append(_claim_of(row.order_id, row.stage_name).cte("ended_claim"))
    upsert_approval(ctx.order_id, ctx.stage, status=status, reviewer=actor.email, notes=notes,
                    assets=seen.assets if status == APPROVED else None, along=along)
    return decision


def _decide(ctx: Locked, status: str, actor: Actor, notes: str | None) -> StageRow:
    return write_stage(ctx.row, status=status, reviewed_at=func.now(), reviewer_email=actor.email,
                       reviewer_notes=notes)


def _decided(row: StageRow, decision: dict[str, Any]) -> Decided:
    return Decided(row, decision["id"], decision["outcome"], list(decision["reasons"]), decision["decided_at"])


# --- the actions ---------------------------------------------------------------------------------------

def _approve(ctx: Locked, actor: Actor, *, notes: str | None, fingerprint: str | None) -> Change:
    seen = ctx.seen(actor, fingerprint)
    waiting = ctx.waiting_before()
    if waiting:
        raise StageOutOfOrder(f"{ctx.stage.value} cannot be approved before {', '.join(waiting)} is approved.",
                              waiting_for=waiting)
    overridden = require_override(ctx.order_id, ctx.stage.value, notes, run=seen.checks)  # failing checks need notes
    # The stage row goes first, so the approvals trigger sees lhb-review's own decision and leaves it be.
    row = _decide(ctx, APPROVED, actor, notes)
    decision = _record_decision(ctx, actor, seen, status=APPROVED, notes=notes)
    details = {"notes": notes, **history.audit_details(decision),
               **({"overridden_checks": overridden} if overridden else {})}
    return Change("stage_approved", details, event="stage_approved",
                  payload={"status_before": seen.previous["stage"]["status"]},
                  known=_known(seen, actor, APPROVED, APPROVED, notes, []), result=_decided(row, decision))


def _reject(ctx: Locked, actor: Actor, *, notes: str | None, reasons, asset_keys, fingerprint: str | None) -> Change:
    seen = ctx.seen(actor, fingerprint)
    reasons, asset_keys = history.clean_reasons(reasons, asset_keys, seen.assets)
    before = ctx.row.status
    row = _decide(ctx, REJECTED, actor, notes)
    decision = _record_decision(ctx, actor, seen, status=PENDING, notes=notes, reasons=reasons,
                                reason_assets=asset_keys)
    return Change("stage_rejected", {"notes": notes, **history.audit_details(decision)}, event="stage_rejected",
                  payload={"status_before": before, "reasons": reasons, "reason_assets": asset_keys},
                  known=_known(seen, actor, PENDING, REJECTED, notes, reasons), result=_decided(row, decision))


def _reopen(ctx: Locked, actor: Actor, *, notes: str | None) -> Change:
    row, before = ctx.row, ctx.row.status
    reset_to_pending(row, notes)
    upsert_approval(ctx.order_id, ctx.stage, status=PENDING, reviewer=actor.email, notes=notes)
    return Change("stage_reopened", {"notes": notes}, event="stage_reopened", payload={"status_before": before},
                  cause=f"{ctx.stage.value} reopened" if before == APPROVED else None, result=row)


def _undo(ctx: Locked, actor: Actor) -> Change:
    row = ctx.row
    decision = history.latest_decision(ctx.order_id, ctx.stage.value)
    if decision is None or not undoing.still_in_force(decision, row):
        raise undoing.NothingToUndo("There is no decision on this stage to undo.", status=row.status)
    if decision.reviewer_email != actor.email:
        raise Forbidden(f"Only {decision.reviewer_email}, who decided, can undo this. An admin can reopen the stage.")
    closed = decision.decided_at + undoing.window()
    if ctx.now >= closed:
        raise undoing.UndoWindowClosed(
            f"The undo window closed at {closed:%H:%M:%S} UTC. An admin can reopen the stage.",
            closed_at=closed.isoformat())
    before = row.status
    _restore(actor, row, decision.previous or {}, ctx.now)
    db.session.execute(update(DECISIONS).where(DECISIONS.c.id == decision.id)
                       .values(undone_at=ctx.now, undone_by=actor.email))
    undone = f"stage_{decision.outcome}"
    return Change("stage_undone", {"undone_action": undone, "decision_id": str(decision.id),
                                   "decided_at": decision.decided_at.isoformat()},
                  event="stage_undone", payload={"status_before": before, "undone_action": undone},
                  cause=f"{ctx.stage.value} approval undone" if before == APPROVED and row.status != APPROVED
                  else None, result=row)


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _restore(actor: Actor, row: StageRow, previous: dict[str, Any], now: datetime) -> None:
    """Put the stage, its approvals row, its fingerprint and its claim back as they were before a decision."""
    stage = previous.get("stage") or {}
    write_stage(row, status=stage.get("status") or PENDING, reviewed_at=_when(stage.get("reviewed_at")),
                reviewer_email=stage.get("reviewer_email"), reviewer_notes=stage.get("reviewer_notes"))

    key = {"order_id": row.order_id, "stage": row.stage_name}
    approval = previous.get("approval")
    if approval is None:
        db.session.execute(delete(Approval.__table__).filter_by(**key))
    else:
        db.session.execute(update(Approval.__table__).filter_by(**key).values(
            status=approval["status"], approved_at=_when(approval.get("approved_at")),
            reviewer_email=approval["reviewer_email"], reviewer_notes=approval.get("reviewer_notes")))

    printed = previous.get("fingerprint")
    db.session.execute(delete(ApprovalFingerprint.__table__).filter_by(**key))
    if printed is not None:
        db.session.execute(insert(ApprovalFingerprint.__table__).values(
            fingerprint=printed["fingerprint"], assets=printed.get("assets") or [],
            recorded_at=_when(printed.get("recorded_at")), **key))

    claim = previous.get("claim")
    drop_claim(row.order_id, row.stage_name)
    if claim is not None:
        # The undoer's own claim comes back with a fresh period (they are looking at the stage again);
        # anyone else's comes back exactly as it was, lapsed or not.
        own = claim["claimed_by"] == actor.email
        db.session.execute(insert(CLAIMS).values(
            claimed_by=claim["claimed_by"], claimed_at=_when(claim["claimed_at"]),
            renewed_at=now if own else _when(claim["renewed_at"]),
            expires_at=now + claims.ttl() if own else _when(claim["expires_at"]), **key))


def _put_claim(ctx: Locked, actor: Actor, existing, audit_action: str, **extra) -> Change:
    """Start a claim of ``actor`` on the stage (replacing ``existing``): status in review, audited."""
    row, now = ctx.row, ctx.now
    values = {"claimed_by": actor.email, "claimed_at": now, "renewed_at": now, "expires_at": now + claims.ttl()}
    stmt = pg_insert(CLAIMS).values(order_id=row.order_id, stage=row.stage_name, **values)
    put = db.session.execute(stmt.on_conflict_do_update(index_elements=[CLAIMS.c.order_id, CLAIMS.c.stage],
                                                        set_=values).returning(*CLAIMS.c)).one()
    write_stage(row, status=IN_REVIEW)
    return Change(audit_action, {"expires_at": put.expires_at.isoformat(), **extra}, result=claims.view(put))


def _extend(ctx: Locked, claim) -> Change:
    """The holder's claim pushed CLAIM_TTL_SECONDS further; not audited (a heartbeat would flood the log)."""
    put = db.session.execute(
        update(CLAIMS).where(CLAIMS.c.order_id == claim.order_id, CLAIMS.c.stage == claim.stage)
        .values(renewed_at=ctx.now, expires_at=ctx.now + claims.ttl()).returning(*CLAIMS.c)).one()
    return Change(None, result=claims.view(put))


def _refuse_blocked(ctx: Locked) -> None:
    """A stage that cannot be decided yet (an earlier stage is not approved) is not claimed either: a
    claim would only keep others from a stage nobody can act on."""
    waiting = ctx.waiting_before()
    if waiting:
        raise StageOutOfOrder(f"{ctx.stage.value} cannot be reviewed before {', '.join(waiting)} is approved.",
                              waiting_for=waiting)


def _claim(ctx: Locked, actor: Actor) -> Change:
    _refuse_blocked(ctx)
    existing = ctx.claim
    if existing is not None and existing.expires_at > ctx.now:
        return _extend(ctx, existing)  # _check_holder refused anyone else's live claim
    lapsed = {"lapsed_claim_of": existing.claimed_by} if existing is not None else {}
    return _put_claim(ctx, actor, existing, "stage_claimed", **lapsed)


def _takeover(ctx: Locked, actor: Actor) -> Change:
    _refuse_blocked(ctx)
    existing = ctx.claim
    if existing is not None and existing.expires_at > ctx.now:
        if existing.claimed_by == actor.email:
            return _extend(ctx, existing)
        return _put_claim(ctx, actor, existing, "stage_claim_taken_over", previous_claimed_by=existing.claimed_by,
                          previous_expires_at=existing.expires_at.isoformat())
    lapsed = {"lapsed_claim_of": existing.claimed_by} if existing is not None else {}
    return _put_claim(ctx, actor, existing, "stage_claimed", **lapsed)


def _release(ctx: Locked, actor: Actor) -> Change:
    existing = ctx.claim
    lapsed = existing.expires_at <= ctx.now
    drop_claim(ctx.order_id, ctx.stage.value)
    write_stage(ctx.row, status=PENDING)
    return Change("stage_released", {"lapsed": lapsed}, result=ctx.row)


def _submit(ctx: Locked, actor: Actor, *, assets: list[dict[str, str]]) -> Change:
    order, row, stage = ctx.order, ctx.row, ctx.stage.value
    old_assets = order.assets_for(stage)
    if row is not None and same_assets(old_assets, assets):
        return Change(None, result=Submission(row, "unchanged"))
    order.r2_assets = {**(order.r2_assets or {}), stage: assets}
    cause = None
    if row is None:
        db.session.flush()  # the order's new assets first (the ORM writes the order row)
        row = StageRow(*db.session.execute(insert(STAGES).values(order_id=ctx.order_id, stage_name=stage,
                                                                 status=PENDING).returning(*STAGES.c)).one())
        ctx.rows[stage] = row
        result, before = "created", None
    else:
        result, before = "resubmitted", row.status
        drop_claim(ctx.order_id, stage)  # whoever looked at the old assets no longer holds the stage
        if before == APPROVED:
            void_approval(ctx, actor, reason="The pipeline submitted different assets.", old_assets=old_assets,
                          new_assets=assets)
            cause = f"{stage} changed"
        elif before != PENDING:
            reset_to_pending(row)
    db.session.flush()
    enqueue_checks(ctx.order_id, stage)  # the machine checks of the new assets, queued in this transaction
    return Change("stage_submitted", {"result": result, "assets": len(assets),
                                      "assets_before": old_assets if before else None, "assets_after": assets},
                  cause=cause, result=Submission(row, result))


def _replace(ctx: Locked, actor: Actor, *, asset_key: str, checked, data: bytes, filename: str | None,
             storage: Storage | None) -> Change:
    order, row, stage = ctx.order, ctx.row, ctx.stage.value
    assets: dict[str, Any] = copy.deepcopy(order.r2_assets) if isinstance(order.r2_assets, dict) else {}
    entries = assets.get(stage) if isinstance(assets.get(stage), list) else []
    index = next((i for i, a in enumerate(entries) if isinstance(a, dict) and a.get("key") == asset_key), None)
    if index is None:
        raise NotFound(f"The {stage} stage of {ctx.order_id} has no asset {asset_key}.")
    old = entries[index]
    old_kind = "pdf" if str(old.get("content_type", "")).endswith("pdf") else "image"
    if old_kind != checked.kind:
        wanted = "a PDF" if old_kind == "pdf" else "an image (PNG, JPEG or WebP)"
        raise Invalid(f"{old.get('label') or asset_key} is {wanted}; replace it with {wanted}.",
                      {"file": f"Upload {wanted}."})
    if old.get("sha256") == checked.sha256:
        raise Invalid("This file is the one already there: nothing to replace.", {"file": "Choose the new file."})
    try:
        stored_key = new_key(asset_key, checked)
        (storage or get_storage()).put(stored_key, data, checked.content_type)
    except InvalidKey as exc:
        raise Invalid(f"Cannot store a file under {asset_key}: {exc}") from None
    except StorageError as exc:
        log.error("Storing %s failed: %s", asset_key, exc)
        raise StorageUnavailable("The file store did not accept the file; nothing was changed. "
                                 "Try again in a moment.") from None
    entries[index] = {**old, "key": stored_key, "content_type": checked.content_type, "sha256": checked.sha256,
                      "size": checked.size, "replaces": asset_key, "replaced_at": ctx.now.isoformat(),
                      "replaced_by": actor.email}
    assets[stage] = entries
    old_entries = order.assets_for(stage)
    order.r2_assets = assets
    before = row.status
    reopened = before in DECIDED
    details = {"old_key": asset_key, "new_key": stored_key, "old_sha256": old.get("sha256"),
               "new_sha256": checked.sha256, "label": old.get("label"), "content_type": checked.content_type,
               "size": checked.size, "filename": (filename or "").replace("\x00", "").strip()[-255:] or None,
               "status_before": before, "status_after": PENDING if reopened else before}
    # The replacement is audited before the approval it voids, as the reviewer did them.
    audit.record(actor, "asset_replaced", order_id=ctx.order_id, stage=stage, details=details)
    if before == APPROVED:
        void_approval(ctx, actor, reason=REPLACED, old_assets=old_entries, new_assets=entries)
    elif before == REJECTED:
        reset_to_pending(row)
    enqueue_checks(ctx.order_id, stage, reason="replaced")
    result = Replacement(ctx.order_id, stage, asset_key, stored_key, before == APPROVED, before, row.status)
    return Change(None, cause=f"{stage} changed" if before == APPROVED else None, result=result)


def _import(ctx: Locked, actor: Actor, *, entry, plan: Callable, apply_changes: bool) -> Change:
    """An approval from the old file store, planned under the lock (``plan`` answers import, unchanged or
    newer against what the database holds). Applied, it writes the approvals row with the file's time; the
    stage follows when the stage order allows it, and otherwise stays waiting (said in the audit row)."""
    row = ctx.row
    approval = db.session.scalar(select(Approval).where(Approval.order_id == ctx.order_id,
                                                        Approval.stage == ctx.stage.value)
                                 .with_for_update().execution_options(populate_existing=True))
    action = plan(entry, approval, row)
    if action != "import" or not apply_changes:
        return Change(None, result=action)
    waiting = ctx.waiting_before() if entry.status == APPROVED else []
    follows = row is not None and entry.status == APPROVED and not waiting
    before = row.status if row is not None else None
    if follows:  # the stage first, so the approvals trigger sees lhb-review's own write
        write_stage(row, status=APPROVED, reviewed_at=entry.approved_at, reviewer_email=entry.reviewer,
                    reviewer_notes=entry.notes)
    stored = entry.status if (follows or row is None) else PENDING
    upsert_approval(ctx.order_id, ctx.stage, status=stored, reviewer=entry.reviewer, notes=entry.notes,
                    approved_at=entry.approved_at if stored == APPROVED else None, record_assets=False)
    return Change("approval_imported", {
        "source": Path(entry.source).name, "position": entry.path, "status": entry.status,
        "approved_at": entry.approved_at.isoformat() if entry.approved_at else None, "notes": entry.notes,
        "approval_before": approval.status if approval else None, "stage_status_before": before,
        **({"held_back": {"waiting_for": waiting}} if waiting and row is not None else {}),
    }, statuses=False, result=action)


@dataclass(frozen=True)
class Handler:
    apply: Callable[..., Change]
    prepare: Callable[..., dict] | None = None      # checks that need no database, before the transaction
    missing: str | None = None                      # the message when the order itself is missing

    def missing_order(self, order_id: str) -> str | None:
        return self.missing.format(order_id=order_id) if self.missing else None


def _prepare_decision(actor, *, notes=None, fingerprint=None, **rest):
    return {"notes": clean_notes(notes, required=False), "fingerprint": fingerprint, **rest}


def _prepare_reject(actor, *, notes=None, reasons=None, asset_keys=None, fingerprint=None):
    return {"notes": clean_notes(notes, required=True), "reasons": reasons, "asset_keys": asset_keys,
            "fingerprint": fingerprint}


def _prepare_replace(actor, *, asset_key, data, filename=None, storage=None):
    checked = check_upload(data, max_bytes=current_app.config["MAX_ASSET_BYTES"],
                           max_pixels=current_app.config["MAX_IMAGE_PIXELS"])
    return {"asset_key": asset_key, "checked": checked, "data": data, "filename": filename, "storage": storage}


HANDLERS: dict[Action, Handler] = {
    A.APPROVE: Handler(_approve, _prepare_decision),
    A.REJECT: Handler(_reject, _prepare_reject),
    A.REOPEN: Handler(_reopen, lambda actor, notes=None: {"notes": clean_notes(notes, required=False)}),
    A.UNDO: Handler(_undo),
    A.CLAIM: Handler(_claim),
    A.RENEW: Handler(_claim),
    A.TAKEOVER: Handler(_takeover),
    A.RELEASE: Handler(_release),
    A.SUBMIT: Handler(_submit, lambda actor, assets: {"assets": validate_assets(assets)},
                      missing="There is no order {order_id}; create it with PUT /api/v1/orders/{order_id} first."),
    A.REPLACE: Handler(_replace, _prepare_replace),
    A.IMPORT: Handler(_import),
}


# --- the claim sweep -----------------------------------------------------------------------------------

def expire_lapsed(limit: int = 500) -> int:
    """Tidy up lapsed claims: each one is removed and its stage, if still in review, goes back to pending;
    audited ``claim_lapsed`` (actor: the system, details: who held it). Stages locked by a running action are
    skipped and caught next time. In review with no claim at all (written by another tool) counts as lapsed
    once it has sat a whole claim period. Returns how many were swept."""
    system = Actor.system()
    with transaction():
        now = db_now()
        lapsed = db.session.execute(
            select(STAGES, CLAIMS.c.claimed_by.label("held_by"), CLAIMS.c.expires_at.label("claim_expires_at"))
            .join(CLAIMS, and_(CLAIMS.c.order_id == STAGES.c.order_id, CLAIMS.c.stage == STAGES.c.stage_name))
            .where(CLAIMS.c.expires_at <= now)
            .order_by(CLAIMS.c.expires_at).limit(limit)
            .with_for_update(of=STAGES, skip_locked=True)
        ).all()
        orphans = db.session.execute(
            select(STAGES)
            .where(STAGES.c.status == IN_REVIEW, STAGES.c.updated_at <= now - claims.ttl(),
                   ~select(CLAIMS.c.order_id).where(CLAIMS.c.order_id == STAGES.c.order_id,
                                                    CLAIMS.c.stage == STAGES.c.stage_name).exists())
            .limit(limit).with_for_update(skip_locked=True)
        ).all()
        width = len(STAGES.c)
        for found, claimed in [*((r, True) for r in lapsed), *((r, False) for r in orphans)]:
            row = StageRow(*found[:width])
            before = row.status
            if before == IN_REVIEW:
                write_stage(row, status=PENDING)
            details = {"claimed_by": found.held_by if claimed else None}
            if claimed:
                drop_claim(row.order_id, row.stage_name)
                details["expired_at"] = found.claim_expires_at.isoformat()
            ctx = Locked(row.order_id, Stage(row.stage_name), {row.stage_name: row}, _now=now)
            transition_to(ctx, system, Change("claim_lapsed", details), before=before)
    return len(lapsed) + len(orphans)


# --- the entry points: one per action, each one call of perform ------------------------------------------

def approve(actor: Actor, order_id: str, stage: str, notes: str | None = None, *,
            fingerprint: str | None = None, context: dict[str, Any] | None = None) -> Decided:
    """Approve a waiting stage: review_stages and approvals approved, bound to the assets as they are now (with
    ``fingerprint``, what the reviewer's page showed, a change in between is refused); the decision goes into
    the history and ends the claim; audited ``stage_approved``, announced ``stage_approved``.

    Raises NotFound, Invalid (notes), AlreadyDecided, ClaimedByOther, AssetsChanged, StageOutOfOrder."""
    return perform(actor, order_id, stage, A.APPROVE, notes=notes, fingerprint=fingerprint, context=context)


def reject(actor: Actor, order_id: str, stage: str, notes: str | None, reasons: list[str] | None = None,
           asset_keys: list[str] | None = None, *, fingerprint: str | None = None,
           context: dict[str, Any] | None = None) -> Decided:
    """Reject a waiting stage with notes and one or more reasons, optionally pointing at some of its assets:
    review_stages rejected, approvals pending; audited ``stage_rejected`` with the reasons.

    Raises NotFound, Invalid (notes, reasons, assets), AlreadyDecided, ClaimedByOther, AssetsChanged."""
    return perform(actor, order_id, stage, A.REJECT, notes=notes, reasons=reasons, asset_keys=asset_keys,
                   fingerprint=fingerprint, context=context)


def reopen(actor: Actor, order_id: str, stage: str, notes: str | None = None) -> StageRow:
    """Admins only: a decided stage back to pending (approvals pending too); audited ``stage_reopened``.
    Reopening an approved stage withdraws the approval of every later stage (``stage_voided``).

    Raises Forbidden, NotFound, Conflict (not decided)."""
    return perform(actor, order_id, stage, A.REOPEN, notes=notes)


def undo(actor: Actor, order_id: str, stage: str, *, context: dict[str, Any] | None = None) -> StageRow:
    """The decider takes their latest decision back within UNDO_WINDOW_SECONDS: the stage, approvals row, claim
    and fingerprint as they were before it; the decision stays in the history marked undone. Audited and
    announced ``stage_undone``; undoing an approval withdraws the approval of every later stage.

    Raises NotFound, NothingToUndo, Forbidden (someone else decided), UndoWindowClosed."""
    return perform(actor, order_id, stage, A.UNDO, context=context)


def claim(actor: Actor, order_id: str, stage: str, *, context: dict[str, Any] | None = None) -> ClaimView:
    """Claim a waiting stage: in review until the claim lapses; audited ``stage_claimed``. One's own live claim
    is renewed (not audited); a lapsed claim of someone else is replaced (named in the audit details).

    Raises NotFound, AlreadyDecided, ClaimedByOther."""
    return perform(actor, order_id, stage, A.CLAIM, context=context)


def renew(actor: Actor, order_id: str, stage: str, *, context: dict[str, Any] | None = None) -> ClaimView:
    """The page's heartbeat: the actor's claim pushed CLAIM_TTL_SECONDS further, or claimed again when it
    lapsed and nobody took the stage. Raises NotFound, AlreadyDecided, ClaimedByOther."""
    return perform(actor, order_id, stage, A.RENEW, context=context)


def takeover(actor: Actor, order_id: str, stage: str) -> ClaimView:
    """Take someone's live claim: audited ``stage_claim_taken_over`` naming the previous holder; with no live
    claim to take, an ordinary claim. Raises NotFound, AlreadyDecided."""
    return perform(actor, order_id, stage, A.TAKEOVER)


def release(actor: Actor, order_id: str, stage: str, *, context: dict[str, Any] | None = None) -> StageRow:
    """The holder gives the stage back (their claim, live or lapsed): status pending; audited
    ``stage_released``. Raises NotFound, AlreadyDecided, NotClaimed, ClaimedByOther."""
    return perform(actor, order_id, stage, A.RELEASE, context=context)


def submit(actor: Actor, order_id: str, stage: str, assets: Any) -> Submission:
    """The pipeline submits a stage with its assets. A new stage is created pending; different assets replace
    the old ones and the stage returns to pending (an approved one through void_approval, which also withdraws
    the approval of every later stage); audited ``stage_submitted``. The same assets again write nothing.

    Raises NotFound (no such order), Invalid (assets)."""
    return perform(actor, order_id, stage, A.SUBMIT, assets=assets)


def replace_asset(actor: Actor, order_id: str, stage: str, asset_key: str, data: bytes, *,
                  filename: str | None = None, storage: Storage | None = None) -> Replacement:
    """Replace one asset of the stage with an uploaded file, checked by content (uploads.check_upload) and of
    the same family (image for image, PDF for PDF), stored under a new key named by its content; audited
    ``asset_replaced``. An approved stage loses its approval (``approval_voided``, and every later stage
    follows); a rejected one returns to pending. The file is written before the commit: a failed commit can
    leave an unreferenced file, never a reference to a missing one.

    Raises UnknownStage, NotFound, Invalid, ClaimedByOther, StorageUnavailable."""
    return perform(actor, order_id, stage, A.REPLACE, asset_key=asset_key, data=data, filename=filename,
                   storage=storage)


def import_approval(entry, *, plan: Callable, apply_changes: bool) -> str:
    """One entry of the old file-based approval store (pipeline.importer), as the system: planned against the
    database under the lock and, with ``apply_changes``, written; audited ``approval_imported``. Its order and
    stage need not exist yet. Returns the plan: import, unchanged or newer."""
    actor = Actor(email=entry.reviewer, kind="system")
    return perform(actor, entry.order_id, entry.stage, A.IMPORT, entry=entry, plan=plan, apply_changes=apply_changes)
