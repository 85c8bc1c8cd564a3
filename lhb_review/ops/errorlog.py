"""The error log: unhandled exceptions into error_logs (or the application log when the database is down),
and the admin's read and resolve side."""
from __future__ import annotations

import logging
import re
import secrets
import traceback
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter
from sqlalchemy import func, insert, select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from lhb_review.extensions import db
from lhb_review.models import ErrorLog
from lhb_review.core import audit
from lhb_review.core.actors import Actor
from lhb_review.core.audit import valid_ip
from lhb_review.core.errors import Conflict, Invalid, NotFound
from lhb_review.core.paging import decode_cursor, keyset_page
from lhb_review.core.tx import transaction
from lhb_review.ops.audit_query import distinct_values

log = logging.getLogger("lhb_review.errors")
ERRORS = Counter("lhb_errors_total", "Unhandled errors recorded, by severity.", ["severity"])

SEVERITIES = ("critical", "error", "warning", "info")
ERROR_ID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read aloud over the phone
MAX_MESSAGE = 4000
MAX_TRACE = 20000


def new_error_id() -> str:
    """A short id a person can read out: ``E-7KQ2-MX4P``."""
    chars = "".join(secrets.choice(ERROR_ID_ALPHABET) for _ in range(8))
    return f"E-{chars[:4]}-{chars[4:]}"


# lock_not_available: lock_timeout ran out while someone else held the rows. The person was told to try again
# and nothing is broken, so it is a warning to watch (many of them mean contention), not an outage.
CONTENTION_SQLSTATES = {"55P03"}


def severity_of(exc: BaseException) -> str:
    """Database failures are critical (every page is affected), a lock wait that ran out is a warning;
    anything else unhandled is an error."""
    if isinstance(exc, DBAPIError) and getattr(exc.orig, "pgcode", None) in CONTENTION_SQLSTATES:
        return "warning"
    if isinstance(exc, (DBAPIError, SQLAlchemyError)):
        return "critical"
    return "error"


@dataclass
class ErrorContext:
    """Where an error happened: the request and the person, as plain values."""

    request_id: str | None = None
    user_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecordedError:
    error_id: str
    stored: bool  # False when the database could not take it and it went to the application log


# A secret-looking field and its value, in JSON, Python reprs, query strings and headers.
SECRET_FIELD = re.compile(
    r"""(?ix)
    (?P<key>["']?\b(?:secret|webhook_secret|password|passwd|token|api_key|apikey|authorization|session_token)
        \b["']?\s*[:=]\s*)
    (?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,;&}\]]+)
    """
)
BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+")


def redact_secrets(text: str) -> str:
    """``text`` with the values of known secret fields (secret, password, token, ...) and bearer tokens
    replaced by ``[redacted]``, wherever an error is recorded or logged."""
    text = BEARER.sub(r"\1[redacted]", text)
    return SECRET_FIELD.sub(lambda m: m.group("key") + "[redacted]", text)


def record_exception(exc: BaseException, context: ErrorContext | None = None) -> RecordedError:
    """Write one error_logs row for ``exc`` on a connection of its own, so the failed request's transaction
    cannot take it down with it. When the database itself refuses, log everything to the application log.
    """
    context = context or ErrorContext()
    error_id = new_error_id()
    severity = severity_of(exc)
    ERRORS.labels(severity=severity).inc()
    message = redact_secrets(str(exc) or exc.__class__.__name__)[:MAX_MESSAGE]
    trace = redact_secrets("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))[-MAX_TRACE:]
    row = {
        "error_id": error_id,
        "error_type": exc.__class__.__name__[:50],
        "severity": severity,
        "message": message,
        "details": context.details,
        "user_id": (context.user_id or None) and context.user_id[:255],
        "request_id": (context.request_id or None) and context.request_id[:100],
        "user_agent": (context.user_agent or None) and context.user_agent[:1000],
        "ip_address": valid_ip(context.ip),
        "stack_trace": trace,
    }
    try:
        with db.engine.begin() as conn:
            conn.execute(insert(ErrorLog.__table__).values(**row))
    except Exception as store_failure:  # noqa: BLE001 - the fallback must catch whatever the database throws
        log.error(
            "Unhandled %s %s (request %s, not stored: the error log is unreachable: %s): %s\n%s",
            row["error_type"], error_id, row["request_id"] or "-", store_failure.__class__.__name__, message,
            trace,
            extra={"error_id": error_id, "severity": severity, "stored": False},
        )
        return RecordedError(error_id, stored=False)
    log.error(
        "Unhandled %s %s (request %s): %s\n%s", row["error_type"], error_id, row["request_id"] or "-", message,
        trace,
        extra={"error_id": error_id, "severity": severity, "stored": True},
    )
    return RecordedError(error_id, stored=True)


@dataclass
class ErrorFilters:
    error_type: str | None = None
    severity: str | None = None
    resolved: bool | None = None

    @classmethod
    def parse(cls, args) -> "ErrorFilters":
        severity = (args.get("severity") or "").strip() or None
        if severity is not None and severity not in SEVERITIES:
            raise Invalid("Unknown severity.", {"severity": f"One of {', '.join(SEVERITIES)}."})
        resolved_raw = (args.get("resolved") or "").strip().lower()
        resolved = {"yes": True, "no": False}.get(resolved_raw)
        if resolved_raw and resolved is None:
            raise Invalid("Resolved must be yes or no.", {"resolved": "yes or no"})
        error_type = (args.get("type") or "").strip()[:50] or None
        return cls(error_type=error_type, severity=severity, resolved=resolved)

    def as_args(self) -> dict[str, str]:
        args = {}
        if self.error_type:
            args["type"] = self.error_type
        if self.severity:
            args["severity"] = self.severity
        if self.resolved is not None:
            args["resolved"] = "yes" if self.resolved else "no"
        return args


def list_errors(filters: ErrorFilters, after: str | None = None, limit: int = 50):
    """Newest first, keyset-paged on (created_at, id). Returns (rows, next cursor or None)."""
    query = select(ErrorLog)
    if filters.error_type:
        query = query.where(ErrorLog.error_type == filters.error_type)
    if filters.severity:
        query = query.where(ErrorLog.severity == filters.severity)
    if filters.resolved is True:
        query = query.where(ErrorLog.resolved.is_(True))
    elif filters.resolved is False:
        query = query.where(ErrorLog.resolved.isnot(True))
    found = keyset_page(query, ErrorLog.created_at, ErrorLog.id, decode_cursor("errors", after), limit=limit,
                        purpose="errors", newest_first=True)
    return found.rows, found.next_cursor


def error_types() -> list[str]:

    return distinct_values("error_logs", "error_type")


def _checked_id(error_id: str) -> str:
    """An id PostgreSQL can compare: a NUL character can be in no row (and psycopg2 refuses to send one)."""
    if "\x00" in error_id:
        raise NotFound("No error with that id.")
    return error_id[:100]


def get_error(error_id: str) -> ErrorLog:
    row = db.session.scalar(select(ErrorLog).where(ErrorLog.error_id == _checked_id(error_id)))
    if row is None:
        raise NotFound(f"No error with id {error_id[:100]}.")
    return row


def resolve(actor: Actor, error_id: str) -> ErrorLog:
    """Mark an error resolved by ``actor`` now; audited ``error_resolved``. Raises NotFound, or Conflict
    when someone resolved it already (nothing is written then)."""
    error_id = _checked_id(error_id)
    with transaction():
        row = db.session.scalar(
            select(ErrorLog).where(ErrorLog.error_id == error_id[:100])
            .with_for_update().execution_options(populate_existing=True)
        )
        if row is None:
            raise NotFound(f"No error with id {error_id[:100]}.")
        if row.resolved:
            raise Conflict(f"Error {row.error_id} was already resolved by {row.resolved_by}.")
        row.resolved = True
        row.resolved_by = actor.email
        row.resolved_at = func.now()
        audit.record(actor, "error_resolved", details={
            "error_id": row.error_id, "error_type": row.error_type, "severity": row.severity,
        })
    db.session.refresh(row)
    return row
