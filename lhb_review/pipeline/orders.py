"""Orders from the pipeline: validated field by field and upserted idempotently, with an audit row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import null, select
from sqlalchemy.dialects.postgresql import insert

from lhb_review.extensions import db
from lhb_review.models import Order
from lhb_review.core import audit, contracts
from lhb_review.review import outbox
from lhb_review.core.actors import Actor
from lhb_review.core.tx import transaction

PLATFORMS = contracts.PLATFORMS
JSON_FIELDS = ("character_specs", "book_specs", "order_details")
DEFAULT_STATUS = "received"


def validate_order_id(order_id: str) -> str:
    return contracts.checked(contracts.ORDER_ID_PARAM, order_id, "Order ids are 1-255 letters, digits, '#', "
                             "'.', '_', ':' or '-'.", prefix="order_id")


def storable(text: str) -> bool:
    """PostgreSQL stores neither NUL characters nor lone surrogates (which JSON can encode as \\udxxx)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def db_value(name: str, value: Any) -> Any:
    """SQL NULL rather than JSON null for an absent JSONB field."""
    return null() if value is None and name in JSON_FIELDS + ("webhooks",) else value


def validate_order(body: Any) -> dict[str, Any]:
    """The order's columns from a request body (contracts.OrderInput); raises Invalid with one message per
    bad field. Callback URLs are judged by outbox.url_problem."""
    order = contracts.checked(
        contracts.ORDER_INPUT,
        body,
        "Some fields are missing or not valid.",
        context={"url_problem": outbox.url_problem},
    ) if isinstance(body, dict) else contracts.checked(contracts.OrderInput, body, "")
    return order.columns()


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
