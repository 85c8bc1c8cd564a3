"""Rows with sensible defaults, written straight to the database (not through the services under test)."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

from lhb_review.extensions import db
from lhb_review.models import Order, ReviewStage, User
from lhb_review.ops.users import hash_password

PASSWORD = "correct horse battery"
_HASH = hash_password(PASSWORD)
_seq = itertools.count(1)


def make_user(email: str | None = None, role: str = "reviewer", active: bool = True) -> User:
    user = User(email=email or f"user{next(_seq)}@example.com", password_hash=_HASH, role=role, active=active)
    db.session.add(user)
    db.session.commit()
    return user


def make_order(order_id: str | None = None, **fields) -> Order:
    n = next(_seq)
    values = dict(
        order_id=order_id or f"ORD-{n:05d}",
        platform="shopify",
        project="my-first-adventure",
        customer_first_name="Ada",
        customer_last_name="Lovelace",
        customer_email=f"ada{n}@example.com",
        order_date=datetime.now(timezone.utc) - timedelta(days=1),
        status="in_review",
        character_specs={"name": "Maya", "age": 5, "hair": {"color": "brown", "style": "curly"}},
        book_specs={"title": "Maya and the Moon", "pages": 24},
        r2_assets={
            "preBria": [{"key": f"orders/{n}/preBria/front.png", "label": "Front", "content_type": "image/png",
                         "sha256": "0" * 64}],
            "postBria": [{"key": f"orders/{n}/postBria/page-1.png", "label": "Page 1",
                          "content_type": "image/png", "sha256": "1" * 64}],
            "postPdf": [{"key": f"orders/{n}/postPdf/book.pdf", "label": "Book", "content_type": "application/pdf",
                         "sha256": "2" * 64}],
        },
    )
    values.update(fields)
    order = Order(**values)
    db.session.add(order)
    db.session.commit()
    return order


def make_stage(order: Order | str, stage: str = "preBria", status: str = "pending", **fields) -> ReviewStage:
    order_id = order if isinstance(order, str) else order.order_id
    row = ReviewStage(order_id=order_id, stage_name=stage, status=status, **fields)
    db.session.add(row)
    db.session.commit()
    return row


def make_order_with_stages(*statuses: str, **fields) -> Order:
    """An order whose stages, in pipeline order, have the given statuses."""
    order = make_order(**fields)
    for name, status in zip(("preBria", "postBria", "postPdf"), statuses):
        make_stage(order, name, status)
    return order
