"""Instruments for bench/run.py, active only when BENCH is set: SQL statement counts and a bare route.

With BENCH off (always in production) nothing here is registered: no extra route, no header, no hook.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, Flask, abort, g, has_request_context, jsonify
from sqlalchemy import event, select

from .extensions import csrf, db
from .models import Order

SQL_COUNT_HEADER = "X-SQL-Count"
bp = Blueprint("bench", __name__, url_prefix="/_bench")


@bp.get("/orders/<order_key>")
def bare_order(order_key: str):
    """The baseline: one primary-key lookup returned as JSON, with no login, template or audit."""
    try:
        key = uuid.UUID(order_key)
    except ValueError:
        abort(404)
    row = db.session.execute(
        select(Order.order_id, Order.status, Order.platform, Order.project).where(Order.id == key)
    ).one_or_none()
    if row is None:
        abort(404)
    return jsonify(row._asdict())


def count_statement(conn, cursor, statement, parameters, context, executemany) -> None:
    if has_request_context():
        g.sql_count = g.get("sql_count", 0) + 1


def init_app(app: Flask) -> None:
    if not app.config.get("BENCH"):
        return
    csrf.exempt(bp)
    app.register_blueprint(bp)
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", count_statement)

    @app.after_request
    def sql_count_header(response):
        response.headers[SQL_COUNT_HEADER] = str(g.get("sql_count", 0))
        return response
