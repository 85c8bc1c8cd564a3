"""Count the SQL statements a block of code sends, to prove a page's cost does not grow with the data."""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

from lhb_review.extensions import db


@contextmanager
def count_statements():
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
