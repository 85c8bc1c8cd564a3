"""HTTP error responses: an HTML page for people, one JSON shape for the API; unhandled errors recorded."""
from __future__ import annotations

from flask import Flask, g, jsonify, render_template, request
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from werkzeug.exceptions import HTTPException

from lhb_review.core.errors import DomainError


def wants_json() -> bool:
    return request.path.startswith("/api/") or (
        request.accept_mimetypes.best == "application/json" and "text/html" not in request.accept_mimetypes
    )


def json_error(status: int, code: str, message: str, **extra):
    body = {"error": {"code": code, "message": message, **extra}}
    return jsonify(body), status


def database_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, (OperationalError, DisconnectionError)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def _forget_user_if_unloadable() -> None:
    """The error page shows the signed-in user in its header; when loading them needs the database that
    just failed, render it as for a visitor instead of failing a second time."""
    from flask_login import current_user

    from lhb_review.extensions import login_manager

    try:
        current_user.is_authenticated  # noqa: B018 - forces the user loader
    except Exception:  # noqa: BLE001
        g._login_user = login_manager.anonymous_user()


def _error_context():
    from lhb_review.web.auth import client_ip
    from lhb_review.web.observability import current_request_id
    from lhb_review.ops.errorlog import ErrorContext

    user_id = None
    login_user = g.get("_login_user")
    if login_user is not None and getattr(login_user, "is_authenticated", False):
        user_id = getattr(login_user, "email", None)
    rule = request.url_rule
    # An error on an order's page names the order, so the order's timeline can show it.
    about = {k: str(v)[:255] for k, v in (request.view_args or {}).items() if k in ("order_id", "stage") and v}
    return ErrorContext(
        request_id=current_request_id(),
        user_id=user_id,
        ip=client_ip(),
        user_agent=request.headers.get("User-Agent"),
        details={
            "method": request.method,
            "path": request.path[:500],
            "route": rule.rule if rule is not None else None,
            "endpoint": request.endpoint,
            "query_keys": sorted(request.args.keys())[:50],
            **about,
        },
    )


# Werkzeug's own descriptions talk about "the requested URL" and "the server"; people get these instead.
PLAIN_WORDS = {
    403: "You do not have access to this page. Ask an admin if you need it.",
    404: "There is nothing at this address. The link may be old, or the item was removed.",
    405: "This address does not take that kind of request. Go back and use the page's buttons.",
}


def plain_message(exc: HTTPException) -> str:
    """The view's own description when it gave one, else the plain wording for the status."""
    generic = type(exc).description
    if exc.description and exc.description != generic:
        return exc.description
    return PLAIN_WORDS.get(exc.code or 500, exc.description or exc.name)


def register(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        if wants_json():
            extra = {"fields": exc.fields} if getattr(exc, "fields", None) else {}
            return json_error(exc.status, exc.code, exc.message, **extra)
        return render_template("errors/error.html", status=exc.status, message=exc.message), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if (exc.code or 500) >= 500 and getattr(exc, "original_exception", None) is not None:
            return unhandled(exc.original_exception)
        if wants_json():
            code = (exc.name or "error").lower().replace(" ", "_")
            return json_error(exc.code or 500, code, exc.description or exc.name)
        return render_template("errors/error.html", status=exc.code, name=exc.name,
                               message=plain_message(exc)), exc.code

    @app.errorhandler(Exception)
    def unhandled(exc: Exception):
        from lhb_review.extensions import db
        from lhb_review.ops.errorlog import record_exception

        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the session may be as broken as the database
            pass
        _forget_user_if_unloadable()
        recorded = record_exception(exc, _error_context())
        if app.debug:
            raise exc  # recorded; now let the development server show its debugger
        status = 503 if database_unavailable(exc) else 500
        if status == 503:
            message = "The database is not reachable right now. Nothing was changed; try again in a minute."
        else:
            message = "Something went wrong on our side. Nothing you did caused it."
        if wants_json():
            response, _ = json_error(
                status, "database_unavailable" if status == 503 else "internal_error", message,
                error_id=recorded.error_id, request_id=g.get("request_id"),
            )
        else:
            response = app.make_response(render_template(
                "errors/500.html", status=status, message=message, error_id=recorded.error_id,
                request_id=g.get("request_id"), stored=recorded.stored,
            ))
        response.status_code = status
        if status == 503:
            response.headers["Retry-After"] = "30"
        return response
