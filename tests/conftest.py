"""Test fixtures on a real PostgreSQL: one fresh database per run, migrated once, tables emptied per test."""
from __future__ import annotations

import os
import re
import secrets
import tempfile
from contextlib import contextmanager, nullcontext
from pathlib import Path

import psycopg2
import pytest
from flask import g, request_started
from psycopg2 import sql
from sqlalchemy import text
from sqlalchemy.engine import make_url

from lhb_review import create_app
from lhb_review.config import normalise_url, url_for_database
from lhb_review.extensions import db

ROOT = Path(__file__).resolve().parent.parent


def plain_dsn(url: str) -> str:
    """A libpq URL (psycopg2.connect) for a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def admin_connect(url: str):
    conn = psycopg2.connect(plain_dsn(url))
    conn.autocommit = True
    return conn


def create_database(server_url: str, name: str) -> str:
    conn = admin_connect(server_url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()
    return url_for_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    conn = admin_connect(server_url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        conn.close()


@pytest.fixture(scope="session")
def server_url(tmp_path_factory) -> str:
    """The PostgreSQL server the suite runs on: TEST_DATABASE_URL, or an embedded server of its own."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        return normalise_url(configured)
    from lhb_review import embedded

    pgdata = Path(tempfile.mkdtemp(prefix="lhb-test-pg-")) / "pgdata"
    return url_for_database(embedded.start(pgdata, database="postgres"), "postgres")


@pytest.fixture(scope="session")
def database_url(server_url):
    name = f"lhb_test_{os.getpid()}_{secrets.token_hex(3)}"
    url = create_database(server_url, name)
    yield url
    drop_database(server_url, name)


@pytest.fixture(scope="session")
def scratch_database(server_url):
    """A factory for extra empty databases on the same server, dropped at the end of the run."""
    made: list[str] = []

    def make(prefix: str = "scratch") -> str:
        name = f"lhb_{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
        made.append(name)
        return create_database(server_url, name)

    yield make
    for name in made:
        drop_database(server_url, name)


def test_env(database_url: str, tmp_path: Path, **extra) -> dict:
    env = {
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "ASSET_DIR": str(tmp_path / "assets"),
        "LOG_LEVEL": "WARNING",
        # The webhook tests' receiver listens on loopback: allow-listed explicitly, as a deployment would.
        "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


test_env.__test__ = False  # a helper, not a test, though test modules import it by name


@pytest.fixture(scope="session")
def app(database_url, tmp_path_factory):
    from flask_migrate import upgrade

    tmp = tmp_path_factory.mktemp("app")
    application = create_app({"TESTING": True}, env=test_env(database_url, tmp))
    request_started.connect(fresh_request_globals, application)
    with application.app_context():
        upgrade()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def fresh_request_globals(sender, **extra) -> None:
    """Each request starts with an empty ``g``, as in production.

    Tests hold an app context open, and a request pushed inside it reuses that context, so without this
    Flask-Login's cached user and Flask-WTF's cached CSRF token would leak from one request (and one
    test client) into the next.
    """
    g.__dict__.clear()


def table_names(conn) -> list[str]:
    rows = conn.execute(text(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'alembic_version'"
    )).scalars()
    return sorted(rows)


@pytest.fixture(autouse=True)
def _app_context(request):
    """Tests that use the app run inside its context and start from empty tables."""
    if "app" not in request.fixturenames:
        yield
        return
    application = request.getfixturevalue("app")
    server = request.getfixturevalue("live_server") if "live_server" in request.fixturenames else None
    with application.app_context():
        yield
        db.session.remove()
        with server.paused() if server is not None else nullcontext(), db.engine.begin() as conn:
            names = table_names(conn)
            if names:
                conn.execute(text("SET LOCAL session_replication_role = replica"))
                conn.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE"))
        reset_rate_limits()


def reset_rate_limits() -> None:
    """Each test starts with no sign-in attempts counted (in-memory store only; a shared Redis is left alone)."""
    from limits.storage import MemoryStorage

    from lhb_review.extensions import limiter

    if limiter.enabled and isinstance(getattr(limiter, "_storage", None), MemoryStorage):
        limiter.reset()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class Browser:
    """A test client that carries its CSRF token the way the pages do."""

    def __init__(self, client):
        self.client = client
        self.csrf = None

    def refresh_csrf(self, path: str = "/login") -> str:
        html = self.get(path).get_data(as_text=True)
        match = CSRF_RE.search(html)
        assert match, f"no CSRF token on {path}"
        self.csrf = match.group(1)
        return self.csrf

    def _fresh_context(self):
        # The test body runs inside an app context; a request would reuse it, and with it `g`
        # (Flask-Login's user, Flask-WTF's token). Each request gets an app context of its own.
        return self.client.application.app_context()

    def get(self, *args, **kwargs):
        with self._fresh_context():
            return self.client.get(*args, **kwargs)

    def post(self, path: str, data: dict | None = None, *, csrf: bool = True, htmx: bool = False, **kwargs):
        data = dict(data or {})
        headers = dict(kwargs.pop("headers", {}) or {})
        if csrf:
            token = self.csrf or self.refresh_csrf()
            if htmx:
                headers["X-CSRFToken"] = token
            else:
                data.setdefault("csrf_token", token)
        if htmx:
            headers["HX-Request"] = "true"
        with self._fresh_context():
            return self.client.post(path, data=data, headers=headers, **kwargs)

    def login(self, email: str, password: str):
        self.refresh_csrf("/login")
        response = self.post("/login", {"email": email, "password": password})
        self.csrf = None
        return response


@pytest.fixture
def client(app):
    return Browser(app.test_client())


@pytest.fixture
def make_client(app):
    return lambda: Browser(app.test_client())


@pytest.fixture
def login_as(app):
    """login_as(user) -> a signed-in Browser for that user (its password is factories.PASSWORD)."""
    from tests.factories import PASSWORD

    def do(user, client=None):
        browser = client or Browser(app.test_client())
        response = browser.login(user.email, PASSWORD)
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        browser.refresh_csrf("/queue")
        return browser

    return do


class LiveServer:
    """The app served over real HTTP on a free loopback port, in a thread of the test process.

    Pages keep talking after a test (polling, a claim given back as a page closes), so between tests the
    server is paused: requests that arrive answer 503 without touching the database, and the tables are
    emptied only once the requests already running have finished.
    """

    def __init__(self, application):
        import threading

        from werkzeug.serving import make_server

        self._cond = threading.Condition()
        self._active = 0
        self._paused = False
        self.server = make_server("127.0.0.1", 0, self._gated(application), threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _gated(self, application):
        def wsgi(environ, start_response):
            with self._cond:
                if self._paused:
                    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
                    return [b"between tests"]
                self._active += 1
            try:
                return list(application(environ, start_response))
            finally:
                with self._cond:
                    self._active -= 1
                    self._cond.notify_all()

        return wsgi

    @contextmanager
    def paused(self, timeout: float = 15):
        with self._cond:
            self._paused = True
            self._cond.wait_for(lambda: self._active == 0, timeout=timeout)
        try:
            yield
        finally:
            with self._cond:
                self._paused = False

    def stop(self):
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture(scope="session")
def live_server(app):
    server = LiveServer(app)
    yield server
    server.stop()
