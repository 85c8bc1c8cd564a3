"""Claims as reviewers see them: who is reviewing a stage right now, until when.

A live claim (``expires_at`` in the future) keeps everyone else from deciding the stage; a lapsed one
blocks nobody: every check compares with the database's clock, so expiry needs no timer. Claims change
only through the review state machine (review.machine: claim, renew, take over, release, expire).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from lhb_review.core.clock import db_now
from lhb_review.core.errors import Conflict
from lhb_review.extensions import db
from lhb_review.models import StageClaim


class ClaimedByOther(Conflict):
    """Someone else holds a live claim on the stage."""

    code = "claimed"


class NotClaimed(Conflict):
    """The actor holds no claim to renew or release (it lapsed and was taken, or never existed)."""

    code = "not_claimed"


@dataclass(frozen=True)
class ClaimView:
    """A live claim as pages and the API show it."""

    order_id: str
    stage: str
    claimed_by: str
    claimed_at: datetime
    expires_at: datetime

    def held_by(self, email: str | None) -> bool:
        return email is not None and self.claimed_by == email


def ttl() -> timedelta:
    return timedelta(seconds=current_app.config.get("CLAIM_TTL_SECONDS", 300))


def view(claim: StageClaim) -> ClaimView:
    return ClaimView(claim.order_id, claim.stage, claim.claimed_by, claim.claimed_at, claim.expires_at)


def claim_row(order_id: str, stage: str) -> StageClaim | None:
    """The stage's claim row, live or lapsed, re-read from the database."""
    return db.session.get(StageClaim, (order_id, stage), populate_existing=True)


def live_claim(order_id: str, stage: str, now: datetime | None = None) -> ClaimView | None:
    """The stage's live claim, or None when there is none or it has lapsed."""
    claim = claim_row(order_id, stage)
    if claim is None or claim.expires_at <= (now or db_now()):
        return None
    return view(claim)


def live_claims(pairs: list[tuple[str, str]]) -> dict[tuple[str, str], ClaimView]:
    """Live claims for many (order_id, stage) pairs in one query: the queue's "being reviewed by"."""
    if not pairs:
        return {}
    now = db_now()
    order_ids = {order_id for order_id, _ in pairs}
    rows = db.session.scalars(
        select(StageClaim).where(StageClaim.order_id.in_(order_ids), StageClaim.expires_at > now)
    ).all()
    wanted = set(pairs)
    return {(c.order_id, c.stage): view(c) for c in rows if (c.order_id, c.stage) in wanted}


def refuse_claim_of_other(actor, claimed_by: str, expires_at: datetime, now: datetime) -> None:
    """409 when the claim (its holder and expiry, already read) is someone else's and live at ``now``."""
    if expires_at > now and claimed_by != actor.email:
        raise ClaimedByOther(
            f"{claimed_by} is reviewing this stage (claim until {expires_at:%H:%M:%S} UTC). "
            "Take it over first if you need to decide it.",
            claimed_by=claimed_by,
            expires_at=expires_at.isoformat(),
        )
