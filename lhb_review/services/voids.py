"""Voiding an approval whose assets changed: the stage goes back to the reviewers, saying what changed."""
from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update

from ..extensions import db
from ..models import Approval, ApprovalFingerprint, ReviewStage, StageDecision
from ..stages import StageStatus, parse_stage
from . import audit, fingerprints
from .actors import Actor
from .approvals import upsert_approval
from .clock import db_now


def void_approval(
    actor: Actor, order_id: str, stage: str, *, reason: str, details: dict[str, Any] | None = None
) -> ReviewStage | None:
    """Void the (order, stage) approval in the caller's transaction: the stage returns to ``pending``
    (reviewer fields cleared), ``approvals`` to pending, the approval's fingerprint is dropped and its
    decision marked voided; audited ``approval_voided`` with the reason, the old and new fingerprints
    and which asset keys were added, removed or changed (``details`` from the caller win).

    Returns the stage, or None when there was no approval to void (nothing is written then).
    Raises NotFound when the order has no such stage.
    """
    from .decisions import lock_stage

    parsed = parse_stage(stage)
    row = lock_stage(order_id, parsed)
    approval = db.session.scalar(select(Approval).where(Approval.order_id == order_id, Approval.stage == parsed.value)
                                 .execution_options(populate_existing=True))
    if row.status != StageStatus.APPROVED and (approval is None or approval.status != "approved"):
        return None
    recorded = fingerprints.approved_fingerprint(order_id, parsed)
    assets = fingerprints.current_assets(order_id, parsed)
    before, approved_by = row.status, row.reviewer_email or (approval.reviewer_email if approval else None)
    row.status = StageStatus.PENDING.value
    row.reviewed_at = None
    row.reviewer_email = None
    row.reviewer_notes = None
    upsert_approval(order_id, parsed, status="pending", reviewer=actor.email, notes=f"Approval void: {reason}")
    db.session.execute(delete(ApprovalFingerprint).where(ApprovalFingerprint.order_id == order_id,
                                                         ApprovalFingerprint.stage == parsed.value))
    db.session.execute(
        update(StageDecision)
        .where(StageDecision.order_id == order_id, StageDecision.stage == parsed.value,
               StageDecision.outcome == StageStatus.APPROVED.value,
               StageDecision.undone_at.is_(None), StageDecision.voided_at.is_(None))
        .values(voided_at=db_now(), void_reason=reason[:100])
    )
    audit.record(actor, "approval_voided", order_id=order_id, stage=parsed.value, details={
        "reason": reason,
        "status_before": before,
        "status_after": row.status,
        "approved_by": approved_by,
        "old_fingerprint": recorded.fingerprint if recorded else None,
        "new_fingerprint": fingerprints.fingerprint(assets),
        "changed": fingerprints.diff(recorded.assets, assets) if recorded else None,
        **(details or {}),
    })
    return row


def void_if_assets_changed(actor: Actor, order_id: str, stage: str, *, reason: str,
                           details: dict[str, Any] | None = None) -> ReviewStage | None:
    """Void the approval only when the stage's assets no longer match what it approved."""
    parsed = parse_stage(stage)
    recorded = fingerprints.approved_fingerprint(order_id, parsed)
    current = fingerprints.fingerprint(fingerprints.current_assets(order_id, parsed))
    if recorded is not None and recorded.fingerprint == current:
        return None
    return void_approval(actor, order_id, stage, reason=reason, details=details)
