"""Orders from the pipeline: validated field by field and upserted idempotently, with an audit row."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import null, select
from sqlalchemy.dialects.postgresql import insert

from lhb_review.extensions import db
from lhb_review.models import Order
from lhb_review.core import audit
from lhb_review.review import outbox
from lhb_review.core.actors import Actor
from lhb_review.core.errors import Invalid
from lhb_review.core.timestamps import parse_timestamp
from lhb_review.core.tx import transaction

PLATFORMS = ("shopify", "amazon", "etsy", "direct")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ORDER_ID_RE = re.compile(r"^[A-Za-z0-9#][A-Za-z0-9#._:\-]{0,254}$")
STATUS_RE = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
REQUIRED = (
    "platform",
    "project",
    "customer_first_name",
    "customer_last_name",
    "customer_email",
    "order_date",
)
# field -> maximum length, for the plain text fields
TEXT_FIELDS = {
    "amazon_order_id": 255,
    "project": 100,
    "customer_first_name": 100,
    "customer_last_name": 100,
    "character_hash": 100,
    "character_path": 500,
    "template_path": 500,
    "asset_prefix": 500,
}
DATE_FIELDS = ("order_date", "ai_generation_started_at")
JSON_FIELDS = ("character_specs", "book_specs", "order_details")
FIELDS = REQUIRED + (
    "status",
    "amazon_order_id",
    "ai_generation_started_at",
    "character_hash",
    "character_path",
    "template_path",
    "character_specs",
    "book_specs",
    "order_details",
    "asset_prefix",
    "webhooks",
)
DEFAULT_STATUS = "received"


def validate_order_id(order_id: str) -> str:
    if not isinstance(order_id, str) or not ORDER_ID_RE.fullmatch(order_id):
        raise Invalid(
            "Order ids are 1-255 letters, digits, '#', '.', '_', ':' or '-'.",
            {"order_id": "1-255 letters, digits, '#', '.', '_', ':' or '-'."},
        )
    return order_id


def parse_datetime(value: Any) -> datetime | None:
    """An ISO 8601 date-time with a time zone (a trailing Z is accepted); None when it is not one."""
    return parse_timestamp(value)


MAX_JSON_DEPTH = 20


def storable(text: str) -> bool:
    """PostgreSQL stores neither NUL characters nor lone surrogates (which JSON can encode as \\udxxx)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_problem(value: Any, depth: int = 0) -> str | None:
    """Why PostgreSQL's JSONB would refuse a value (NUL characters, NaN/Infinity, deep nesting), or None."""
    if depth > MAX_JSON_DEPTH:
        return f"Nested more than {MAX_JSON_DEPTH} levels deep."
    if isinstance(value, str):
        return "Text cannot contain NUL characters." if not storable(value) else None
    if isinstance(value, float) and not math.isfinite(value):
        return "Numbers must be finite."
    if isinstance(value, dict):
        for key, item in value.items():
            problem = json_problem(key, depth + 1) or json_problem(item, depth + 1)
            if problem:
                return problem
    if isinstance(value, list):
        for item in value:
            problem = json_problem(item, depth + 1)
            if problem:
                return problem
    return None


def db_value(name: str, value: Any) -> Any:
    """SQL NULL rather than JSON null for an absent JSONB field."""
    return null() if value is None and name in JSON_FIELDS + ("webhooks",) else value


def validate_order(body: Any) -> dict[str, Any]:
    """The order's columns from a request body; raises Invalid with one message per bad field."""
    if not isinstance(body, dict):
        raise Invalid("The body must be a JSON object.", {"body": "A JSON object."})
    errors: dict[str, str] = {}
    for name in sorted(set(body) - set(FIELDS)):
        errors[str(name)[:100]] = "Unknown field."
    for name in REQUIRED:
        if body.get(name) in (None, ""):
            errors[name] = "Required."
    values: dict[str, Any] = {}
    for name, limit in TEXT_FIELDS.items():
        value = body.get(name)
        if value in (None, ""):
            values[name] = None
        elif not isinstance(value, str) or len(value) > limit or not storable(value):
            errors[name] = f"Text of at most {limit} characters."
        else:
            values[name] = value.strip()
            if not values[name]:
                errors.setdefault(name, "Required." if name in REQUIRED else "Cannot be blank.")
    platform = body.get("platform")
    if platform not in (None, "") and platform not in PLATFORMS:
        errors["platform"] = f"One of {', '.join(PLATFORMS)}."
    values["platform"] = platform
    if platform == "amazon" and not values.get("amazon_order_id") and "amazon_order_id" not in errors:
        errors["amazon_order_id"] = "Required for Amazon orders."
    email = body.get("customer_email")
    if email not in (None, ""):
        if (
            not isinstance(email, str)
            or len(email) > 255
            or not storable(email)
            or not EMAIL_RE.fullmatch(email.strip())
        ):
            errors["customer_email"] = "A valid e-mail address."
        else:
            values["customer_email"] = email.strip()
    status = body.get("status")
    if status is None:
        values["status"] = DEFAULT_STATUS
    elif not isinstance(status, str) or not STATUS_RE.fullmatch(status):
        errors["status"] = "Lowercase letters, digits and '_', at most 50, e.g. received or in_review."
    else:
        values["status"] = status
    for name in DATE_FIELDS:
        value = body.get(name)
        if value is None and name not in REQUIRED:
            values[name] = None
        elif (parsed := parse_datetime(value)) is None:
            if name in REQUIRED and value in (None, ""):
                continue  # already reported as required
            errors[name] = "An ISO 8601 date-time with a time zone, e.g. 2026-11-25T09:30:00Z."
        else:
            values[name] = parsed
    for name in JSON_FIELDS:
        value = body.get(name)
        if value is not None and not isinstance(value, dict):
            errors[name] = "A JSON object."
        elif (problem := json_problem(value)) is not None:
            errors[name] = problem
        values[name] = value
    webhooks, webhook_errors = outbox.parse_webhooks(body.get("webhooks"))
    errors.update(webhook_errors)
    values["webhooks"] = webhooks
    if errors:
        raise Invalid("Some fields are missing or not valid.", errors)
    return values


@dataclass(frozen=True)
class Upsert:
    order: Order
    result: str  # created, updated or unchanged
    changed: tuple[str, ...] = ()


def same(a: Any, b: Any) -> bool:
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a.astimezone(timezone.utc) == b.astimezone(timezone.utc)
    return a == b


def upsert(actor: Actor, order_id: str, body: Any) -> Upsert:
    """Create or replace an order's fields (r2_assets excepted: stages carry their assets).

    Idempotent: the same body again changes nothing and writes nothing. Audited ``order_created`` or
    ``order_updated`` (with the changed field names). Raises Invalid (per-field errors); nothing is
    written then.
    """
    order_id = validate_order_id(order_id)
    values = validate_order(body)
    with transaction():
        created = db.session.scalars(
            insert(Order)
            .values(order_id=order_id, **{k: db_value(k, v) for k, v in values.items()})
            .on_conflict_do_nothing(index_elements=[Order.order_id])
            .returning(Order),
            execution_options={"populate_existing": True},
        ).one_or_none()
        if created is not None:
            audit.record(
                actor,
                "order_created",
                order_id=order_id,
                details={"platform": values["platform"], "project": values["project"]},
            )
            return Upsert(created, "created", tuple(k for k, v in values.items() if v is not None))
        order = db.session.scalars(
            select(Order)
            .where(Order.order_id == order_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        changed = tuple(name for name, value in values.items() if not same(getattr(order, name), value))
        if not changed:
            return Upsert(order, "unchanged")
        for name in changed:
            setattr(order, name, db_value(name, values[name]))
        audit.record(actor, "order_updated", order_id=order_id, details={"changed": list(changed)})
    return Upsert(order, "updated", changed)
