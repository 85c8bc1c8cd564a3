"""Audit rows: written in the caller's transaction, never committed on their own."""
from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import insert

from lhb_review.extensions import db
from lhb_review.models import AuditLog
from lhb_review.core.actors import Actor

MAX_USER_AGENT = 1000
# The session's info key under which the audit actions written in its current transaction are listed, as
# (action, stage): what happened, for whoever wants to know once it commits (the decision metrics).
WRITTEN = "lhb_audit_written"

# Every audit action lhb-review writes (the database's own triggers included), with the words people read.
ACTIONS: dict[str, str] = {
    "stage_submitted": "Submitted for review",
    "stage_claimed": "Claimed",
    "stage_claim_taken_over": "Claim taken over",
    "stage_released": "Released",
    "claim_lapsed": "Claim lapsed",
    "stage_approved": "Approved",
    "stage_rejected": "Rejected",
    "stage_reopened": "Reopened",
    "stage_undone": "Decision undone",
    "asset_replaced": "Asset replaced",
    "approval_voided": "Approval voided",
    "stage_voided": "Approval withdrawn (an earlier stage changed)",
    "approval_refused": "Approval refused (out of order)",
    "approval_imported": "Approval imported",
    "order_created": "Order created",
    "order_updated": "Order updated",
    "webhook_retry_requested": "Webhook retry requested",
    "api_token_created": "API token created",
    "api_token_revoked": "API token revoked",
    "login": "Signed in",
    "login_failed": "Sign-in failed",
    "logout": "Signed out",
    "user_created": "User created",
    "user_enabled": "User enabled",
    "user_disabled": "User disabled",
    "user_role_changed": "Role changed",
    "user_password_reset": "Password reset",
    "error_resolved": "Error resolved",
}


def valid_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def statement(
    actor: Actor,
    action: str,
    *,
    order_id: str = "",
    stage: str | None = None,
    details: dict[str, Any] | None = None,
):
    """The INSERT of one audit row, for a caller that sends it with another statement (as a CTE) in the
    current transaction; the action is listed under ``db.session.info[WRITTEN]`` until it commits.

    ``action`` is one of ACTIONS: an action nobody listed is a programming error, refused before any write."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}: add it to core.audit.ACTIONS")
    db.session.info.setdefault(WRITTEN, []).append((action, stage))
    return insert(AuditLog.__table__).values(
        order_id=order_id or "",
        action=action,
        stage=stage,
        reviewer_email=actor.email,
        details=details or {},
        ip_address=valid_ip(actor.ip),
        user_agent=(actor.user_agent or None) and actor.user_agent[:MAX_USER_AGENT],
    )


def record(
    actor: Actor,
    action: str,
    *,
    order_id: str = "",
    stage: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Write one audit row in the current transaction (one INSERT, sent now); it commits or rolls back with
    the change. Refuses an action not in ACTIONS before any write."""
    db.session.execute(statement(actor, action, order_id=order_id, stage=stage, details=details))
