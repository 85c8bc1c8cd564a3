"""API tokens of the pipeline: created once (only the hash is kept), listed, revoked, checked per request."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta, timezone

from sqlalchemy import Row, bindparam, func, select, update

from lhb_review.extensions import db
from lhb_review.models import ApiToken
from lhb_review.core import audit
from lhb_review.core.actors import Actor
from lhb_review.core.errors import Conflict, Invalid, NotFound
from lhb_review.core.tx import transaction

TOKEN_PREFIX = "lhb_"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
# last_used_at is a hint for operators, so it is written at most this often per token.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def hash_token(token: str) -> str:
    """SHA-256 is enough here: tokens are 256 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def validate_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME_RE.fullmatch(name):
        raise Invalid(
            "A token name is 1-100 letters, digits, '.', '_', '@' or '-', starting with a letter or digit.",
            {"name": "Use letters, digits, '.', '_', '@' or '-' (at most 100)."},
        )
    return name


def create(actor: Actor, name: str) -> tuple[ApiToken, str]:
    """Create a token; returns (row, the token in clear text, shown once). Audited ``api_token_created``.

    Raises Invalid (bad name) or Conflict (the name is taken, even by a revoked token).
    """
    name = validate_name(name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction():
        if db.session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
            raise Conflict(f"A token named {name!r} already exists; pick another name or revoke it.")
        row = ApiToken(
            name=name,
            token_hash=hash_token(token),
            prefix=token[: len(TOKEN_PREFIX) + 6],
            created_by=actor.email,
        )
        db.session.add(row)
        audit.record(actor, "api_token_created", details={"name": name, "prefix": row.prefix})
    return row, token


def list_tokens() -> list[ApiToken]:
    return list(db.session.scalars(select(ApiToken).order_by(ApiToken.name)))


def revoke(actor: Actor, name: str) -> ApiToken:
    """Revoke a token: it is refused from the next request on. Audited ``api_token_revoked``.

    Raises NotFound, or Conflict when it is already revoked.
    """
    with transaction():
        row = db.session.scalar(
            select(ApiToken)
            .where(ApiToken.name == (name or "").strip())
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if row is None:
            raise NotFound(f"No token named {name!r}.")
        if row.revoked_at is not None:
            raise Conflict(f"Token {row.name!r} was already revoked on {row.revoked_at:%Y-%m-%d %H:%M} UTC.")
        row.revoked_at = func.now()
        audit.record(actor, "api_token_revoked", details={"name": row.name, "prefix": row.prefix})
    return row


# Every API request runs this lookup: plain columns, the statement built once.
TOKEN_BY_HASH = select(ApiToken.id, ApiToken.name, ApiToken.revoked_at, ApiToken.last_used_at).where(
    ApiToken.token_hash == bindparam("token_hash")
)


def authenticate(token: str | None) -> Row | None:
    """The active token (id, name, revoked_at, last_used_at) for a bearer value, or None.

    Marks it used (at most once a minute).
    """
    if not token or len(token) > 200 or not token.startswith(TOKEN_PREFIX):
        return None
    row = db.session.execute(TOKEN_BY_HASH, {"token_hash": hash_token(token)}).one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    now = datetime.now(timezone.utc)
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        db.session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=func.now()))
        db.session.commit()
    return row
