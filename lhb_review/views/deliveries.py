"""Admin pages of the webhook outbox: deliveries, their attempts, and a retry button."""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from lhb_review.core.paging import BadCursor, decode_cursor, keyset_page
from lhb_review.web.auth import admin_required, current_actor
from lhb_review.extensions import db
from lhb_review.models import WebhookDelivery
from lhb_review.pipeline import webhooks

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
    answer = 200
    try:
        cursor = decode_cursor("deliveries", request.args.get("before"))
    except BadCursor as exc:  # the first page, with the reason the link did not work
        flash(exc.message, "error")
        cursor, answer = None, exc.status
    found = keyset_page(query, WebhookDelivery.created_at, WebhookDelivery.id, cursor, limit=PAGE,
                        purpose="deliveries", newest_first=True)
    counts = dict(
        db.session.execute(
            select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
        ).all()
    )
    return render_template(
        "deliveries/index.html",
        rows=found.rows,
        counts=counts,
        status=status,
        order_id=order_id,
        statuses=STATUSES,
        next_before=found.next_cursor,
    ), answer


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
