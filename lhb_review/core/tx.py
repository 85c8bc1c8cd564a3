"""One unit of work: commit once at the end, roll back on any exception."""
from __future__ import annotations

from contextlib import contextmanager

from lhb_review.extensions import db


@contextmanager
def transaction():
    try:
        yield db.session
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
