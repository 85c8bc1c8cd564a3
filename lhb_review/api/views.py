"""The API's endpoints: orders, stage submissions and status, approve, the waiting list, OpenAPI."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime

from flask import jsonify, request, url_for
from sqlalchemy import String, and_, bindparam, or_, select, tuple_

from lhb_review.extensions import db
from lhb_review.models import Approval, ApprovalFingerprint, AuditLog, Order, ReviewStage
from lhb_review.models.core import stage_assets
from lhb_review.review import decisions, outbox, submissions
from lhb_review.review.checks import stage_checks
from lhb_review.pipeline import orders
from lhb_review.review.approvals import stage_statuses, status_answer
from lhb_review.core.errors import AlreadyDecided, Invalid, NotFound
from lhb_review.core.stages import STAGE_NAMES, StageStatus, parse_stage
from lhb_review.api.common import api_actor, bp, json_body
from lhb_review.api.openapi import build_spec

STATUSES = tuple(s.value for s in StageStatus)
DEFAULT_LIMIT, MAX_LIMIT = 50, 200
MAX_NOTES_BYTES = 20000


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def order_json(order: Order, stages: list[dict]) -> dict:
    return {
        "order_id": order.order_id,
        "platform": order.platform,
        "amazon_order_id": order.amazon_order_id,
        "project": order.project,
        "customer_first_name": order.customer_first_name,
        "customer_last_name": order.customer_last_name,
        "customer_email": order.customer_email,
        "order_date": iso(order.order_date),
        "status": order.status,
        "ai_generation_started_at": iso(order.ai_generation_started_at),
        "character_hash": order.character_hash,
        "character_path": order.character_path,
        "template_path": order.template_path,
        "character_specs": order.character_specs,
        "book_specs": order.book_specs,
        "order_details": order.order_details,
        "asset_prefix": order.asset_prefix,
        # Secrets are write-only: the pipeline sees which URLs are signed with their own secret.
        "webhooks": [
            {"url": t["url"], "has_secret": "secret" in t} for t in outbox.webhook_targets(order.webhooks)
        ],
        "created_at": iso(order.created_at),
        "updated_at": iso(order.updated_at),
        "stages": stages,
    }


def stage_views(
    pairs: list[tuple[ReviewStage | None, str, str]], orders_by_id: dict[str, Order]
) -> list[dict]:
    """Stage answers for (row or None, order_id, stage) triples, in three queries whatever their number."""
    if not pairs:
        return []
    keys = [(order_id, stage) for _, order_id, stage in pairs]
    approvals = stage_statuses(keys)
    reasons = dict(
        ((r.order_id, r.stage), r.details)
        for r in db.session.execute(
            select(AuditLog.order_id, AuditLog.stage, AuditLog.details)
            .where(
                tuple_(AuditLog.order_id, AuditLog.stage).in_(keys),
                AuditLog.action.in_(outbox.DECISION_ACTIONS),
            )
            .order_by(AuditLog.order_id, AuditLog.stage, AuditLog.created_at.desc(), AuditLog.id.desc())
            .distinct(AuditLog.order_id, AuditLog.stage)
        )
    )
    return [
        stage_view(
            row,
            order_id,
            stage,
            orders_by_id[order_id].assets_for(stage) if order_id in orders_by_id else [],
            approvals.get((order_id, stage)),
            reasons.get((order_id, stage)),
        )
        for row, order_id, stage in pairs
    ]


def stage_view(
    row: ReviewStage | None,
    order_id: str,
    stage: str,
    assets: list[dict],
    approval_status: str | None,
    last_decision: dict | None,
) -> dict:
    """The answer for one stage: the seed's approved/pending, the review state and the assets.

    ``row`` is the stage's review_stages row (or any row with its columns), None when not submitted.
    """
    stage_reasons = last_decision.get("reasons") if isinstance(last_decision, dict) else None
    return {
        "order_id": order_id,
        "stage": stage,
        "status": "approved" if approval_status == "approved" else "pending",
        "review_status": row.status if row else None,
        "reviewer": row.reviewer_email if row else None,
        "notes": row.reviewer_notes if row else None,
        "reasons": stage_reasons if isinstance(stage_reasons, list) else [],
        "reviewed_at": iso(row.reviewed_at) if row else None,
        "submitted_at": iso(row.created_at) if row else None,
        "updated_at": iso(row.updated_at) if row else None,
        "assets": assets,
    }


def load_order(order_id: str) -> Order:
    order = db.session.scalar(select(Order).where(Order.order_id == order_id))
    if order is None:
        raise NotFound(f"There is no order {order_id}.", order_id=order_id)
    return order


def full_order_json(order: Order) -> dict:
    rows = db.session.scalars(select(ReviewStage).where(ReviewStage.order_id == order.order_id)).all()
    by_name = {r.stage_name: r for r in rows}
    pairs = [(by_name[name], order.order_id, name) for name in STAGE_NAMES if name in by_name]
    return order_json(order, stage_views(pairs, {order.order_id: order}))


def _stage_status_statement():
    """The polled stage answer as one statement, built once: the stage row, its assets, its approvals row with
    the fingerprint its approval recorded, and its last decision, each outer-joined to the asked-for
    (order_id, stage) pair, so any may be missing."""
    pair = select(
        bindparam("order_id", type_=String).label("order_id"), bindparam("stage", type_=String).label("stage")
    ).subquery("pair")
    last_decision = (
        select(AuditLog.details)
        .where(
            AuditLog.order_id == pair.c.order_id,
            AuditLog.stage == pair.c.stage,
            AuditLog.action.in_(outbox.DECISION_ACTIONS),
        )
        .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(
            ReviewStage.id,
            ReviewStage.status,
            ReviewStage.reviewer_email,
            ReviewStage.reviewer_notes,
            ReviewStage.reviewed_at,
            ReviewStage.created_at,
            ReviewStage.updated_at,
            Order.id.label("order_key"),
            Order.r2_assets[pair.c.stage].label("assets"),
            Approval.status.label("approval_status"),
            ApprovalFingerprint.fingerprint.label("approved_fingerprint"),
            last_decision.label("last_decision"),
        )
        .select_from(pair)
        .outerjoin(Order, Order.order_id == pair.c.order_id)
        .outerjoin(
            ReviewStage, and_(ReviewStage.order_id == pair.c.order_id, ReviewStage.stage_name == pair.c.stage)
        )
        .outerjoin(Approval, and_(Approval.order_id == pair.c.order_id, Approval.stage == pair.c.stage))
        .outerjoin(
            ApprovalFingerprint,
            and_(ApprovalFingerprint.order_id == pair.c.order_id, ApprovalFingerprint.stage == pair.c.stage),
        )
    )


STAGE_STATUS = _stage_status_statement()


def stage_json(order_id: str, stage: str) -> dict:
    """One stage's answer in one statement of plain columns (no ORM objects): the pipeline polls this.
    An approval imported before its order arrived still answers."""
    found = db.session.execute(STAGE_STATUS, {"order_id": order_id, "stage": stage}).one()
    if found.order_key is None and found.id is None and found.approval_status is None:
        raise NotFound(f"There is no order {order_id}.", order_id=order_id)
    answer = stage_view(
        found if found.id is not None else None,
        order_id,
        stage,
        stage_assets(found.assets),
        status_answer(found.approval_status, found.approved_fingerprint, found.assets),
        found.last_decision,
    )
    answer["checks"] = stage_checks(order_id, stage)
    return answer


@bp.put("/orders/<order_id>")
def put_order(order_id: str):
    body = json_body()
    outcome = orders.upsert(api_actor(), order_id, body)
    db.session.expire_all()
    order = load_order(order_id)
    response = jsonify(
        {"result": outcome.result, "changed": list(outcome.changed), "order": full_order_json(order)}
    )
    response.status_code = 201 if outcome.result == "created" else 200
    response.headers["Location"] = url_for("api.get_order", order_id=order_id)
    return response


@bp.get("/orders/<order_id>")
def get_order(order_id: str):
    return jsonify(full_order_json(load_order(order_id)))


@bp.put("/orders/<order_id>/stages/<stage>")
def put_stage(order_id: str, stage: str):
    parsed = parse_stage(stage)
    body = json_body()
    if not isinstance(body, dict):
        raise Invalid("The body must be a JSON object with an assets list.", {"body": "A JSON object."})
    unknown = set(body) - {"assets"}
    if unknown:
        raise Invalid("Unknown fields in the body.", {str(k)[:100]: "Unknown field." for k in unknown})
    outcome = submissions.submit(api_actor(), order_id, parsed.value, body.get("assets"))
    db.session.expire_all()
    response = jsonify({"result": outcome.result, "stage": stage_json(order_id, parsed.value)})
    response.status_code = 201 if outcome.result == "created" else 200
    response.headers["Location"] = url_for("api.get_stage", order_id=order_id, stage=parsed.value)
    return response


@bp.get("/orders/<order_id>/stages/<stage>")
def get_stage(order_id: str, stage: str):
    return jsonify(stage_json(order_id, parse_stage(stage).value))


@bp.post("/orders/<order_id>/stages/<stage>/approve")
def approve_stage(order_id: str, stage: str):
    parsed = parse_stage(stage)
    body = json_body(optional=True)
    if body is None and not request.get_data(cache=True).strip():
        body = {}
    if not isinstance(body, dict):
        raise Invalid("The body must be a JSON object (or empty).", {"body": "A JSON object."})
    unknown = set(body) - {"notes"}
    if unknown:
        raise Invalid("Unknown fields in the body.", {str(k)[:100]: "Unknown field." for k in unknown})
    notes = body.get("notes")
    if notes is not None and (not isinstance(notes, str) or len(notes) > decisions.MAX_NOTES):
        raise Invalid("Notes must be text.", {"notes": f"Text of at most {decisions.MAX_NOTES} characters."})
    actor = api_actor()
    result = "approved"
    try:
        decisions.approve(actor, order_id, parsed.value, notes=notes)
    except AlreadyDecided as exc:
        # A retried request: the stage is approved by this very token, so the answer is the same.
        if exc.context.get("status") != "approved" or exc.context.get("reviewer") != actor.email:
            raise
        result = "already_approved"
    db.session.expire_all()
    return jsonify({"result": result, "stage": stage_json(order_id, parsed.value)})


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, row_id = json.loads(raw)
        parsed = datetime.fromisoformat(created)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed, uuid.UUID(row_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, AttributeError):
        raise Invalid(
            "The cursor is not one this API gave out.", {"cursor": "Use next_cursor as given."}
        ) from None


def parse_list_args() -> tuple[list[str], str | None, int, tuple[datetime, uuid.UUID] | None]:
    errors: dict[str, str] = {}
    unknown = set(request.args) - {"status", "stage", "limit", "cursor"}
    for name in unknown:
        errors[name[:100]] = "Unknown parameter."
    statuses = [s.strip() for s in request.args.get("status", "pending,in_review").split(",") if s.strip()]
    if not statuses or any(s not in STATUSES for s in statuses):
        errors["status"] = f"One or more of {', '.join(STATUSES)}, separated by commas."
    stage = request.args.get("stage")
    if stage is not None and stage not in STAGE_NAMES:
        errors["stage"] = f"One of {', '.join(STAGE_NAMES)}."
    limit_raw = request.args.get("limit", str(DEFAULT_LIMIT))
    limit = int(limit_raw) if limit_raw.isascii() and limit_raw.isdigit() and len(limit_raw) < 6 else 0
    if not 1 <= limit <= MAX_LIMIT:
        errors["limit"] = f"A whole number from 1 to {MAX_LIMIT}."
    if errors:
        raise Invalid("Some query parameters are not valid.", errors)
    cursor = request.args.get("cursor")
    return statuses, stage, limit, decode_cursor(cursor) if cursor else None


@bp.get("/stages")
def list_stages():
    """Stages by status (waiting by default), oldest first, keyset-paginated on (created_at, id)."""
    statuses, stage, limit, after = parse_list_args()
    query = select(ReviewStage).where(ReviewStage.status.in_(statuses), ReviewStage.created_at.is_not(None))
    if stage:
        query = query.where(ReviewStage.stage_name == stage)
    if after:
        created, row_id = after
        query = query.where(
            or_(
                ReviewStage.created_at > created,
                and_(ReviewStage.created_at == created, ReviewStage.id > row_id),
            )
        )
    rows = db.session.scalars(query.order_by(ReviewStage.created_at, ReviewStage.id).limit(limit + 1)).all()
    page, more = rows[:limit], len(rows) > limit
    order_ids = {r.order_id for r in page}
    orders_by_id = {
        o.order_id: o for o in db.session.scalars(select(Order).where(Order.order_id.in_(order_ids)))
    }
    items = stage_views([(r, r.order_id, r.stage_name) for r in page], orders_by_id)
    for item in items:
        order = orders_by_id.get(item["order_id"])
        item["platform"] = order.platform if order else None
        item["project"] = order.project if order else None
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if more else None
    return jsonify({"items": items, "next_cursor": next_cursor})


@bp.get("/openapi.json")
def openapi():
    return jsonify(build_spec())
