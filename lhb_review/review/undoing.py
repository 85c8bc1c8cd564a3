"""The undo window: the reviewer who decided may take the decision back within UNDO_WINDOW_SECONDS.

After the window (or for anyone else) a decided stage can only be reopened by an admin. The undo itself is
an action of the state machine (review.machine.undo); this module says what can still be undone.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from lhb_review.core.clock import db_now
from lhb_review.core.errors import Conflict
from lhb_review.extensions import db
from lhb_review.models import ReviewStage, StageDecision
from lhb_review.review import history


class NothingToUndo(Conflict):
    code = "nothing_to_undo"


class UndoWindowClosed(Conflict):
    code = "undo_window_closed"


def window() -> timedelta:
    return timedelta(seconds=current_app.config.get("UNDO_WINDOW_SECONDS", 120))


def seconds_left(decision: StageDecision, now: datetime) -> int:
    """Whole seconds the decision can still be undone (0 when the window has closed)."""
    return max(int((decision.decided_at + window() - now).total_seconds()), 0)


def still_in_force(decision: StageDecision, row: ReviewStage) -> bool:
    """Whether the stage still stands as the decision left it (not voided, not decided again since)."""
    return decision.voided_at is None and row.status == decision.outcome and row.reviewer_email == decision.reviewer_email


def undoable(order_id: str, stage: str, email: str) -> tuple[StageDecision, int] | None:
    """The decision ``email`` may still undo on this stage, with the seconds left, or None (for pages)."""
    row = db.session.scalar(select(ReviewStage).where(ReviewStage.order_id == order_id,
                                                      ReviewStage.stage_name == stage))
    decision = history.latest_decision(order_id, stage)
    if row is None or decision is None or not still_in_force(decision, row) or decision.reviewer_email != email:
        return None
    left = seconds_left(decision, db_now())
    return (decision, left) if left > 0 else None
