"""Who is asking: the signed-in user, their role, and where the request came from."""
from __future__ import annotations

from functools import wraps

from flask import Flask, abort, request
from flask_login import current_user, login_required

from lhb_review.extensions import login_manager
from lhb_review.models import User
from lhb_review.ops import sessions
from lhb_review.core.actors import Actor


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to review."
    login_manager.login_message_category = "info"


@login_manager.user_loader
def load_user(session_value: str) -> User | None:
    # The value is "<user id>:<session token>"; a disabled user or an old token loads nobody (signed out).
    return sessions.load(session_value)


def client_ip() -> str | None:
    """The client's address: the socket's, or what ProxyFix derived when TRUST_PROXY_HOPS is set."""
    return request.remote_addr


def current_actor() -> Actor:
    return Actor(
        email=current_user.email,
        ip=client_ip(),
        user_agent=request.headers.get("User-Agent"),
        is_admin=current_user.is_admin,
    )


def admin_required(view):
    """Signed in and an admin; a reviewer gets 403."""

    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapper
