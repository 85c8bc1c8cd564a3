"""Sign in and sign out."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from ..auth import client_ip
from ..extensions import db
from ..services import audit
from ..services.actors import Actor
from ..services.users import check_password, find_by_email, normalise_email

bp = Blueprint("auth", __name__)


def safe_next(target: str | None) -> str:
    """Only a path on this site; anything with a scheme, a host or a backslash goes home."""
    if not target or "\\" in target or not target.startswith("/") or target.startswith("//"):
        return url_for("queue.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return url_for("queue.index")
    return target


def _actor(email: str) -> Actor:
    return Actor(email=email[:255], ip=client_ip(), user_agent=request.headers.get("User-Agent"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    email = ""
    if request.method == "POST":
        email = normalise_email(request.form.get("email", ""))[:255]
        password = request.form.get("password", "")
        user = find_by_email(email) if email and "\x00" not in email else None
        if user is not None and check_password(user, password) and user.active:
            login_user(user)
            audit.record(_actor(user.email), "login")
            db.session.commit()
            return redirect(safe_next(request.args.get("next")))
        if user is None:
            check_password(None, password)
        audit.record(_actor(email.replace("\x00", "")), "login_failed", details={"reason": "bad credentials"})
        db.session.commit()
        flash("That e-mail and password do not match an active account.", "error")
        return render_template("auth/login.html", email=email), 401
    return render_template("auth/login.html", email=email)


@bp.post("/logout")
@login_required
def logout():
    audit.record(_actor(current_user.email), "logout")
    db.session.commit()
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))
