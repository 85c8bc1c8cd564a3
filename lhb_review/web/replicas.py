"""Which server answers a request: read-only pages and API GETs from a replica that has replayed the asker's writes."""
from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict

from flask import Flask, current_app, g, request, session
from redis.exceptions import RedisError

from lhb_review.core import routing
from lhb_review.extensions import READ_ENGINE, db
from lhb_review.web.metrics import READ_REQUESTS, REPLICA_FALLBACKS, REPLICA_SKIPS

log = logging.getLogger(__name__)

# The pages and endpoints that only read. Everything else (every POST, sign-in, the admin's forms, health
# checks) reads from the primary; so does any read inside core.tx.transaction(), whatever the request.
READ_ONLY_ENDPOINTS = frozenset({
    "queue.index", "queue.start",
    "orders.order", "orders.order_timeline",
    "review.stage", "review.panel", "review.presence", "review.action_page", "review.go_next",
    "stats.index", "stats.reject_report",
    "admin.errors", "admin.error_detail", "admin.audit_log", "admin.audit_csv",
    "api.get_order", "api.get_stage", "api.list_stages",
})
READ_METHODS = frozenset({"GET", "HEAD"})
SESSION_KEY = "lhb_wal"  # the reviewer's last write position, in their (signed) session cookie
TOKEN_POSITION_TTL_SECONDS = 3600


class TokenPositions:
    """The last write position per API token: in Redis when REDIS_URL is set (shared by every app server),
    else in this process (one app server). Keyed by a hash of the bearer value, never the value itself."""

    def __init__(self, redis_url: str | None, prefix: str, capacity: int = 10_000):
        self.prefix = prefix
        self.capacity = capacity
        self._memory: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()
        self._redis = None
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)

    def _key(self, bearer: str) -> str:
        return f"{self.prefix}:wal:{hashlib.sha256(bearer.encode()).hexdigest()[:32]}"

    def get(self, bearer: str) -> int | None:
        """The position, 0 when the token has written nothing lately; None when it cannot be known now."""
        key = self._key(bearer)
        if self._redis is None:
            with self._lock:
                return self._memory.get(key, 0)
        try:
            score = self._redis.zscore(key, "lsn")
        except RedisError as exc:  # Redis down or slow: the asker reads from the primary
            log.warning("write positions unavailable in Redis: %s", exc)
            return None
        return int(score or 0)

    def put(self, bearer: str, position: int) -> None:
        key = self._key(bearer)
        if self._redis is None:
            with self._lock:
                self._memory[key] = max(position, self._memory.get(key, 0))
                self._memory.move_to_end(key)
                while len(self._memory) > self.capacity:
                    self._memory.popitem(last=False)
            return
        try:
            # ZADD GT keeps the larger position when two app servers record the same token's writes at once.
            with self._redis.pipeline() as pipe:
                pipe.zadd(key, {"lsn": position}, gt=True)
                pipe.expire(key, TOKEN_POSITION_TTL_SECONDS)
                pipe.execute()
        except RedisError as exc:
            log.warning("could not record a write position in Redis: %s", exc)


def bearer() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return (value.strip() or None) if scheme.lower() == "bearer" else None


def asker_position() -> int | None:
    """The WAL position the asker's reads must see: their last write's (0: none); None when unknown."""
    token = bearer()
    if token is not None:
        return current_app.extensions["lhb_token_positions"].get(token)
    return routing.lsn_value(session.get(SESSION_KEY))


def choose_reads() -> None:
    """Before a read-only request: read from a replica that is up, current enough and past the asker's write."""
    if request.method not in READ_METHODS or request.endpoint not in READ_ONLY_ENDPOINTS:
        return
    router: routing.ReplicaRouter = current_app.extensions[routing.EXTENSION]
    position = asker_position()
    if position is None:
        choice = routing.Choice(replica=None, skipped=[("*", "position_unknown")])
    else:
        choice = router.choose(position)
    for name, reason in choice.skipped:
        REPLICA_SKIPS.labels(replica=name, reason=reason).inc()
    if choice.replica is None:
        if choice.skipped:
            REPLICA_FALLBACKS.labels(reason=choice.skipped[0][1]).inc()
        READ_REQUESTS.labels(target="primary").inc()
        g.lhb_read_target = "primary"
        return
    db.session.info[READ_ENGINE] = choice.connection
    READ_REQUESTS.labels(target=choice.replica.name).inc()
    g.lhb_read_target = choice.replica.name


def remember_writes(response):
    """After any request that committed: keep its WAL position for the asker's next reads."""
    lsn = db.session.info.pop(routing.COMMIT_LSN, None)
    if lsn is None:
        return response
    token = bearer()
    if token is not None:
        current_app.extensions["lhb_token_positions"].put(token, routing.lsn_value(lsn))
    elif routing.lsn_value(lsn) > routing.lsn_value(session.get(SESSION_KEY)):
        session[SESSION_KEY] = lsn
    return response


def end_reads(_error: BaseException | None = None) -> None:
    """The request's replica transaction ends with it (a test's app context may outlive the request)."""
    routing.use_primary(db.session)
    db.session.info.pop(routing.COMMIT_LSN, None)


def init_app(app: Flask) -> None:
    """Route reads when DATABASE_REPLICA_URLS names replicas; otherwise register nothing at all."""
    urls = app.config["DATABASE_REPLICA_URLS"]
    if not urls:
        return
    options = dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"])
    connect_args = dict(options.get("connect_args", {}))
    connect_args["connect_timeout"] = app.config["REPLICA_CONNECT_TIMEOUT_SECONDS"]
    connect_args["application_name"] = "lhb-review-replica-reads"
    # Belt and braces: a replica URL that points at a primary by mistake still refuses writes.
    connect_args["options"] = (connect_args.get("options", "") + " -c default_transaction_read_only=on").strip()
    options["connect_args"] = connect_args
    options["pool_timeout"] = app.config["REPLICA_CONNECT_TIMEOUT_SECONDS"]
    options["pool_pre_ping"] = False  # the routing check on each checkout is the liveness test
    with app.app_context():
        primary = db.engine
    app.extensions[routing.EXTENSION] = routing.ReplicaRouter(
        lambda: primary, urls, options, max_lag_ms=app.config["REPLICA_MAX_LAG_MS"],
        cooldown_seconds=app.config["REPLICA_COOLDOWN_SECONDS"],
    )
    redis_url = app.config["RATELIMIT_STORAGE_URI"]
    app.extensions["lhb_token_positions"] = TokenPositions(
        redis_url if redis_url.startswith(("redis://", "rediss://")) else None, app.config["RATELIMIT_KEY_PREFIX"],
    )
    app.before_request(choose_reads)
    app.after_request(remember_writes)
    app.teardown_request(end_reads)
