"""Stage submissions from the pipeline: a stage and its assets, and voiding an approval whose assets changed.

A stage's assets live in ``orders.r2_assets[stage]`` as a list of {key, label, content_type, sha256}.
Two submissions carry the same assets when their sets of (key, sha256) are equal; labels and order
do not matter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from lhb_review.extensions import db
from lhb_review.models import Order, ReviewStage
from lhb_review.core.stages import StageStatus, parse_stage
from lhb_review.core import audit, contracts
from lhb_review.review import claims, fingerprints, outbox
from lhb_review.core.actors import Actor
from lhb_review.review.approvals import upsert_approval
from lhb_review.core.errors import Invalid, NotFound
from lhb_review.core.tx import transaction

MAX_ASSETS = contracts.MAX_ASSETS


def fingerprint(assets: list[dict[str, Any]] | None) -> frozenset[tuple[str, str]]:
    """What an approval covers: the set of (key, sha256) of the stage's assets."""
    return frozenset((a.get("key"), a.get("sha256")) for a in assets or [] if isinstance(a, dict))


def validate_assets(value: Any) -> list[dict[str, str]]:
    """The assets of a submission, normalised (contracts.Assets); raises Invalid with an error per field path."""
    assets = contracts.checked(contracts.STAGE_ASSETS, value, "Some assets are not valid.", prefix="assets")
    return [a.stored() for a in assets]


def void_approval(actor: Actor, row: ReviewStage, *, reason: str, old_assets: list, new_assets: list) -> None:
    """Return an approved stage to pending because its assets changed; the caller holds the stage lock.

    Inside the caller's transaction: review_stages pending (decision fields cleared), approvals pending,
    the approval's fingerprint dropped and its decision marked voided, an ``approval_voided`` audit row
    saying why (the old and new assets, the fingerprint the approval covered and the new one, and which
    keys were added, removed or changed) and an outbox event.
    """
    parsed = parse_stage(row.stage_name)
    recorded = fingerprints.approved_fingerprint(row.order_id, parsed)
    covered = recorded.assets if recorded is not None else fingerprints.asset_identity(old_assets)
    change = {
        "old_fingerprint": recorded.fingerprint if recorded is not None else fingerprints.fingerprint(old_assets),
        "new_fingerprint": fingerprints.fingerprint(new_assets),
        "changed": fingerprints.diff(covered, new_assets),
    }
    fingerprints.forget_approval(row.order_id, parsed, reason=reason)
    before = row.status
    previous = {
        "reviewer": row.reviewer_email,
        "reviewed_at": outbox.isoformat(row.reviewed_at),
        "notes": row.reviewer_notes,
    }
    row.status = StageStatus.PENDING.value
    row.reviewed_at = None
    row.reviewer_email = None
    row.reviewer_notes = None
    upsert_approval(
        row.order_id,
        parse_stage(row.stage_name),
        status="pending",
        reviewer=actor.email,
        notes=f"Approval voided: {reason}",
    )
    audit.record(
        actor,
        "approval_voided",
        order_id=row.order_id,
        stage=row.stage_name,
        details={
            "status_before": before,
            "status_after": row.status,
            "reason": reason,
            "previous_decision": previous,
            "assets_before": old_assets,
            "assets_after": new_assets,
            **change,
        },
    )
    outbox.enqueue(
        row.order_id, row.stage_name, "approval_voided", {"reason": reason, "previous_decision": previous}
    )


@dataclass(frozen=True)
class Submission:
    stage: ReviewStage
    result: str  # created, resubmitted or unchanged


def submit(actor: Actor, order_id: str, stage: str, assets: Any) -> Submission:
    """Submit a stage for review with its assets.

    A new stage is created ``pending``. When the assets differ from the stage's, they replace them and
    the stage returns to ``pending`` (a rejected stage is reopened; an approved one loses its approval
    through void_approval). Audited ``stage_submitted``. The same assets again change nothing and write
    nothing. Raises NotFound (no such order) or Invalid (assets); nothing is written then.
    """
    parsed = parse_stage(stage)
    new_assets = validate_assets(assets)
    with transaction():
        # The order row lock serialises submissions of one order (they rewrite the same r2_assets value).
        order = db.session.scalars(
            select(Order)
            .where(Order.order_id == order_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()
        if order is None:
            raise NotFound(
                f"There is no order {order_id}; create it with PUT /api/v1/orders/{order_id} first."
            )
        row = db.session.scalars(
            select(ReviewStage)
            .where(ReviewStage.order_id == order_id, ReviewStage.stage_name == parsed.value)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()
        old_assets = order.assets_for(parsed.value)
        if row is not None and fingerprint(old_assets) == fingerprint(new_assets):
            return Submission(row, "unchanged")
        order.r2_assets = {**(order.r2_assets or {}), parsed.value: new_assets}
        if row is None:
            row = ReviewStage(order_id=order_id, stage_name=parsed.value, status=StageStatus.PENDING.value)
            db.session.add(row)
            result, before = "created", None
        else:
            result, before = "resubmitted", row.status
            claims.clear(order_id, parsed.value)  # whoever looked at the old assets no longer holds the stage
            if before == StageStatus.APPROVED:
                void_approval(
                    actor,
                    row,
                    reason="The pipeline submitted different assets.",
                    old_assets=old_assets,
                    new_assets=new_assets,
                )
            elif before != StageStatus.PENDING:
                row.status = StageStatus.PENDING.value
                row.reviewed_at = None
                row.reviewer_email = None
                row.reviewer_notes = None
        audit.record(
            actor,
            "stage_submitted",
            order_id=order_id,
            stage=parsed.value,
            details={
                "result": result,
                "status_before": before,
                "status_after": StageStatus.PENDING.value,
                "assets": len(new_assets),
                "assets_before": old_assets if before else None,
                "assets_after": new_assets,
            },
        )
    return Submission(row, result)
