"""Reviewer accounts: creation, passwords (argon2), roles, disabling; each change audited."""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select

from lhb_review.extensions import db
from lhb_review.models import User
from lhb_review.core import audit
from lhb_review.core.actors import Actor
from lhb_review.ops.sessions import rotate_token
from lhb_review.core.errors import Conflict, Invalid, NotFound
from lhb_review.core.tx import transaction

hasher = PasswordHasher()
MIN_PASSWORD = 10
# Verifying against this when the e-mail is unknown keeps the time of a failed login the same.
_DUMMY_HASH = hasher.hash("not-a-real-password")


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def validate_email(email: str) -> str:
    email = normalise_email(email)
    local, _, domain = email.partition("@")
    if not local or "." not in domain or len(email) > 255 or any(c.isspace() for c in email) or "\x00" in email:
        raise Invalid("Enter a valid e-mail address.", {"email": "Enter a valid e-mail address."})
    return email


def validate_password(password: str) -> str:
    if password is None or len(password) < MIN_PASSWORD:
        raise Invalid(
            f"Passwords need at least {MIN_PASSWORD} characters.",
            {"password": f"At least {MIN_PASSWORD} characters."},
        )
    if len(password) > 1024 or "\x00" in password:
        raise Invalid("That password cannot be used.", {"password": "At most 1024 characters, no NUL."})
    return password


def hash_password(password: str) -> str:
    return hasher.hash(password)


def find_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalise_email(email)))


def check_password(user: User | None, password: str) -> bool:
    """True when ``password`` is the user's; takes the same time whether or not the user exists."""
    try:
        return hasher.verify(user.password_hash if user else _DUMMY_HASH, password or "") and user is not None
    except (VerificationError, InvalidHashError):
        return False


def create_user(actor: Actor, email: str, password: str, role: str = "reviewer") -> User:
    """Create a user; audited ``user_created``. Raises Invalid or Conflict (e-mail taken)."""
    email = validate_email(email)
    validate_password(password)
    if role not in User.ROLES:
        raise Invalid(f"Role must be one of {', '.join(User.ROLES)}.", {"role": "Choose reviewer or admin."})
    with transaction():
        if find_by_email(email) is not None:
            raise Conflict(f"A user with e-mail {email} already exists.")
        user = User(email=email, password_hash=hash_password(password), role=role, active=True)
        db.session.add(user)
        audit.record(actor, "user_created", details={"email": email, "role": role})
    return user


def set_password(actor: Actor, email: str, password: str) -> User:
    validate_password(password)
    with transaction():
        user = _locked(email)
        user.password_hash = hash_password(password)
        user.updated_at = func.now()
        rotate_token(user)  # signs the user out everywhere
        audit.record(actor, "user_password_reset", details={"email": user.email})
    return user


def set_active(actor: Actor, email: str, active: bool) -> User:
    """Enable or disable; the last active admin cannot be disabled. Audited ``user_disabled``/``user_enabled``."""
    with transaction():
        user = _locked(email)
        if not active and user.role == "admin" and user.active:
            _refuse_if_last_admin(user)
        user.active = active
        user.updated_at = func.now()
        rotate_token(user)  # cookies issued before stay void, even after a later re-enable
        audit.record(actor, "user_enabled" if active else "user_disabled", details={"email": user.email})
    return user


def set_role(actor: Actor, email: str, role: str) -> User:
    if role not in User.ROLES:
        raise Invalid(f"Role must be one of {', '.join(User.ROLES)}.", {"role": "Choose reviewer or admin."})
    with transaction():
        user = _locked(email)
        if user.role == "admin" and role != "admin" and user.active:
            _refuse_if_last_admin(user)
        before = user.role
        user.role = role
        user.updated_at = func.now()
        audit.record(actor, "user_role_changed", details={"email": user.email, "before": before, "after": role})
    return user


def _locked(email: str) -> User:
    user = db.session.scalar(
        select(User).where(User.email == normalise_email(email)).with_for_update().execution_options(populate_existing=True)
    )
    if user is None:
        raise NotFound(f"No user with e-mail {normalise_email(email)}.")
    return user


def _refuse_if_last_admin(user: User) -> None:
    # Lock every active admin so two admins cannot demote each other at the same moment.
    admins = db.session.scalars(
        select(User.id).where(User.role == "admin", User.active.is_(True)).with_for_update()
    ).all()
    if len(admins) <= 1:
        raise Conflict("This is the last active admin; make another admin first.")
