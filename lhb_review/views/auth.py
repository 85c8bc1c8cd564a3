"""Sign in and sign out, with sign-in attempts rate-limited per account and per client address."""
from __future__ import annotations

import hashlib
from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required, login_user, logout_user

from lhb_review.web import login_limit
from lhb_review.web.auth import client_ip
from lhb_review.web.security import sign_in_refused
from lhb_review.web.targets import local_target
from lhb_review.extensions import limiter
from lhb_review.ops import sessions
from lhb_review.core.actors import Actor
from lhb_review.ops.users import check_password, find_by_email, normalise_email

bp = Blueprint("auth", __name__)
FAILED_MESSAGE = "That e-mail and password do not match an active account."


def safe_next(target: str | None) -> str:
    """Only a path on this site (see web.targets); anything else goes home."""
    return local_target(target) or url_for("queue.index")


def _actor(email: str) -> Actor:
    return Actor(email=email[:255], ip=client_ip(), user_agent=request.headers.get("User-Agent"))


def _submitted_email() -> str:
    return normalise_email(request.form.get("email", ""))[:255]


def account_key() -> str:
    """The rate-limit key of the account being tried: a hash, so the store never holds e-mail addresses.

    Unknown e-mails are counted exactly like real ones, so a 429 says nothing about who has an account.
    """
    return "login-account:" + hashlib.sha256(_submitted_email().encode("utf-8", "replace")).hexdigest()


def fresh_session() -> None:
    """Drop everything in the session, including the CSRF secret (and Flask-WTF's copy of it cached in g).

    At sign-in this means nothing planted in the session beforehand survives into the signed-in one.
    """
    session.clear()
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_IP"], methods=["POST"], key_func=get_remote_address,
               scope="login-ip")
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    email = ""
    if request.method == "POST":
        email = _submitted_email()
        password = request.form.get("password", "")
        # The attempt is taken before the password is checked, atomically (see web.login_limit).
        wait = login_limit.reserve(account_key())
        if wait is not None:
            return sign_in_refused(wait)
        user = find_by_email(email) if email and "\x00" not in email else None
        # check_password verifies against a dummy hash when there is no user, so both paths cost the same.
        if check_password(user, password) and user.active:
            next_url = safe_next(request.args.get("next"))
            login_limit.forgive(account_key())
            # Audited first: when the database cannot record the sign-in, nobody is signed in.
            sessions.signed_in(_actor(user.email))
            fresh_session()
            login_user(user, remember=request.form.get("remember") == "yes")
            return redirect(next_url)
        sessions.sign_in_failed(_actor(email.replace("\x00", "")))
        flash(FAILED_MESSAGE, "error")
        return render_template("auth/login.html", email=email), 401
    return render_template("auth/login.html", email=email)


@bp.post("/logout")
@login_required
def logout():
    sessions.signed_out(_actor(current_user.email), current_user._get_current_object())
    logout_user()
    fresh_session()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))
