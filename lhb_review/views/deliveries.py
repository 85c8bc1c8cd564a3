"""Admin pages of the webhook outbox: deliveries, their attempts, and a retry button."""

from __future__ import annotations

import uuid
from datetime import datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import and_, func, or_, select

from lhb_review.web.auth import admin_required, current_actor
from lhb_review.extensions import db
from lhb_review.models import WebhookDelivery
from lhb_review.pipeline import webhooks
from lhb_review.core.paging import position

bp = Blueprint("deliveries", __name__, url_prefix="/admin/deliveries")
PAGE = 50
STATUSES = ("pending", "delivered", "failed")


@bp.get("/")
@admin_required
def index():
    status = request.args.get("status") or None
    order_id = (request.args.get("order_id") or "").strip()[:255] or None
    if status not in STATUSES:
        status = None
    query = select(WebhookDelivery)
    if status:
        query = query.where(WebhookDelivery.status == status)
    if order_id:
        query = query.where(WebhookDelivery.order_id == order_id)
    before = parse_before(request.args.get("before"))
    if before:
        created, row_id = before
        query = query.where(
            or_(
                WebhookDelivery.created_at < created,
                and_(WebhookDelivery.created_at == created, WebhookDelivery.id < row_id),
            )
        )
    rows = db.session.scalars(
        query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(PAGE + 1)
    ).all()
    counts = dict(
        db.session.execute(
            select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
        ).all()
    )
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    next_before = f"{rows[-1].created_at.isoformat()}_{rows[-1].id}" if more else None
    return render_template(
        "deliveries/index.html",
        rows=rows,
        counts=counts,
        status=status,
        order_id=order_id,
        statuses=STATUSES,
        next_before=next_before,
    )


def parse_before(value: str | None) -> tuple[datetime, uuid.UUID] | None:
    if not value:
        return None
    created, _, row_id = value.rpartition("_")
    try:
        return position(created, row_id)
    except ValueError:
        return None


def load(delivery_id: str) -> WebhookDelivery:
    try:
        key = uuid.UUID(delivery_id)
    except ValueError:
        abort(404)
    row = db.session.get(WebhookDelivery, key)
    if row is None:
        abort(404)
    return row


@bp.get("/<delivery_id>")
@admin_required
def detail(delivery_id: str):
    return render_template("deliveries/detail.html", delivery=load(delivery_id))


@bp.post("/<delivery_id>/retry")
@admin_required
def retry(delivery_id: str):
    row = load(delivery_id)
    if row.status == "delivered":
        flash("This delivery was already delivered; nothing to retry.", "error")
    else:
        webhooks.retry_now(current_actor(), row.id)
        flash("The delivery is due now; a running worker sends it within seconds.", "info")
    return redirect(url_for("deliveries.detail", delivery_id=delivery_id), 303)
