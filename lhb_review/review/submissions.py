"""Stage submissions from the pipeline: a stage and its assets, and voiding an approval whose assets changed.

A stage's assets live in ``orders.r2_assets[stage]`` as a list of {key, label, content_type, sha256}.
Two submissions carry the same assets when their sets of (key, sha256) are equal; labels and order
do not matter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from lhb_review.extensions import db
from lhb_review.models import Order, ReviewStage
from lhb_review.core.stages import StageStatus, parse_stage
from lhb_review.core import audit
from lhb_review.review import claims, fingerprints, outbox
from lhb_review.core.actors import Actor
from lhb_review.review.approvals import upsert_approval
from lhb_review.review.checks import enqueue_checks
from lhb_review.core.errors import Invalid, NotFound
from lhb_review.core.tx import transaction

MAX_ASSETS = 200
MAX_KEY = 1000
MAX_LABEL = 200
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
CONTENT_TYPE_RE = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,63}/[a-z0-9][a-z0-9.+-]{0,127}$")


def fingerprint(assets: list[dict[str, Any]] | None) -> frozenset[tuple[str, str]]:
    """What an approval covers: the set of (key, sha256) of the stage's assets."""
    return frozenset((a.get("key"), a.get("sha256")) for a in assets or [] if isinstance(a, dict))


def validate_assets(value: Any) -> list[dict[str, str]]:
    """The assets of a submission, normalised; raises Invalid with an error per field path."""
    if not isinstance(value, list) or not value:
        raise Invalid("A submission needs a non-empty list of assets.", {"assets": "At least one asset."})
    if len(value) > MAX_ASSETS:
        raise Invalid(f"At most {MAX_ASSETS} assets per stage.", {"assets": f"At most {MAX_ASSETS}."})
    errors: dict[str, str] = {}
    result: list[dict[str, str]] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        where = f"assets[{i}]"
        if not isinstance(item, dict):
            errors[where] = "An object with key, content_type and sha256 (label optional)."
            continue
        unknown = set(item) - {"key", "label", "content_type", "sha256"}
        if unknown:
            errors[where] = f"Unknown fields: {', '.join(sorted(map(str, unknown)))}."
            continue
        key, label = item.get("key"), item.get("label")
        content_type, sha = item.get("content_type"), item.get("sha256")
        if (
            not isinstance(key, str)
            or not key
            or len(key) > MAX_KEY
            or key.startswith("/")
            or ".." in key.split("/")
            or any(ord(c) < 32 or c == "\\" for c in key)
        ):
            errors[f"{where}.key"] = (
                f"A relative storage key (no '..', no leading '/'), at most {MAX_KEY} characters."
            )
        elif key in seen:
            errors[f"{where}.key"] = "This key is listed twice."
        if label is not None and (not isinstance(label, str) or len(label) > MAX_LABEL or "\x00" in label):
            errors[f"{where}.label"] = f"Text of at most {MAX_LABEL} characters."
        if not isinstance(content_type, str) or not CONTENT_TYPE_RE.match(content_type):
            errors[f"{where}.content_type"] = "A media type such as image/png or application/pdf."
        if not isinstance(sha, str) or not SHA256_RE.match(sha):
            errors[f"{where}.sha256"] = "The SHA-256 of the file: 64 lowercase hex digits."
        if isinstance(key, str):
            seen.add(key)
        if not any(k.startswith(where) for k in errors):
            result.append(
                {
                    "key": key,
                    "label": label or key.rsplit("/", 1)[-1],
                    "content_type": content_type,
                    "sha256": sha,
                }
            )
    if errors:
        raise Invalid("Some assets are not valid.", errors)
    return result


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
        enqueue_checks(order_id, parsed.value)
    return Submission(row, result)
