"""The database's clock: claims, undo windows and service levels are measured against one time for all workers."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from lhb_review.extensions import db


def db_now() -> datetime:
    """PostgreSQL's now(): the start of the current transaction, the same for every row it writes."""
    return db.session.scalar(select(func.now()))
