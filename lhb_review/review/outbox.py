"""The webhook outbox: events written in the decision's own transaction, one delivery per callback URL.

Callback URLs live in ``orders.webhooks`` as a list whose items are either a URL string or an object
``{"url": ..., "secret": ...}`` (the secret, when given, signs that URL's deliveries instead of
WEBHOOK_SECRET). Nothing is sent from here: ``services.webhooks`` delivers what is written here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from flask import current_app, has_app_context
from pydantic import ValidationError
from sqlalchemy import insert, select

from lhb_review.core import contracts, egress
from lhb_review.extensions import db
from lhb_review.models import AuditLog, Order, ReviewStage, WebhookDelivery
from lhb_review.review.approvals import stage_statuses
from lhb_review.review.checks import stage_checks
from lhb_review.review.checks.jobs import summary as checks_summary

EVENTS = contracts.EVENTS


def parse_webhooks(value: Any) -> tuple[list[dict[str, str]] | None, dict[str, str]]:
    """Validate the ``webhooks`` field of an order (contracts.Webhooks, each URL judged by url_problem):
    (normalised list or None, errors by field path)."""
    if value is None:
        return None, {}
    try:
        items = contracts.WEBHOOKS.validate_python(value, context={"url_problem": url_problem})
    except ValidationError as exc:
        return None, contracts.field_errors(exc, "webhooks")
    return [{"url": w} if isinstance(w, str) else w.model_dump(exclude_none=True) for w in items], {}


def url_problem(url: Any) -> str | None:
    """What is wrong with one callback URL, or None: its form (contracts.url_problem), then where it points
    (core.egress: no private, loopback or link-local address unless WEBHOOK_ALLOWED_NETWORKS lists it)."""
    return contracts.url_problem(url) or egress.url_problem(url, allowed_networks())


def allowed_networks() -> tuple:
    """WEBHOOK_ALLOWED_NETWORKS of the running app (none outside an app context)."""
    return tuple(current_app.config.get("WEBHOOK_ALLOWED_NETWORKS", ())) if has_app_context() else ()


def webhook_targets(webhooks: Any) -> list[dict[str, str]]:
    """The usable callback entries of a stored ``orders.webhooks`` value (invalid items are ignored)."""
    targets, _ = parse_webhooks(webhooks if isinstance(webhooks, list) else None)
    if targets is None and isinstance(webhooks, list):
        # A row written before validation existed: keep the items that are valid on their own.
        targets = [t for item in webhooks for t in (parse_webhooks([item])[0] or [])]
    return targets or []


def secret_for(order_id: str, url: str) -> str | None:
    """The per-URL secret the order configures for ``url`` now, if any."""
    webhooks = db.session.scalar(select(Order.webhooks).where(Order.order_id == order_id))
    for target in webhook_targets(webhooks):
        if target["url"] == url:
            return target.get("secret")
    return None


def isoformat(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


DECISION_ACTIONS = ("stage_approved", "stage_rejected", "stage_reopened", "stage_undone")


def decision_reasons(order_id: str, stage: str) -> list:
    """The reasons of the stage's latest decision (stored in its audit row's details), or []."""
    details = db.session.scalar(
        select(AuditLog.details)
        .where(AuditLog.order_id == order_id, AuditLog.stage == stage, AuditLog.action.in_(DECISION_ACTIONS))
        .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
        .limit(1)
    )
    reasons = (details or {}).get("reasons") if isinstance(details, dict) else None
    return reasons if isinstance(reasons, list) else []


def stage_snapshot(order_id: str, stage: str) -> dict[str, Any]:
    """What the pipeline knows a stage by: the approval store's answer and the review state."""
    # Plain columns, never an ORM object: the state machine writes with Core statements, so an object the
    # session loaded earlier in the request would still describe the stage as it was before the change.
    row = db.session.execute(
        select(ReviewStage.status, ReviewStage.reviewer_email, ReviewStage.reviewer_notes, ReviewStage.reviewed_at)
        .where(ReviewStage.order_id == order_id, ReviewStage.stage_name == stage)
    ).first()
    return {
        "status": stage_statuses([(order_id, stage)])[(order_id, stage)],
        "review_status": row.status if row else None,
        "reviewer": row.reviewer_email if row else None,
        "notes": row.reviewer_notes if row else None,
        "reviewed_at": isoformat(row.reviewed_at) if row else None,
        "reasons": decision_reasons(order_id, stage),
    }


NOT_READ = object()


@dataclass(frozen=True)
class Known:
    """What a caller has already read or written in this transaction, so enqueue need not read it again:
    the order's webhooks, the transaction's now(), and the stage's state after the change (as
    stage_snapshot would answer it)."""

    webhooks: Any
    now: datetime
    snapshot: dict[str, Any]
    checks: Any = NOT_READ  # the stage's current check run as read in this transaction (None: it has none)


def enqueue(
    order_id: str, stage: str | None, event: str, payload: dict[str, Any] | None = None, *,
    known: Known | None = None, along=None,
) -> list[dict[str, Any]]:
    """Write one delivery per callback URL of the order into the current transaction (nothing is sent here).

    The payload carries the event, the order, the stage's state after the change and ``payload``'s
    extra facts. An order without callback URLs gets no deliveries. ``along``: a write of the caller's
    (its audit row) that travels with the deliveries' INSERT as a CTE, one statement for both; it is sent
    alone when there is nothing to deliver.
    """
    if known is not None:
        webhooks = known.webhooks
    else:
        if along is not None:  # the snapshot read below must see the caller's write (its audit row)
            db.session.execute(along)
            along = None
        db.session.flush()
        webhooks = db.session.scalar(select(Order.webhooks).where(Order.order_id == order_id))
    targets = webhook_targets(webhooks)
    if not targets:
        if along is not None:
            db.session.execute(along)
        return []
    if known is not None:
        occurred_at, snapshot = known.now, known.snapshot
    else:
        occurred_at = db.session.scalar(select(db.func.now()))
        snapshot = stage_snapshot(order_id, stage) if stage else {}
    body = {
        "event": event,
        "order_id": order_id,
        "stage": stage,
        "occurred_at": isoformat(occurred_at),
        **snapshot,
        "checks": (checks_summary(known.checks) if known is not None and known.checks is not NOT_READ
                   else stage_checks(order_id, stage)) if stage else None,
        "details": payload or {},
    }
    rows = [{"order_id": order_id, "stage": stage, "event": event, "url": target["url"], "payload": body}
            for target in targets]
    stmt = insert(WebhookDelivery.__table__).values(rows)  # one statement for every callback URL
    if along is not None:
        stmt = stmt.add_cte(along.cte("along"))
    db.session.execute(stmt)
    return rows
