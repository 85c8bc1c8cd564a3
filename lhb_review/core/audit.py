"""Audit rows: added to the caller's transaction, never committed on their own."""
from __future__ import annotations

import ipaddress
from typing import Any

from lhb_review.extensions import db
from lhb_review.models import AuditLog
from lhb_review.core.actors import Actor

MAX_USER_AGENT = 1000


def valid_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def record(
    actor: Actor,
    action: str,
    *,
    order_id: str = "",
    stage: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditLog:
    """Add one audit row to the current transaction; it commits or rolls back with the change."""
    row = AuditLog(
        order_id=order_id or "",
        action=action,
        stage=stage,
        reviewer_email=actor.email,
        details=details or {},
        ip_address=valid_ip(actor.ip),
        user_agent=(actor.user_agent or None) and actor.user_agent[:MAX_USER_AGENT],
    )
    db.session.add(row)
    return row
