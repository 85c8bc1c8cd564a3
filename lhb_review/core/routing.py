"""Read replicas: which replica may serve a read-only request now, and the WAL positions that decide it."""
from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass, field

from flask import current_app, has_app_context, has_request_context
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import scoped_session

from lhb_review.extensions import READ_ENGINE

log = logging.getLogger(__name__)
EXTENSION = "lhb_replicas"
COMMIT_LSN = "lhb_commit_lsn"  # session.info key: the WAL position after the request's last commit

# One statement on the standby: how far it has replayed, and how stale that makes it. A standby that has
# replayed all it received counts as current; one that is behind is as stale as its last replayed commit
# (unknown, when it has replayed none since it started, counts as infinitely stale).
CHECK = text(
    "SELECT pg_last_wal_replay_lsn()::text AS replayed, "
    "CASE WHEN pg_last_wal_receive_lsn() IS NULL OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() "
    "THEN 0 ELSE COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000, "
    "'Infinity'::float8) END AS lag_ms"
)
# Read after the commit: in the committing transaction the insert position precedes the commit record, and
# a replica replayed up to it would not show the commit yet.
CURRENT_LSN = text("SELECT pg_current_wal_insert_lsn()::text")


def lsn_value(lsn: str | None) -> int:
    """A pg_lsn's text form ('16/B374D848') as a number that orders as the WAL does; 0 for None."""
    if not lsn:
        return 0
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def use_primary(session) -> None:
    """From here on the session reads from the primary (a write transaction starts).

    What it read from a replica is expired, so nothing stale reaches the write: the replica's (read-only)
    transaction is rolled back and every loaded object reloads from the primary when next touched.
    """
    if isinstance(session, scoped_session):
        session = session()
    replica = session.info.pop(READ_ENGINE, None)
    if replica is None:
        return
    if session.in_transaction():
        session.rollback()
    if isinstance(replica, Connection):
        replica.close()  # its read-only transaction ends and it goes back to the replica's pool


def remember_commit(session) -> None:
    """After a commit, note the primary's WAL position for read-your-writes.

    Only when replicas exist and a request made the commit: workers and commands have no later reads to
    route, so they pay nothing.
    """
    router = current_router()
    if router is None or not has_request_context():
        return
    with router.primary().connect() as conn:
        lsn = conn.execute(CURRENT_LSN).scalar_one()
    if lsn_value(lsn) > lsn_value(session.info.get(COMMIT_LSN)):
        session.info[COMMIT_LSN] = lsn


def current_router() -> ReplicaRouter | None:
    if not has_app_context():
        return None
    return current_app.extensions.get(EXTENSION)


@dataclass
class Replica:
    name: str  # host:port/database, no credentials: a metrics label and a log field
    engine: Engine
    down_until: float = 0.0
    last_reason: str | None = None


@dataclass
class Choice:
    """Where a read-only request goes: ``replica`` (None: the primary) and why each other replica was not used."""

    replica: Replica | None
    connection: Connection | None = None  # open on the replica, already checked: the request reads on it
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (replica name, reason)


class ReplicaRouter:
    """The configured replicas, each an engine with its own pool, and which of them may serve a read now."""

    def __init__(self, primary_engine_getter, urls: tuple[str, ...], engine_options: dict, *,
                 max_lag_ms: int, cooldown_seconds: float, clock=time.monotonic):
        self.primary = primary_engine_getter
        self.max_lag_ms = max_lag_ms
        self.cooldown_seconds = cooldown_seconds
        self.clock = clock
        self.replicas = [Replica(name=replica_name(url), engine=create_engine(url, **engine_options)) for url in urls]
        self._turn = itertools.count()
        self._lock = threading.Lock()

    def choose(self, required: int = 0) -> Choice:
        """The first usable replica, starting from a different one each time (round robin).

        A replica is usable when it answers, is no more than max_lag_ms behind and has replayed at least
        ``required`` (the asker's last write, as lsn_value gives it). One that refuses, times out, lags or
        is not a standby is skipped for the cool-down; one merely behind the asker's write is skipped for
        this request only.
        """
        choice = Choice(replica=None)
        if not self.replicas:
            return choice
        start = next(self._turn) % len(self.replicas)
        now = self.clock()
        for replica in self.replicas[start:] + self.replicas[:start]:
            if replica.down_until > now:
                choice.skipped.append((replica.name, "cooling_down"))
                continue
            reason, conn = self._check(replica, required)
            if reason is None:
                choice.replica, choice.connection = replica, conn
                return choice
            choice.skipped.append((replica.name, reason))
        return choice

    def _check(self, replica: Replica, required: int) -> tuple[str | None, Connection | None]:
        """(None, the open connection that answered) when the replica may serve; else (the reason, None).

        The check is the connection's liveness test too (the replica pools skip pre-ping), and the request
        reads on that same connection, so routing costs one round trip to the replica and none to the primary.
        A pooled connection the replica dropped (a restart) is retried once on a fresh one.
        """
        for attempt in (1, 2):
            conn = None
            try:
                conn = replica.engine.connect()
                row = conn.execute(CHECK).one()
                break
            except DBAPIError as exc:
                if conn is not None:
                    conn.close()
                if attempt == 1 and exc.connection_invalidated:
                    continue
                return self._cool_down(replica, "unavailable", exc), None
            except SQLAlchemyError as exc:
                if conn is not None:
                    conn.close()
                return self._cool_down(replica, "unavailable", exc), None
        reason = None
        if row.replayed is None:
            reason = self._cool_down(replica, "not_a_standby", None)
        elif row.lag_ms > self.max_lag_ms:
            reason = self._cool_down(replica, "lagging", f"{row.lag_ms:.0f} ms behind")
        elif lsn_value(row.replayed) < required:
            reason = "behind_session"
        if reason is not None:
            conn.close()
            return reason, None
        return None, conn

    def _cool_down(self, replica: Replica, reason: str, detail) -> str:
        with self._lock:
            replica.down_until = self.clock() + self.cooldown_seconds
            replica.last_reason = reason
        log.warning("Replica %s skipped for %ss: %s%s", replica.name, self.cooldown_seconds, reason,
                    f" ({str(detail).splitlines()[0]})" if detail else "")
        return reason

    def dispose(self) -> None:
        for replica in self.replicas:
            replica.engine.dispose()


def replica_name(url: str) -> str:
    parsed = make_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"
