"""Claims: who is reviewing a stage right now, until when; claim, renew, release, take over, lapse.

A live claim (``expires_at`` in the future) keeps everyone else from deciding the stage; a lapsed one
blocks nobody: every check here compares with the database's clock, so expiry needs no timer. The
sweep (``sweep_lapsed``) only tidies up, returning lapsed stages from ``in_review`` to ``pending``.

Every function that writes a claim first locks the stage row, so the stage lock guards its claim too.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, delete, select

from lhb_review.extensions import db
from lhb_review.models import ReviewStage, StageClaim
from lhb_review.core.stages import DECIDED, Stage, StageStatus, parse_stage
from lhb_review.core import audit
from lhb_review.core.actors import Actor
from lhb_review.core.clock import db_now
from lhb_review.core.errors import AlreadyDecided, Conflict
from lhb_review.core.tx import transaction

SYSTEM = Actor.system()


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


def _view(claim: StageClaim) -> ClaimView:
    return ClaimView(claim.order_id, claim.stage, claim.claimed_by, claim.claimed_at, claim.expires_at)


def _claim_row(order_id: str, stage: str) -> StageClaim | None:
    return db.session.get(StageClaim, (order_id, stage), populate_existing=True)


def lock_waiting_stage(order_id: str, stage: Stage) -> ReviewStage:
    from lhb_review.review.decisions import lock_stage

    row = lock_stage(order_id, stage)
    if row.status in DECIDED:
        raise AlreadyDecided(
            f"This stage was already {row.status} by {row.reviewer_email or 'someone else'}: there is nothing to claim.",
            status=row.status,
            reviewer=row.reviewer_email,
        )
    return row


def live_claim(order_id: str, stage: str, now: datetime | None = None) -> ClaimView | None:
    """The stage's live claim, or None when there is none or it has lapsed."""
    claim = _claim_row(order_id, stage)
    if claim is None or claim.expires_at <= (now or db_now()):
        return None
    return _view(claim)


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
    return {(c.order_id, c.stage): _view(c) for c in rows if (c.order_id, c.stage) in wanted}


def refuse_if_claimed_by_other(actor: Actor, order_id: str, stage: str, now: datetime) -> None:
    """For decisions (stage row already locked): 409 when someone else holds a live claim."""
    claim = _claim_row(order_id, stage)
    if claim is not None:
        refuse_claim_of_other(actor, claim.claimed_by, claim.expires_at, now)


def refuse_claim_of_other(actor: Actor, claimed_by: str, expires_at: datetime, now: datetime) -> None:
    """409 when the claim (its holder and expiry, already read) is someone else's and live at ``now``."""
    if expires_at > now and claimed_by != actor.email:
        raise ClaimedByOther(
            f"{claimed_by} is reviewing this stage (claim until {expires_at:%H:%M:%S} UTC). "
            "Take it over first if you need to decide it.",
            claimed_by=claimed_by,
            expires_at=expires_at.isoformat(),
        )


def clear(order_id: str, stage: str) -> None:
    """Drop the stage's claim in the caller's transaction (a decision ends the claim)."""
    existing = _claim_row(order_id, stage)
    if existing is not None:
        db.session.delete(existing)
        db.session.flush()


def drop(order_id: str, stage: str) -> None:
    """Delete the stage's claim in one statement, in the caller's transaction (which holds the stage lock)."""
    db.session.execute(delete(StageClaim).where(StageClaim.order_id == order_id, StageClaim.stage == stage))


def _put_claim(existing: StageClaim | None, actor: Actor, order_id: str, stage: str, now: datetime) -> StageClaim:
    expires = now + ttl()
    if existing is None:
        existing = StageClaim(order_id=order_id, stage=stage)
        db.session.add(existing)
    existing.claimed_by = actor.email
    existing.claimed_at = now
    existing.renewed_at = now
    existing.expires_at = expires
    return existing


def _start_claim(actor, row, existing, now, action, **extra) -> StageClaim:
    before = row.status
    claim = _put_claim(existing, actor, row.order_id, row.stage_name, now)
    row.status = StageStatus.IN_REVIEW.value
    audit.record(
        actor,
        action,
        order_id=row.order_id,
        stage=row.stage_name,
        details={"status_before": before, "status_after": row.status, "expires_at": claim.expires_at.isoformat(),
                 **extra},
    )
    return claim


def claim(actor: Actor, order_id: str, stage: str) -> ClaimView:
    """Claim a waiting stage for ``actor``: status ``in_review`` until the claim lapses; audited ``stage_claimed``.

    Claiming a stage one already holds renews it (no new audit row). A lapsed claim of someone else is
    replaced (its holder is named in the audit details). Raises NotFound, AlreadyDecided, ClaimedByOther.
    """
    parsed = parse_stage(stage)
    with transaction():
        row = lock_waiting_stage(order_id, parsed)
        now = db_now()
        existing = _claim_row(order_id, parsed.value)
        if existing is not None and existing.expires_at > now:
            if existing.claimed_by != actor.email:
                refuse_if_claimed_by_other(actor, order_id, parsed.value, now)
            existing.renewed_at = now
            existing.expires_at = now + ttl()
            result = _view(existing)
        else:
            lapsed = {"lapsed_claim_of": existing.claimed_by} if existing is not None else {}
            result = _view(_start_claim(actor, row, existing, now, "stage_claimed", **lapsed))
    return result


def renew(actor: Actor, order_id: str, stage: str) -> ClaimView:
    """The page's heartbeat: push the actor's claim ``CLAIM_TTL_SECONDS`` further. Not audited (it would
    flood the log); the claim itself was. When the claim lapsed and nobody took the stage, it is claimed
    again (audited ``stage_claimed``). Raises NotFound, AlreadyDecided, ClaimedByOther (someone else has it now).
    """
    return claim(actor, order_id, stage)


def takeover(actor: Actor, order_id: str, stage: str) -> ClaimView:
    """Take someone's live claim explicitly: audited ``stage_claim_taken_over`` naming the previous holder.

    With no live claim to take this is an ordinary claim. Raises NotFound, AlreadyDecided.
    """
    parsed = parse_stage(stage)
    with transaction():
        row = lock_waiting_stage(order_id, parsed)
        now = db_now()
        existing = _claim_row(order_id, parsed.value)
        if existing is not None and existing.expires_at > now and existing.claimed_by != actor.email:
            previous = {"previous_claimed_by": existing.claimed_by,
                        "previous_expires_at": existing.expires_at.isoformat()}
            result = _view(_start_claim(actor, row, existing, now, "stage_claim_taken_over", **previous))
        elif existing is not None and existing.expires_at > now:
            existing.renewed_at = now
            existing.expires_at = now + ttl()
            result = _view(existing)
        else:
            lapsed = {"lapsed_claim_of": existing.claimed_by} if existing is not None else {}
            result = _view(_start_claim(actor, row, existing, now, "stage_claimed", **lapsed))
    return result


def release(actor: Actor, order_id: str, stage: str) -> ReviewStage:
    """Give the stage back: claim removed, status ``pending``; audited ``stage_released``.

    The holder may release their claim, live or lapsed. Raises NotFound, AlreadyDecided, NotClaimed
    (no claim of the actor's), ClaimedByOther (someone else's live claim).
    """
    parsed = parse_stage(stage)
    with transaction():
        row = lock_waiting_stage(order_id, parsed)
        now = db_now()
        existing = _claim_row(order_id, parsed.value)
        if existing is None:
            raise NotClaimed("Nobody holds a claim on this stage: there is nothing to release.")
        if existing.claimed_by != actor.email:
            if existing.expires_at > now:
                refuse_if_claimed_by_other(actor, order_id, parsed.value, now)
            raise NotClaimed(f"The lapsed claim belongs to {existing.claimed_by}, not to you.")
        before = row.status
        lapsed = existing.expires_at <= now
        db.session.delete(existing)
        row.status = StageStatus.PENDING.value
        audit.record(actor, "stage_released", order_id=row.order_id, stage=row.stage_name,
                     details={"status_before": before, "status_after": row.status, "lapsed": lapsed})
    return row


def sweep_lapsed(limit: int = 500) -> int:
    """Tidy up lapsed claims: each one is removed and its stage, if still ``in_review``, goes back to
    ``pending``; audited ``claim_lapsed`` (actor: the system, details: who held it). Stages locked by a
    running decision are skipped and caught on the next sweep. Returns how many claims were swept.
    """
    with transaction():
        now = db_now()
        rows = db.session.execute(
            select(ReviewStage, StageClaim)
            .join(StageClaim, and_(StageClaim.order_id == ReviewStage.order_id,
                                   StageClaim.stage == ReviewStage.stage_name))
            .where(StageClaim.expires_at <= now)
            .order_by(StageClaim.expires_at)
            .limit(limit)
            .with_for_update(of=ReviewStage, skip_locked=True)
            .execution_options(populate_existing=True)
        ).all()
        for stage_row, claim_row in rows:
            before = stage_row.status
            if before == StageStatus.IN_REVIEW:
                stage_row.status = StageStatus.PENDING.value
            db.session.delete(claim_row)
            audit.record(SYSTEM, "claim_lapsed", order_id=stage_row.order_id, stage=stage_row.stage_name,
                         details={"status_before": before, "status_after": stage_row.status,
                                  "claimed_by": claim_row.claimed_by,
                                  "expired_at": claim_row.expires_at.isoformat()})
        # in_review with no claim at all (written before claims existed, or by another tool): once it
        # has sat unclaimed for a whole claim period it is waiting, not being reviewed.
        orphans = db.session.scalars(
            select(ReviewStage)
            .where(ReviewStage.status == StageStatus.IN_REVIEW.value,
                   ReviewStage.updated_at <= now - ttl(),
                   ~select(StageClaim.order_id).where(StageClaim.order_id == ReviewStage.order_id,
                                                      StageClaim.stage == ReviewStage.stage_name).exists())
            .limit(limit)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        ).all()
        for stage_row in orphans:
            stage_row.status = StageStatus.PENDING.value
            audit.record(SYSTEM, "claim_lapsed", order_id=stage_row.order_id, stage=stage_row.stage_name,
                         details={"status_before": StageStatus.IN_REVIEW.value, "status_after": stage_row.status,
                                  "claimed_by": None})
    return len(rows) + len(orphans)
