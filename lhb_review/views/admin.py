"""Admin pages: the error log, user accounts and the audit log (admins only)."""
from __future__ import annotations

import uuid

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from sqlalchemy import select

from lhb_review.web.auth import admin_required, current_actor
from lhb_review.extensions import db
from lhb_review.web.htmx import fragment_or_redirect, wants_fragment
from lhb_review.web.targets import local_target
from lhb_review.models import User
from lhb_review.ops import audit_query, errorlog
from lhb_review.ops import users as user_service
from lhb_review.core.errors import DomainError, Invalid
from lhb_review.core.paging import BadCursor

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
@admin_required
def _admins_only():
    """Every admin page: a visitor is sent to sign in, a reviewer gets 403."""


def _page_size() -> int:
    try:
        size = int(request.args.get("size", 50))
    except ValueError:
        size = 50
    return size if size in audit_query.PAGE_SIZES else 50


@bp.get("/")
def index():
    return redirect(url_for("admin.errors"))


@bp.get("/errors")
def errors():
    status = 200
    try:
        filters = errorlog.ErrorFilters.parse(request.args)
    except Invalid as exc:
        flash(exc.message, "error")
        return redirect(url_for("admin.errors"))
    try:
        rows, next_cursor = errorlog.list_errors(filters, request.args.get("after"), _page_size())
    except BadCursor as exc:  # the first page, with the reason the link did not work
        flash(exc.message, "error")
        (rows, next_cursor), status = errorlog.list_errors(filters, None, _page_size()), exc.status
    return render_template(
        "admin/errors.html", rows=rows, filters=filters, next_cursor=next_cursor,
        types=errorlog.error_types(), severities=errorlog.SEVERITIES,
    ), status


@bp.get("/errors/<error_id>")
def error_detail(error_id: str):
    return render_template("admin/error_detail.html", error=errorlog.get_error(error_id))


@bp.post("/errors/<error_id>/resolve")
def resolve_error(error_id: str):
    try:
        row = errorlog.resolve(current_actor(), error_id)
        status, message = 200, f"Error {row.error_id} marked resolved."
    except DomainError as exc:
        if exc.status == 404:
            raise
        db.session.rollback()
        row, status, message = errorlog.get_error(error_id), exc.status, exc.message
    back = request.form.get("next") if _local(request.form.get("next")) else url_for("admin.errors")
    return fragment_or_redirect(lambda: render_template("admin/_error_row.html", error=row, message=message), back,
                                message=message, category="info" if status == 200 else "error", status=status)


def _local(target: str | None) -> bool:
    return (local_target(target) or "").startswith("/admin/") and local_target(target) == target


@bp.get("/users")
def users():
    rows = db.session.scalars(select(User).order_by(User.role.desc(), User.email)).all()
    return render_template("admin/users.html", users=rows, roles=User.ROLES, form={}, field_errors={})


@bp.post("/users")
def create_user():
    form = {"email": request.form.get("email", ""), "role": request.form.get("role", "reviewer")}
    try:
        user = user_service.create_user(current_actor(), form["email"], request.form.get("password", ""),
                                        form["role"])
    except DomainError as exc:
        db.session.rollback()
        rows = db.session.scalars(select(User).order_by(User.role.desc(), User.email)).all()
        flash(exc.message, "error")
        return render_template("admin/users.html", users=rows, roles=User.ROLES, form=form,
                               field_errors=getattr(exc, "fields", {})), exc.status
    flash(f"Created {user.role} {user.email}.", "info")
    return redirect(url_for("admin.users"), 303)


def _user_or_404(user_id: str) -> User:
    try:
        key = uuid.UUID(user_id)
    except ValueError:
        abort(404)
    user = db.session.get(User, key)
    if user is None:
        abort(404)
    return user


def _user_action(user_id: str, change, done: str):
    user = _user_or_404(user_id)
    try:
        change(user.email)
        flash(done.format(email=user.email), "info")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("admin.users"), 303)
    return redirect(url_for("admin.users"), 303)


@bp.post("/users/<user_id>/disable")
def disable_user(user_id: str):
    actor = current_actor()
    return _user_action(user_id, lambda email: user_service.set_active(actor, email, False),
                        "Disabled {email}; they are signed out on their next request.")


@bp.post("/users/<user_id>/enable")
def enable_user(user_id: str):
    actor = current_actor()
    return _user_action(user_id, lambda email: user_service.set_active(actor, email, True), "Enabled {email}.")


@bp.post("/users/<user_id>/role")
def change_role(user_id: str):
    actor = current_actor()
    role = request.form.get("role", "")
    return _user_action(user_id, lambda email: user_service.set_role(actor, email, role),
                        "{email} is now " + (role if role in User.ROLES else "?") + ".")


@bp.post("/users/<user_id>/password")
def reset_password(user_id: str):
    actor = current_actor()
    password = request.form.get("password", "")
    return _user_action(user_id, lambda email: user_service.set_password(actor, email, password),
                        "New password set for {email}.")


@bp.get("/audit")
def audit_log():
    """The audit log, newest first, paged both ways; an htmx request gets only the results, even when the
    filter is refused (so no second page lands inside the first)."""
    template = "admin/_audit_rows.html" if wants_fragment() else "admin/audit.html"
    size = _page_size()
    context = {"args": request.args, "actions": audit_query.known_actions(), "size": size if size != 50 else None}
    try:
        filters = audit_query.AuditFilters.parse(request.args)
        rows, older, newer = audit_query.page_both_ways(filters, request.args.get("after"),
                                                        request.args.get("before"), size)
    except (Invalid, BadCursor) as exc:
        return render_template(template, rows=[], filters=None, next_cursor=None, prev_cursor=None,
                               problem=exc.message, **context), exc.status
    return render_template(template, rows=rows, filters=filters, next_cursor=older, prev_cursor=newer,
                           problem=None, **context)


@bp.get("/audit.csv")
def audit_csv():
    filters = audit_query.AuditFilters.parse(request.args)
    lines = audit_query.csv_lines(filters)
    return Response(
        stream_with_context(lines), mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=audit-log.csv", "Cache-Control": "no-store"},
    )
