"""One unit of work: commit once at the end, roll back on any exception."""
from __future__ import annotations

from contextlib import contextmanager

from lhb_review.core import routing
from lhb_review.extensions import db


@contextmanager
def transaction():
    """Run the block on the primary (reads included) and commit once.

    With replicas configured, the WAL position after the commit is kept on the session so the request can
    remember it for read-your-writes; without them nothing beyond the block's own statements runs.
    """
    session = db.session
    routing.use_primary(session)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    routing.remember_commit(session)
