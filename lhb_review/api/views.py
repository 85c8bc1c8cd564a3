"""The API's endpoints: orders, stage submissions and status, approve, the waiting list, OpenAPI."""

from __future__ import annotations

from types import SimpleNamespace

from flask import current_app, request, url_for
from sqlalchemy import String, and_, bindparam, select, tuple_

from lhb_review.extensions import db
from lhb_review.models import Approval, ApprovalFingerprint, AuditLog, CheckRun, Order, ReviewStage
from lhb_review.models.core import asset_entries
from lhb_review import review
from lhb_review.core import paging
from lhb_review.review import outbox
from lhb_review.review.checks.jobs import summary as checks_summary
from lhb_review.pipeline import orders
from lhb_review.review.approvals import stage_statuses, status_answer
from lhb_review.core import contracts
from lhb_review.core.errors import AlreadyDecided, NotFound
from lhb_review.core.stages import STAGE_NAMES, parse_stage
from lhb_review.api.common import api_actor, bp, json_body
from lhb_review.api.spec import build_spec


def answer(model: type[contracts.View], value: dict, status: int = 200):
    """A JSON answer serialised through its model: what the document says is what is sent."""
    response = current_app.response_class(
        model.model_validate(value).model_dump_json(), status=status, mimetype="application/json"
    )
    return response


def order_json(order: Order, stages: list[dict]) -> dict:
    return {
        "order_id": order.order_id,
        "platform": order.platform,
        "amazon_order_id": order.amazon_order_id,
        "project": order.project,
        "customer_first_name": order.customer_first_name,
        "customer_last_name": order.customer_last_name,
        "customer_email": order.customer_email,
        "order_date": order.order_date,
        "status": order.status,
        "ai_generation_started_at": order.ai_generation_started_at,
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
        "created_at": order.created_at,
        "updated_at": order.updated_at,
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
        "reviewed_at": row.reviewed_at if row else None,
        "submitted_at": row.created_at if row else None,
        "updated_at": row.updated_at if row else None,
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
            CheckRun.state.label("check_state"),
            CheckRun.results.label("check_results"),
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
        .outerjoin(  # the stage's current machine-check run (one at most: ux_check_runs_current)
            CheckRun,
            and_(CheckRun.order_id == pair.c.order_id, CheckRun.stage == pair.c.stage, CheckRun.stale_at.is_(None)),
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
        asset_entries(found.assets),
        status_answer(found.approval_status, found.approved_fingerprint, found.assets),
        found.last_decision,
    )
    run = SimpleNamespace(state=found.check_state, results=found.check_results) if found.check_state else None
    answer["checks"] = checks_summary(run)
    return answer


@bp.put("/orders/<order_id>")
def put_order(order_id: str):
    body = json_body()
    outcome = orders.upsert(api_actor(), order_id, body)
    db.session.expire_all()
    order = load_order(order_id)
    response = answer(
        contracts.OrderResult,
        {"result": outcome.result, "changed": list(outcome.changed), "order": full_order_json(order)},
        201 if outcome.result == "created" else 200,
    )
    response.headers["Location"] = url_for("api.get_order", order_id=order_id)
    return response


@bp.get("/orders/<order_id>")
def get_order(order_id: str):
    return answer(contracts.OrderView, full_order_json(load_order(order_id)))


@bp.put("/orders/<order_id>/stages/<stage>")
def put_stage(order_id: str, stage: str):
    parsed = parse_stage(stage)
    body = json_body()
    contracts.checked(
        contracts.StageSubmission, body, "Some assets are not valid.",
        what="The body must be a JSON object with an assets list.",
    )
    outcome = review.submit(api_actor(), order_id, parsed.value, body["assets"])
    db.session.expire_all()
    response = answer(
        contracts.StageResult,
        {"result": outcome.result, "stage": stage_json(order_id, parsed.value)},
        201 if outcome.result == "created" else 200,
    )
    response.headers["Location"] = url_for("api.get_stage", order_id=order_id, stage=parsed.value)
    return response


@bp.get("/orders/<order_id>/stages/<stage>")
def get_stage(order_id: str, stage: str):
    return answer(contracts.StageView, stage_json(order_id, parse_stage(stage).value))


@bp.post("/orders/<order_id>/stages/<stage>/approve")
def approve_stage(order_id: str, stage: str):
    parsed = parse_stage(stage)
    body = json_body(optional=True)
    if body is None and not request.get_data(cache=True).strip():
        body = {}
    notes = contracts.checked(
        contracts.ApproveInput, body, "Notes must be text.", what="The body must be a JSON object (or empty)."
    ).notes
    actor = api_actor()
    result = "approved"
    try:
        review.approve(actor, order_id, parsed.value, notes=notes)
    except AlreadyDecided as exc:
        # A retried request: the stage is approved by this very token, so the answer is the same.
        if exc.context.get("status") != "approved" or exc.context.get("reviewer") != actor.email:
            raise
        result = "already_approved"
    db.session.expire_all()
    return answer(contracts.StageResult, {"result": result, "stage": stage_json(order_id, parsed.value)})


def parse_list_args() -> tuple[list[str], str | None, int, paging.Cursor | None]:
    known = contracts.StageListQuery.model_fields
    args = {name: request.args[name] for name in known if name in request.args}
    args.update({name: request.args[name] for name in request.args if name not in known})  # refused: unknown
    query = contracts.checked(contracts.StageListQuery, args, "Some query parameters are not valid.")
    return query.statuses(), query.stage, query.limit, paging.decode_cursor("api-stages", query.cursor)


@bp.get("/stages")
def list_stages():
    """Stages by status (waiting by default), oldest first, keyset-paginated on (created_at, id)."""
    statuses, stage, limit, after = parse_list_args()
    query = select(ReviewStage).where(ReviewStage.status.in_(statuses), ReviewStage.created_at.is_not(None))
    if stage:
        query = query.where(ReviewStage.stage_name == stage)
    found = paging.keyset_page(query, ReviewStage.created_at, ReviewStage.id, after, limit=limit,
                               purpose="api-stages")
    page = found.rows
    order_ids = {r.order_id for r in page}
    orders_by_id = {
        o.order_id: o for o in db.session.scalars(select(Order).where(Order.order_id.in_(order_ids)))
    }
    items = stage_views([(r, r.order_id, r.stage_name) for r in page], orders_by_id)
    for item in items:
        order = orders_by_id.get(item["order_id"])
        item["platform"] = order.platform if order else None
        item["project"] = order.project if order else None
    return answer(contracts.StagePage, {"items": items, "next_cursor": found.next_cursor})


@bp.get("/openapi.json")
def openapi():
    return current_app.json.response(build_spec())
