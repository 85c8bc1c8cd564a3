"""Request ids, log format (text or JSON lines) and slow-statement logging."""
from __future__ import annotations

import json
import logging
import re
import time
import uuid
from datetime import datetime, timezone

from flask import Flask, g, has_request_context, request
from sqlalchemy import event

log = logging.getLogger("lhb_review.sql")

REQUEST_ID_HEADER = "X-Request-ID"
# Ids from a proxy or the pipeline are kept only when they are short and plain, so a forged header can
# neither bloat error_logs.request_id (100 chars) nor smuggle newlines into the log.
SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,100}$")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
MAX_LOGGED_STATEMENT = 500


def new_request_id() -> str:
    return uuid.uuid4().hex


def choose_request_id(incoming: str | None) -> str:
    """The caller's X-Request-ID when it is sane, otherwise a fresh one."""
    if incoming and SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return new_request_id()


def current_request_id() -> str | None:
    if has_request_context():
        return getattr(g, "request_id", None)
    return None


def current_route() -> str | None:
    """The URL rule of the current request (``/orders/<order_id>``), not the raw path: bounded cardinality."""
    if not has_request_context():
        return None
    rule = request.url_rule
    return rule.rule if rule is not None else "<unmatched>"


class RequestIdFilter(logging.Filter):
    """Gives every log record a ``request_id`` (``-`` outside a request), so every line carries one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id") or record.request_id is None:
            record.request_id = current_request_id() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or "-",
        }
        for key, value in vars(record).items():
            if key not in self.RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def make_formatter(log_format: str) -> logging.Formatter:
    if str(log_format).lower() == "json":
        return JsonFormatter()
    return logging.Formatter(TEXT_FORMAT)


def configure_log_handlers(log_format: str) -> None:
    """Put the request-id filter and the chosen format on every handler of the root logger."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    formatter = make_formatter(log_format)
    for handler in root.handlers:
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())
        # pytest's capture handlers keep their own format; ours only replaces plain stream handlers.
        if type(handler) in (logging.StreamHandler, logging.FileHandler):
            handler.setFormatter(formatter)


def init_app(app: Flask) -> None:
    configure_log_handlers(app.config.get("LOG_FORMAT", "text"))

    @app.before_request
    def assign_request_id():
        g.request_id = choose_request_id(request.headers.get(REQUEST_ID_HEADER))
        g.request_started = time.perf_counter()

    @app.after_request
    def return_request_id(response):
        request_id = getattr(g, "request_id", None)
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        return response

    with app.app_context():
        from lhb_review.extensions import db

        watch_slow_statements(db.engine, app.config.get("SLOW_QUERY_MS", 500))


def watch_slow_statements(engine, threshold_ms: int) -> None:
    """Log every statement slower than ``threshold_ms`` with its duration and the route that ran it."""
    if threshold_ms is None or int(threshold_ms) < 0:
        return
    threshold = int(threshold_ms) / 1000.0

    @event.listens_for(engine, "before_cursor_execute")
    def _start(conn, cursor, statement, parameters, context, executemany):
        conn.info.setdefault("lhb_statement_started", []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _finish(conn, cursor, statement, parameters, context, executemany):
        started = conn.info.get("lhb_statement_started")
        if not started:
            return
        elapsed = time.perf_counter() - started.pop()
        if elapsed >= threshold:
            text = " ".join(statement.split())
            if len(text) > MAX_LOGGED_STATEMENT:
                text = text[:MAX_LOGGED_STATEMENT] + "..."
            log.warning(
                "Slow statement: %.1f ms on route %s: %s",
                elapsed * 1000, current_route() or "(no request)", text,
                extra={"duration_ms": round(elapsed * 1000, 1), "route": current_route(), "statement": text},
            )

    @event.listens_for(engine, "handle_error")
    def _failed(context):
        conn = context.connection
        if conn is not None and conn.info.get("lhb_statement_started"):
            conn.info["lhb_statement_started"].pop()
