"""Sign-in sessions: the per-user session token that every cookie carries, and the audited sign-in events."""
from __future__ import annotations

import hmac
import secrets
import uuid

from sqlalchemy import bindparam, select, update

from lhb_review.extensions import db
from lhb_review.models import User
from lhb_review.core import audit
from lhb_review.core.actors import Actor
from lhb_review.core.tx import transaction

FAILED_LOGIN_REASON = "bad credentials"
# Built once: every signed-in request runs it. Its columns are the model's, so the session knows it reads
# users and sends it to the primary even on a replica-routed page (a sign-out takes effect at once).
USER_BY_ID = select(*(getattr(User, column.key) for column in User.__table__.c)).where(User.id == bindparam("id"))


def new_token() -> str:
    return secrets.token_hex(32)


def rotate_token(user: User) -> None:
    """Give the user a new session token in the current transaction: every cookie issued before is void."""
    user.session_token = new_token()


def session_id(user: User) -> str:
    return user.get_id()


def load(session_value: str | None) -> User | None:
    """The active user named by a session or remember cookie value "<user id>:<token>", or None.

    A cookie from before a sign-out, a password reset or a disable carries an old token and loads nobody.
    """
    user_id, _, token = (session_value or "").partition(":")
    try:
        key = uuid.UUID(user_id)
    except (ValueError, TypeError):
        return None
    if not token:
        return None
    row = db.session.execute(USER_BY_ID, {"id": key}).first()
    if row is None or not row.active:
        return None
    if not hmac.compare_digest(row.session_token.encode(), token.encode("utf-8", "replace")):
        return None
    # The request's user is read once, as plain columns, and kept out of the session: a commit does not
    # expire it, so a page drawn after a decision does not read the user again. Changes to users go
    # through ops.users, which locks and re-reads the row.
    return User(**row._mapping)


def signed_in(actor: Actor) -> None:
    """Audit a successful sign-in (``login``)."""
    with transaction():
        audit.record(actor, "login")


def sign_in_failed(actor: Actor) -> None:
    """Audit a refused sign-in (``login_failed``); the same whether or not the e-mail belongs to anyone."""
    with transaction():
        audit.record(actor, "login_failed", details={"reason": FAILED_LOGIN_REASON})


def signed_out(actor: Actor, user: User) -> None:
    """Sign the user out on every device: a new session token and a ``logout`` audit row, together."""
    with transaction():
        db.session.execute(update(User).where(User.id == user.id).values(session_token=new_token()))
        audit.record(actor, "logout")
