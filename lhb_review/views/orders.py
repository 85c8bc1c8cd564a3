"""The order page and the order's timeline."""
from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import login_required

from lhb_review.core.stages import STAGE_NAMES
from lhb_review.review import queries, timeline
from lhb_review.views.stage import load
from lhb_review.web.htmx import wants_fragment

bp = Blueprint("orders", __name__)


@bp.get("/orders/<order_id>")
@login_required
def order(order_id: str):
    found, _ = load(order_id)
    return render_template(
        "orders/show.html",
        order=found,
        stages=queries.stages_in_order(found),
        audit=queries.order_audit(order_id),
        audit_limit=queries.ORDER_AUDIT_LIMIT,
    )


@bp.get("/orders/<order_id>/timeline")
@login_required
def order_timeline(order_id: str):
    found, _ = load(order_id)
    kinds = [k for k in request.args.getlist("kind") if k in timeline.KINDS]
    stage = request.args.get("stage") if request.args.get("stage") in STAGE_NAMES else None
    entries = timeline.order_timeline(order_id, kinds=kinds or None, stage=stage)
    context = dict(order=found, entries=entries, kinds=timeline.KINDS, chosen=set(kinds), stage=stage,
                   stages=STAGE_NAMES)
    if wants_fragment():
        return render_template("orders/_timeline.html", **context)
    return render_template("orders/timeline.html", **context)
