"""Instruments for bench/run.py around the app as production builds it: SQL statement counts and a bare route.

gunicorn serves ``bench.instruments:app`` in benchmark runs; the app that ``wsgi.py`` serves has none of this.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, Flask, abort, g, has_request_context, jsonify
from sqlalchemy import event, select

from lhb_review import create_app
from lhb_review.extensions import csrf, db
from lhb_review.models import Order

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


def instrument(app: Flask) -> Flask:
    """Add the bare route and the X-SQL-Count header to an app made by create_app()."""
    csrf.exempt(bp)
    app.register_blueprint(bp)
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", count_statement)

    @app.after_request
    def sql_count_header(response):
        response.headers[SQL_COUNT_HEADER] = str(g.get("sql_count", 0))
        return response

    return app


def create_bench_app(config: dict | None = None, env: dict | None = None) -> Flask:
    return instrument(create_app(config, env))


def __getattr__(name: str):
    # gunicorn imports ``bench.instruments:app``; the app is built on first access, not on every import.
    if name == "app":
        globals()["app"] = application = create_bench_app()
        return application
    raise AttributeError(name)
