"""Database faults as clear answers: unreachable, restarting, locked, too slow, read-only or full.

Each becomes a 503 (409 for a row lock held by someone else) with a Retry-After header, an HTML page for
people or the API's JSON error, and never touches the database while answering, since it may be down.
The transaction that failed was rolled back, so nothing of the request was written.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from flask import Flask, current_app, g, jsonify, render_template, request, url_for
from sqlalchemy import exc as sa_exc

from lhb_review.extensions import db, login_manager
from lhb_review.web.targets import local_target

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fault:
    status: int
    code: str
    title: str
    message: str
    retry_after: int


UNAVAILABLE = Fault(
    503, "database_unavailable", "The database cannot be reached",
    "The database is not reachable right now, so nothing was changed. "
    "lhb-review reconnects by itself: try again in a few seconds.", 5,
)
LOCKED = Fault(
    409, "locked", "Someone else is changing this right now",
    "Another reviewer or process is changing this at the same moment, so nothing was changed. "
    "Reload and try again in a moment.", 2,
)
TIMED_OUT = Fault(
    503, "database_timeout", "The database took too long",
    "The database took too long to answer, so the request was stopped and nothing was changed. "
    "Try again in a few seconds.", 5,
)
READ_ONLY = Fault(
    503, "database_read_only", "The database is read-only",
    "The database accepts no changes at the moment (maintenance or fail-over), so this change was not "
    "saved. Everything saved before is safe; try again later.", 30,
)
FULL = Fault(
    503, "database_full", "The database is out of space",
    "The database server has run out of disk space, so this change was not saved. Everything saved before "
    "is safe. An operator has to free space; try again later.", 60,
)

# SQLSTATE codes (PostgreSQL, Appendix A) and what each means for the person waiting.
BY_SQLSTATE = {
    "55P03": LOCKED,  # lock_not_available: lock_timeout expired
    "57014": TIMED_OUT,  # query_canceled: statement_timeout expired
    "25006": READ_ONLY,  # read_only_sql_transaction
    "53100": FULL,  # disk_full
    "53000": FULL,  # insufficient_resources
    "53200": UNAVAILABLE,  # out_of_memory
    "53300": UNAVAILABLE,  # too_many_connections
    "57P01": UNAVAILABLE,  # admin_shutdown
    "57P02": UNAVAILABLE,  # crash_shutdown
    "57P03": UNAVAILABLE,  # cannot_connect_now (starting up or shutting down)
}


def classify(error: BaseException) -> Fault | None:
    """The fault a database exception stands for, or None when it is a bug to be reported as such."""
    if isinstance(error, (sa_exc.DisconnectionError, sa_exc.TimeoutError)):
        return UNAVAILABLE  # TimeoutError: every pooled connection busy for pool_timeout seconds
    if not isinstance(error, sa_exc.DBAPIError):
        return None
    if error.connection_invalidated:
        return UNAVAILABLE
    code = getattr(error.orig, "pgcode", None)
    if code in BY_SQLSTATE:
        return BY_SQLSTATE[code]
    if code and code.startswith("08"):  # connection_exception class
        return UNAVAILABLE
    if code is None and isinstance(error, sa_exc.OperationalError):
        return UNAVAILABLE  # refused, reset, server closed the connection: libpq gives no SQLSTATE
    return None


def wants_json() -> bool:
    return request.path.startswith("/api/") or (
        request.accept_mimetypes.best == "application/json" and "text/html" not in request.accept_mimetypes
    )


SAFE_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


def same_site_path(url: str | None) -> str:
    """The path and query of a URL of this site, for a "try again" link; the queue for anything else."""
    return local_target(url, host=request.host) or url_for("queue.index")


def respond(fault: Fault, error_id: str | None = None):
    if "_login_user" not in g:
        # Rendering asks Flask-Login for current_user, which would query the failing database again.
        g._login_user = login_manager.anonymous_user()
    request_id = g.get("request_id")
    if wants_json():
        body = {"error": {"code": fault.code, "message": fault.message, "retry_after": fault.retry_after,
                          "error_id": error_id, "request_id": request_id}}
        response = jsonify(body)
    elif request.headers.get("HX-Request") == "true":
        # htmx swaps a 409 into its target: the card takes the target's id, so it sits where the panel was,
        # and offers to reload the page the reviewer is on. A 503 is not swapped; app.js shows its message.
        target = request.headers.get("HX-Target", "")
        response = render_template("errors/_fault.html", fault=fault, error_id=error_id, request_id=request_id,
                                   target_id=target if SAFE_ID.fullmatch(target) else "fault",
                                   again_url=same_site_path(request.headers.get("HX-Current-URL")))
    else:
        again = same_site_path(request.full_path.rstrip("?") if request.method == "GET" else request.referrer)
        response = render_template("errors/fault.html", fault=fault, error_id=error_id, request_id=request_id,
                                   target_id="fault", again_url=again)
    response = current_app.make_response((response, fault.status))
    response.headers["Retry-After"] = str(fault.retry_after)
    response.headers["Cache-Control"] = "no-store"
    return response


def handle_database_error(error: Exception):
    fault = classify(error)
    if fault is None:
        return not_a_fault(error)
    try:
        db.session.rollback()
    except Exception:  # the connection may be gone; the pool replaces it (pool_pre_ping)
        log.debug("rollback after a database fault failed", exc_info=True)
    if "_login_user" not in g:
        g._login_user = login_manager.anonymous_user()
    recorded = record(error)
    return respond(fault, recorded)


def record(error: Exception) -> str | None:
    """Into the error log with an id the page shows (the application log when the database cannot take it)."""
    from lhb_review.web.errors import _error_context
    from lhb_review.ops.errorlog import record_exception

    try:
        return record_exception(error, _error_context()).error_id
    except Exception:  # noqa: BLE001 - answering clearly matters more than recording
        log.exception("could not record a database fault")
        return None


def not_a_fault(error: Exception):
    """A database error that is a bug (a constraint, a bad query): the app's catch-all handler reports it."""
    catch_all = current_app.error_handler_spec.get(None, {}).get(None, {}).get(Exception)
    if catch_all is None:
        raise error
    return catch_all(error)


def end_transaction_quietly(_error: BaseException | None = None) -> None:
    """Roll the request's session back before Flask-SQLAlchemy removes it.

    When the server goes away after a request's last query but before it ends, the rollback in the
    session's teardown raises, and a page that was rendered fine would become a 500. A failed rollback here
    invalidates the dead connection instead (the pool replaces it), and the removal that follows is clean.
    Teardown functions run in reverse order of registration, so this runs before Flask-SQLAlchemy's.
    """
    try:
        db.session.rollback()
    except sa_exc.DBAPIError as exc:
        log.warning("the database went away before the request ended: %s", str(exc).splitlines()[0])


def init_app(app: Flask) -> None:
    app.teardown_appcontext(end_transaction_quietly)
    app.register_error_handler(sa_exc.DBAPIError, handle_database_error)
    app.register_error_handler(sa_exc.DisconnectionError, handle_database_error)
    app.register_error_handler(sa_exc.TimeoutError, handle_database_error)
