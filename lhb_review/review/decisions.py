"""Reviewer decisions on one stage of one order: approve, reject, reopen.

Each is one transaction that locks the stage row, checks the rules, and writes the stage, its
approvals row and one audit row together. A broken rule raises before anything is written.
"""
from __future__ import annotations

from sqlalchemy import func, select

from lhb_review.extensions import db
from lhb_review.models import ReviewStage
from lhb_review.core.stages import DECIDED, Stage, StageStatus, parse_stage
from lhb_review.core import audit
from lhb_review.review import history, outbox
from lhb_review.core.actors import Actor
from lhb_review.review.approvals import upsert_approval
from lhb_review.review.checks import require_override
from lhb_review.core.errors import AlreadyDecided, Conflict, Forbidden, Invalid, NotFound, StageOutOfOrder
from lhb_review.core.tx import transaction

MAX_NOTES = 5000


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


def lock_stage(order_id: str, stage: Stage) -> ReviewStage:
    """The stage row, locked FOR UPDATE and re-read, so a racing decision sees the winner's result."""
    row = db.session.scalars(
        select(ReviewStage)
        .where(ReviewStage.order_id == order_id, ReviewStage.stage_name == stage.value)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if row is None:
        raise NotFound(f"Order {order_id} has no {stage.value} stage.", order_id=order_id, stage=stage.value)
    return row


def check_earlier_stages_approved(order_id: str, stage: Stage) -> None:
    if not stage.earlier:
        return
    rows = db.session.execute(
        select(ReviewStage.stage_name, ReviewStage.status)
        .where(ReviewStage.order_id == order_id, ReviewStage.stage_name.in_([s.value for s in stage.earlier]))
        .with_for_update(read=True)
    ).all()
    statuses = dict(rows)
    waiting = [s.value for s in stage.earlier if statuses.get(s.value) != StageStatus.APPROVED]
    if waiting:
        raise StageOutOfOrder(
            f"{stage.value} cannot be approved before {', '.join(waiting)} is approved.",
            waiting_for=waiting,
        )


def _set_decision(row: ReviewStage, status: StageStatus, actor: Actor, notes: str | None) -> None:
    row.status = status.value
    row.reviewed_at = func.now()
    row.reviewer_email = actor.email
    row.reviewer_notes = notes


def _audit(actor: Actor, action: str, row: ReviewStage, before: str, notes: str | None, **extra) -> None:
    audit.record(
        actor,
        action,
        order_id=row.order_id,
        stage=row.stage_name,
        details={"status_before": before, "status_after": row.status, "notes": notes, **extra},
    )


def _known(seen: history.Seen, actor: Actor, approval: str, status: StageStatus, notes: str | None,
           reasons: list[str]) -> outbox.Known:
    """The stage after this decision as outbox.stage_snapshot would read it back, from what the decision
    wrote: getStageStatus (an approval covers exactly the assets it recorded), the review row (reviewed at
    the transaction's now()) and the reasons of the audit row it adds."""
    return outbox.Known(seen.webhooks, seen.now, {
        "status": approval,
        "review_status": status.value,
        "reviewer": actor.email,
        "notes": notes,
        "reviewed_at": outbox.isoformat(seen.now),
        "reasons": list(reasons),
    })


def approve(
    actor: Actor, order_id: str, stage: str, notes: str | None = None, *, fingerprint: str | None = None
) -> ReviewStage:
    """Approve a waiting stage: review_stages and approvals become approved; audited ``stage_approved``.

    The approval is bound to the stage's assets as they are now (their fingerprint is recorded); with
    ``fingerprint`` (what the reviewer's page showed) a change in between is refused. The decision
    goes into the history and ends the stage's claim.

    Raises NotFound, Invalid (notes), AlreadyDecided, ClaimedByOther, AssetsChanged, StageOutOfOrder;
    nothing is written then.
    """
    parsed = parse_stage(stage)
    notes = clean_notes(notes, required=False)
    with transaction():
        row = lock_stage(order_id, parsed)
        before = row.status
        if before in DECIDED:
            raise AlreadyDecided(
                f"This stage was already {before} by {row.reviewer_email or 'someone else'}.",
                status=before,
                reviewer=row.reviewer_email,
            )
        seen = history.before_decision(actor, row, expected_fingerprint=fingerprint)
        check_earlier_stages_approved(order_id, parsed)
        overridden = require_override(order_id, parsed.value, notes)
        _set_decision(row, StageStatus.APPROVED, actor, notes)
        upsert_approval(order_id, parsed, status="approved", reviewer=actor.email, notes=notes, assets=seen.assets)
        decision = history.record_decision(actor, row, seen, notes=notes)
        _audit(actor, "stage_approved", row, before, notes, **history.audit_details(decision),
               overridden_checks=overridden)
        outbox.enqueue(row.order_id, row.stage_name, "stage_approved", {"status_before": before},
                       known=_known(seen, actor, "approved", StageStatus.APPROVED, notes, []))
    return row


def reject(
    actor: Actor,
    order_id: str,
    stage: str,
    notes: str | None,
    reasons: list[str] | None = None,
    asset_keys: list[str] | None = None,
    *,
    fingerprint: str | None = None,
) -> ReviewStage:
    """Reject a waiting stage with notes and one or more reasons (codes of lhb_review.reasons), optionally
    pointing at some of its assets: review_stages rejected, approvals pending; audited ``stage_rejected``
    with the reasons in its details. The decision goes into the history and ends the stage's claim.

    Raises NotFound, Invalid (notes or reasons missing, unknown reason or asset), AlreadyDecided,
    ClaimedByOther, AssetsChanged; nothing is written then.
    """
    parsed = parse_stage(stage)
    notes = clean_notes(notes, required=True)
    with transaction():
        row = lock_stage(order_id, parsed)
        before = row.status
        if before in DECIDED:
            raise AlreadyDecided(
                f"This stage was already {before} by {row.reviewer_email or 'someone else'}.",
                status=before,
                reviewer=row.reviewer_email,
            )
        seen = history.before_decision(actor, row, expected_fingerprint=fingerprint)
        reasons, asset_keys = history.clean_reasons(reasons, asset_keys, seen.assets)
        _set_decision(row, StageStatus.REJECTED, actor, notes)
        upsert_approval(order_id, parsed, status="pending", reviewer=actor.email, notes=notes)
        decision = history.record_decision(actor, row, seen, notes=notes, reasons=reasons, reason_assets=asset_keys)
        _audit(actor, "stage_rejected", row, before, notes, **history.audit_details(decision))
        outbox.enqueue(row.order_id, row.stage_name, "stage_rejected",
                       {"status_before": before, "reasons": reasons, "reason_assets": asset_keys},
                       known=_known(seen, actor, "pending", StageStatus.REJECTED, notes, reasons))
    return row


def reopen(actor: Actor, order_id: str, stage: str, notes: str | None = None) -> ReviewStage:
    """Admins only: return a decided stage to pending (approvals pending too); audited ``stage_reopened``.

    Raises Forbidden, NotFound, Conflict (the stage is not decided); nothing is written then.
    """
    parsed = parse_stage(stage)
    if not actor.is_admin:
        raise Forbidden("Only an admin can reopen a decided stage.")
    notes = clean_notes(notes, required=False)
    with transaction():
        row = lock_stage(order_id, parsed)
        before = row.status
        if before not in DECIDED:
            raise Conflict(f"This stage is {before}, not decided: there is nothing to reopen.", status=before)
        row.status = StageStatus.PENDING.value
        row.reviewed_at = None
        row.reviewer_email = None
        row.reviewer_notes = notes
        upsert_approval(order_id, parsed, status="pending", reviewer=actor.email, notes=notes)
        _audit(actor, "stage_reopened", row, before, notes)
        outbox.enqueue(row.order_id, row.stage_name, "stage_reopened", {"status_before": before})
    return row
