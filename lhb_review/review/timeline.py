"""One timeline per order: review actions, claims, pipeline submissions, asset changes and errors, newest first.

Audit rows belong to an order by their ``order_id``; error rows by ``details->>'order_id'`` (the rule
every error writer follows when an error concerns an order; an index makes the lookup cheap).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, cast, literal, or_, select, union_all

from lhb_review.extensions import db
from lhb_review.models import AuditLog, ErrorLog
from lhb_review.review.reasons import label as reason_label
from lhb_review.core.stages import STAGE_NAMES

KINDS: dict[str, str] = {
    "review": "Decisions",
    "claims": "Claims",
    "pipeline": "Pipeline",
    "assets": "Assets",
    "errors": "Errors",
    "other": "Other",
}
ACTIONS: dict[str, tuple[str, str]] = {
    "stage_approved": ("review", "Approved"),
    "stage_rejected": ("review", "Rejected"),
    "stage_reopened": ("review", "Reopened"),
    "stage_undone": ("review", "Decision undone"),
    "approval_voided": ("review", "Approval void"),
    "approval_imported": ("review", "Approval imported"),
    "stage_claimed": ("claims", "Claimed"),
    "stage_released": ("claims", "Released"),
    "stage_claim_taken_over": ("claims", "Claim taken over"),
    "claim_lapsed": ("claims", "Claim lapsed"),
    "stage_submitted": ("pipeline", "Submitted for review"),
    "order_created": ("pipeline", "Order created"),
    "order_updated": ("pipeline", "Order updated"),
    "asset_replaced": ("assets", "Asset replaced"),
}
MAX_LIMIT = 500


@dataclass(frozen=True)
class Entry:
    id: str
    at: datetime
    kind: str
    action: str
    title: str
    stage: str | None
    actor: str | None
    summary: str
    details: dict[str, Any]
    severity: str | None = None


def kind_of(action: str) -> str:
    if action in ACTIONS:
        return ACTIONS[action][0]
    if action.startswith("webhook"):
        return "pipeline"
    return "other"


def _actions_of(kind: str) -> list[str]:
    return [action for action, (k, _) in ACTIONS.items() if k == kind]


def _audit_kind_filter(kinds: set[str]):
    clauses = [AuditLog.action.in_(_actions_of(k)) for k in kinds if k not in ("other", "errors")]
    if "pipeline" in kinds:
        clauses.append(AuditLog.action.like("webhook%"))
    if "other" in kinds:
        clauses.append(and_(AuditLog.action.notin_(list(ACTIONS)), AuditLog.action.notlike("webhook%")))
    return or_(*clauses) if clauses else literal(False)


def order_timeline(
    order_id: str,
    *,
    kinds: list[str] | set[str] | None = None,
    stage: str | None = None,
    limit: int = 200,
) -> list[Entry]:
    """The order's history as one list, newest first; ``kinds`` (keys of KINDS) and ``stage`` narrow it.

    Unknown kinds and stages are ignored rather than refused: a timeline filter is a view, not input
    that changes anything.
    """
    wanted = {k for k in (kinds or KINDS) if k in KINDS} or set(KINDS)
    stage = stage if stage in STAGE_NAMES else None
    limit = max(1, min(int(limit), MAX_LIMIT))
    parts = []
    if wanted - {"errors"}:
        audit_q = select(
            cast(AuditLog.id, String).label("id"), AuditLog.created_at.label("at"), literal("audit").label("source"),
            AuditLog.action.label("action"), AuditLog.stage.label("stage"), AuditLog.reviewer_email.label("actor"),
            AuditLog.details.label("details"), literal(None, String).label("message"),
            literal(None, String).label("severity"),
        ).where(AuditLog.order_id == order_id, _audit_kind_filter(wanted))
        if stage:
            audit_q = audit_q.where(AuditLog.stage == stage)
        parts.append(audit_q)
    if "errors" in wanted:
        error_stage = ErrorLog.details["stage"].astext
        error_q = select(
            ErrorLog.error_id.label("id"), ErrorLog.created_at.label("at"), literal("error").label("source"),
            ErrorLog.error_type.label("action"), error_stage.label("stage"), ErrorLog.user_id.label("actor"),
            ErrorLog.details.label("details"), ErrorLog.message.label("message"), ErrorLog.severity.label("severity"),
        ).where(ErrorLog.details["order_id"].astext == order_id)
        if stage:
            error_q = error_q.where(error_stage == stage)
        parts.append(error_q)
    union = union_all(*parts).subquery()
    rows = db.session.execute(select(union).order_by(union.c.at.desc(), union.c.id.desc()).limit(limit)).all()
    return [_entry(row) for row in rows]


def _entry(row) -> Entry:
    details = row.details if isinstance(row.details, dict) else {}
    if row.source == "error":
        return Entry(row.id, row.at, "errors", row.action, f"Error: {row.action}", row.stage, row.actor,
                     row.message or "", details, row.severity)
    kind = kind_of(row.action)
    title = ACTIONS.get(row.action, (kind, row.action.replace("_", " ").capitalize()))[1]
    return Entry(row.id, row.at, kind, row.action, title, row.stage, row.actor, summarise(row.action, details), details)


def summarise(action: str, details: dict[str, Any]) -> str:
    """One line a person reads in the timeline: why, what changed, until when."""
    if action == "stage_rejected":
        reasons = ", ".join(reason_label(r) for r in details.get("reasons") or [])
        notes = details.get("notes") or ""
        return " — ".join(part for part in (reasons, notes) if part)
    if action in ("stage_approved", "stage_reopened"):
        return details.get("notes") or ""
    if action == "stage_undone":
        return f"Took back: {str(details.get('undone_action', '')).removeprefix('stage_')}"
    if action == "approval_voided":
        changed = details.get("changed") or {}
        keys = [*changed.get("changed", []), *changed.get("added", []), *changed.get("removed", [])]
        what = f" ({', '.join(keys)})" if keys else ""
        return f"{details.get('reason') or 'The assets changed.'}{what}"
    if action in ("stage_claimed", "stage_claim_taken_over"):
        previous = details.get("previous_claimed_by")
        return f"from {previous}" if previous else ""
    if action == "claim_lapsed":
        return f"held by {details['claimed_by']}" if details.get("claimed_by") else ""
    if action == "asset_replaced":
        return f"{details.get('old_key')} → {details.get('new_key')}"
    if action == "stage_submitted":
        count = details.get("assets")
        return f"{count if isinstance(count, int) else len(count or [])} assets" if count is not None else ""
    return ""
