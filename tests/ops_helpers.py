"""Helpers shared by the operations tests: extra apps on the same or an unreachable database."""
from __future__ import annotations

import socket

from flask import Blueprint, abort
from sqlalchemy import text

from lhb_review import create_app
from lhb_review.extensions import db
from tests.conftest import test_env


def closed_port_url() -> str:
    """A PostgreSQL URL on a loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql://postgres@127.0.0.1:{port}/nowhere"


def failing_routes() -> Blueprint:
    bp = Blueprint("boom", __name__)

    @bp.get("/boom")
    def boom():
        raise RuntimeError("the flux capacitor <b>melted</b>")

    @bp.get("/api/v1/boom")
    def api_boom():
        raise KeyError("missing-key")

    @bp.get("/boom/db")
    def boom_db():
        db.session.execute(text("SELECT * FROM table_that_does_not_exist"))

    @bp.get("/boom/403")
    def forbidden():
        abort(403)

    return bp


def make_app(database_url: str, tmp_path, **config):
    env = test_env(database_url, tmp_path)
    env.update({k: str(v) for k, v in config.pop("env", {}).items()})
    application = create_app({"TESTING": True, **config}, env=env)
    application.register_blueprint(failing_routes())
    return application



class SeparateUserClient:
    """Wraps a Flask test client so each request starts from an empty ``g``.

    The suite's autouse app context is shared by every request of a test, and Flask-Login (the user)
    and Flask-WTF (the CSRF token) cache per-request values in ``g``; without this a second signed-in
    client would be served with the first one's user and token.
    """

    CACHED = ("_login_user", "csrf_token")

    def __init__(self, client):
        self._client = client

    def __getattr__(self, name):
        return getattr(self._client, name)

    def _fresh(self):
        from flask import g

        for key in self.CACHED:
            g.pop(key, None)

    def get(self, *args, **kwargs):
        self._fresh()
        return self._client.get(*args, **kwargs)

    def post(self, *args, **kwargs):
        self._fresh()
        return self._client.post(*args, **kwargs)


def sign_in(app, login_as, user):
    """A signed-in browser for ``user`` that can sit beside other users' browsers in one test."""
    from tests.conftest import Browser

    return login_as(user, client=Browser(SeparateUserClient(app.test_client())))
