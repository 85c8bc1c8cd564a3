"""The next stage a reviewer can act on: waiting, not held by someone else, its earlier stages approved,
in the queue's order and filter, after the one they are on (wrapping round to the start)."""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from lhb_review.extensions import db
from lhb_review.models import Order, ReviewStage, StageClaim
from lhb_review.core.stages import STAGE_ORDER, StageStatus
from lhb_review.review import sla
from lhb_review.core.clock import db_now

WAITING = [StageStatus.PENDING.value, StageStatus.IN_REVIEW.value]


def actionable(email: str, now) -> list[ColumnElement[bool]]:
    """Waiting, not held by someone else's live claim, and no earlier stage still unapproved."""
    earlier = aliased(ReviewStage)
    blocked = (
        select(earlier.id)
        .where(earlier.order_id == ReviewStage.order_id, earlier.status != StageStatus.APPROVED.value,
               or_(*[and_(ReviewStage.stage_name == s.value, earlier.stage_name.in_([e.value for e in s.earlier]))
                     for s in STAGE_ORDER if s.earlier]))
        .exists()
    )
    held = (
        select(StageClaim.order_id)
        .where(StageClaim.order_id == ReviewStage.order_id, StageClaim.stage == ReviewStage.stage_name,
               StageClaim.expires_at > now, StageClaim.claimed_by != email)
        .exists()
    )
    return [ReviewStage.status.in_(WAITING), ~blocked, ~held]


def next_waiting(
    email: str,
    *,
    current: tuple[str, str] | None = None,
    filters: Iterable[ColumnElement[bool]] = (),
    sort: str = sla.DEFAULT_SORT,
    direction: str = "next",
) -> tuple[str, str] | None:
    """(order_id, stage) of the next (or, with direction "prev", the previous) stage ``email`` can act on
    under ``filters`` (conditions on ReviewStage and Order, as the queue builds them), or None when
    nothing is left."""
    sort = sla.parse_sort(sort)
    backwards = direction == "prev"
    now = db_now()
    columns = sla.sort_columns(sort)
    base = (
        select(ReviewStage.order_id, ReviewStage.stage_name)
        .join(Order, Order.order_id == ReviewStage.order_id)
        .where(*actionable(email, now), *filters)
        .order_by(*(c.desc() for c in columns) if backwards else columns)
        .limit(1)
    )
    if current is not None:
        here = db.session.execute(
            select(ReviewStage, Order).join(Order, Order.order_id == ReviewStage.order_id)
            .where(ReviewStage.order_id == current[0], ReviewStage.stage_name == current[1])
        ).one_or_none()
        if here is not None:
            position = sla.cursor_values(sort, *here)
            beyond = sla.before(sort, position) if backwards else sla.after(sort, position)
            found = db.session.execute(base.where(beyond)).first()
            if found is not None:
                return found.order_id, found.stage_name
            base = base.where(~and_(ReviewStage.order_id == current[0], ReviewStage.stage_name == current[1]))
    found = db.session.execute(base).first()
    return (found.order_id, found.stage_name) if found is not None else None
