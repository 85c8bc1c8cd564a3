"""Prometheus metrics: requests, latency, the connection pool, the review backlog, decisions and errors.

Under gunicorn with several workers each process has its own counters. Set PROMETHEUS_MULTIPROC_DIR to
an empty directory shared by the workers (cleared before gunicorn starts) and prometheus-client writes
every worker's values there; /metrics then sums them (see docs/operations.md).
"""
from __future__ import annotations

import os
import time

from flask import Flask, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import event, text

from lhb_review.core import audit
from lhb_review.extensions import db
from lhb_review.ops.errorlog import ERRORS  # noqa: F401 - exported with the other metrics

DECISION_ACTIONS = {"stage_approved": "approved", "stage_rejected": "rejected", "stage_reopened": "reopened"}
WAITING_STATUSES = ("pending", "in_review")

REQUESTS = Counter(
    "lhb_http_requests_total", "HTTP requests answered, by route, method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "lhb_http_request_duration_seconds", "Time to answer an HTTP request, by route, method and status.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DECISIONS = Counter(
    "lhb_decisions_total", "Review decisions committed, by stage and outcome.", ["stage", "outcome"],
)
READ_REQUESTS = Counter(
    "lhb_db_read_requests_total",
    "Read-only requests by the server that answered their reads ('primary' or a replica's host:port/db); "
    "counted only when replicas are configured.",
    ["target"],
)
REPLICA_SKIPS = Counter(
    "lhb_db_replica_skips_total",
    "Times a replica was passed over for a read-only request, by replica and reason "
    "(unavailable, lagging, not_a_standby, cooling_down, behind_session, position_unknown).",
    ["replica", "reason"],
)
REPLICA_FALLBACKS = Counter(
    "lhb_db_replica_fallbacks_total",
    "Read-only requests served from the primary although replicas are configured, by the first reason.",
    ["reason"],
)
# livesum: in multiprocess mode the pool gauges of live workers are added up.
POOL_IN_USE = Gauge("lhb_db_pool_in_use", "Database connections checked out of the pool.",
                    multiprocess_mode="livesum")
POOL_IDLE = Gauge("lhb_db_pool_idle", "Database connections open and idle in the pool.",
                  multiprocess_mode="livesum")
POOL_OVERFLOW = Gauge("lhb_db_pool_overflow", "Connections open beyond the pool size (negative: room left).",
                      multiprocess_mode="livesum")


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")


class BacklogCollector:
    """Stages waiting, by stage and status, read from the database at scrape time.

    The backlog is shared state, so it is read once per scrape rather than counted in each worker.
    """

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        family = GaugeMetricFamily(
            "lhb_stages_waiting", "Review stages waiting for a decision, by stage and status.",
            labels=["stage", "status"],
        )
        with self.app.app_context():
            with db.engine.connect() as conn:
                rows = conn.execute(text(
                    "SELECT stage_name, status, count(*) FROM review_stages "
                    "WHERE status IN ('pending', 'in_review') GROUP BY stage_name, status"
                )).all()
        for stage, status, count in rows:
            family.add_metric([stage, status], count)
        yield family


def render(app: Flask) -> tuple[bytes, str]:
    """The exposition text for /metrics: this process's (or every worker's) metrics plus the backlog."""
    directory = multiprocess_dir()
    if directory:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
    else:
        registry = CollectorRegistry()
        registry.register(_DefaultRegistryProxy())
    _update_pool_gauges(db.engine.pool)
    registry.register(BacklogCollector(app))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _DefaultRegistryProxy:
    """The process-wide registry, wrapped so a per-scrape registry can add the backlog beside it."""

    def collect(self):
        return REGISTRY.collect()


def _update_pool_gauges(pool) -> None:
    try:
        POOL_IN_USE.set(pool.checkedout())
        POOL_IDLE.set(pool.checkedin())
        POOL_OVERFLOW.set(pool.overflow())
    except AttributeError:  # a pool without these counters (NullPool, StaticPool)
        pass


def _watch_pool(engine) -> None:
    pool = engine.pool
    for name in ("checkout", "checkin", "connect", "close", "invalidate"):
        event.listen(pool, name, lambda *args, _pool=pool: _update_pool_gauges(_pool))


def _watch_decisions(session) -> None:
    """Count decisions when their transaction commits (the audit rows it wrote are the witnesses)."""

    @event.listens_for(session, "after_commit")
    def _count(sess):
        for action, stage in sess.info.pop(audit.WRITTEN, []):
            if action in DECISION_ACTIONS:
                DECISIONS.labels(stage=stage or "", outcome=DECISION_ACTIONS[action]).inc()

    @event.listens_for(session, "after_soft_rollback")
    def _forget(sess, previous_transaction):
        sess.info.pop(audit.WRITTEN, None)


_session_watched = False


def init_app(app: Flask) -> None:
    global _session_watched
    with app.app_context():
        _watch_pool(db.engine)
    if not _session_watched:
        # db.session is a scoped_session; listening on its class covers every app's sessions once.
        from sqlalchemy.orm import Session

        _watch_decisions(Session)
        _session_watched = True

    @app.before_request
    def _start_timer():
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _observe(response):
        started = getattr(g, "metrics_started", None)
        if started is not None:
            rule = request.url_rule
            route = rule.rule if rule is not None else "<unmatched>"
            labels = {"route": route, "method": request.method, "status": str(response.status_code)}
            REQUESTS.labels(**labels).inc()
            LATENCY.labels(**labels).observe(time.perf_counter() - started)
        return response
