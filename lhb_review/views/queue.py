"""The review queue: stages waiting for a reviewer."""
from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required
from sqlalchemy import select

from ..extensions import db
from ..models import Order, ReviewStage

bp = Blueprint("queue", __name__)


@bp.get("/")
@bp.get("/queue")
@login_required
def index():
    rows = db.session.execute(
        select(ReviewStage, Order)
        .join(Order, Order.order_id == ReviewStage.order_id)
        .where(ReviewStage.status.in_(["pending", "in_review"]))
        .order_by(ReviewStage.created_at, ReviewStage.id)
        .limit(50)
    ).all()
    return render_template("queue/index.html", rows=rows)
