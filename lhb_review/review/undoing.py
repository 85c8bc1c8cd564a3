"""Undo: the reviewer who decided takes the decision back within UNDO_WINDOW_SECONDS, exactly.

After the window (or for anyone else) a decided stage can only be reopened by an admin
(decisions.reopen).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, insert, select, update

from lhb_review.extensions import db
from lhb_review.models import Approval, ApprovalFingerprint, ReviewStage, StageClaim, StageDecision
from lhb_review.core.stages import STAGE_ORDER, StageStatus, parse_stage
from lhb_review.core import audit
from lhb_review.review import claims, history, outbox
from lhb_review.core.actors import Actor
from lhb_review.core.clock import db_now
from lhb_review.core.errors import Conflict, Forbidden
from lhb_review.core.tx import transaction


class NothingToUndo(Conflict):
    code = "nothing_to_undo"


class UndoWindowClosed(Conflict):
    code = "undo_window_closed"


def window() -> timedelta:
    return timedelta(seconds=current_app.config.get("UNDO_WINDOW_SECONDS", 120))


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def seconds_left(decision: StageDecision, now: datetime) -> int:
    """Whole seconds the decision can still be undone (0 when the window has closed)."""
    return max(int((decision.decided_at + window() - now).total_seconds()), 0)


def undoable(order_id: str, stage: str, email: str) -> tuple[StageDecision, int] | None:
    """The decision ``email`` may still undo on this stage, with the seconds left, or None (for pages)."""
    row = db.session.scalar(select(ReviewStage).where(ReviewStage.order_id == order_id,
                                                      ReviewStage.stage_name == stage))
    decision = history.latest_decision(order_id, stage)
    if row is None or decision is None or not _still_in_force(decision, row) or decision.reviewer_email != email:
        return None
    left = seconds_left(decision, db_now())
    return (decision, left) if left > 0 else None


def _still_in_force(decision: StageDecision, row: ReviewStage) -> bool:
    return decision.voided_at is None and row.status == decision.outcome and row.reviewer_email == decision.reviewer_email


def _later_stages_approved(row: ReviewStage) -> list[str]:
    later = [s.value for s in STAGE_ORDER[parse_stage(row.stage_name).position + 1:]]
    if not later:
        return []
    return list(db.session.scalars(
        select(ReviewStage.stage_name).where(ReviewStage.order_id == row.order_id,
                                             ReviewStage.stage_name.in_(later),
                                             ReviewStage.status == StageStatus.APPROVED.value)
    ))


def undo(actor: Actor, order_id: str, stage: str) -> ReviewStage:
    """Put the stage, its approvals row, its claim and its approval fingerprint back as they were before
    the actor's latest decision on it; the decision stays in the history marked undone. Audited
    ``stage_undone`` with the decision undone, and announced to the order's webhooks (``stage_undone``).

    Raises NotFound, NothingToUndo (no decision in force), Forbidden (someone else decided),
    UndoWindowClosed, Conflict (a later stage has been approved since); nothing is written then.
    """
    from lhb_review.review.decisions import lock_stage

    parsed = parse_stage(stage)
    with transaction():
        row = lock_stage(order_id, parsed)
        now = db_now()
        decision = history.latest_decision(order_id, parsed.value)
        if decision is None or not _still_in_force(decision, row):
            raise NothingToUndo("There is no decision on this stage to undo.", status=row.status)
        if decision.reviewer_email != actor.email:
            raise Forbidden(f"Only {decision.reviewer_email}, who decided, can undo this. An admin can reopen the stage.")
        if now >= decision.decided_at + window():
            closed = decision.decided_at + window()
            raise UndoWindowClosed(
                f"The undo window closed at {closed:%H:%M:%S} UTC. An admin can reopen the stage.",
                closed_at=closed.isoformat(),
            )
        later = _later_stages_approved(row)
        if later:
            raise Conflict(f"{', '.join(later)} has been approved since; it would be approved on an undone stage. "
                           "An admin can reopen the stages in order.", approved=later)
        before = row.status
        previous = decision.previous or {}
        _restore(actor, row, previous, now)
        decision.undone_at = now
        decision.undone_by = actor.email
        audit.record(actor, "stage_undone", order_id=row.order_id, stage=row.stage_name, details={
            "status_before": before,
            "status_after": row.status,
            "undone_action": f"stage_{decision.outcome}",
            "decision_id": str(decision.id),
            "decided_at": decision.decided_at.isoformat(),
        })
        outbox.enqueue(row.order_id, row.stage_name, "stage_undone",
                       {"status_before": before, "undone_action": f"stage_{decision.outcome}"})
    return row


def _restore(actor: Actor, row: ReviewStage, previous: dict[str, Any], now: datetime) -> None:
    stage = previous.get("stage") or {}
    row.status = stage.get("status") or StageStatus.PENDING.value
    row.reviewed_at = _when(stage.get("reviewed_at"))
    row.reviewer_email = stage.get("reviewer_email")
    row.reviewer_notes = stage.get("reviewer_notes")

    key = {"order_id": row.order_id, "stage": row.stage_name}
    approval = previous.get("approval")
    if approval is None:
        db.session.execute(delete(Approval).filter_by(**key))
    else:
        db.session.execute(update(Approval).filter_by(**key).values(
            status=approval["status"], approved_at=_when(approval.get("approved_at")),
            reviewer_email=approval["reviewer_email"], reviewer_notes=approval.get("reviewer_notes")))

    printed = previous.get("fingerprint")
    db.session.execute(delete(ApprovalFingerprint).filter_by(**key))
    if printed is not None:
        db.session.execute(insert(ApprovalFingerprint).values(
            fingerprint=printed["fingerprint"], assets=printed.get("assets") or [],
            recorded_at=_when(printed.get("recorded_at")), **key))

    claim = previous.get("claim")
    claims.clear(row.order_id, row.stage_name)
    if claim is not None:
        # The undoer's own claim comes back with a fresh period (they are looking at the stage again);
        # anyone else's comes back exactly as it was, lapsed or not.
        own = claim["claimed_by"] == actor.email
        db.session.execute(insert(StageClaim).values(
            claimed_by=claim["claimed_by"],
            claimed_at=_when(claim["claimed_at"]),
            renewed_at=now if own else _when(claim["renewed_at"]),
            expires_at=now + claims.ttl() if own else _when(claim["expires_at"]),
            **key,
        ))
