"""The decision path through PgBouncer in transaction pooling mode: sign in, claim, approve, reject, undo and
the API's approval all work when consecutive transactions land on different server connections."""
from __future__ import annotations

import shutil

import psycopg2
import pytest
from flask import request_started
from flask_migrate import upgrade
from sqlalchemy import text

from bench.cluster import PgBouncer, ReplicatedServers, pg_bin_dir
from lhb_review import create_app
from lhb_review.core.actors import Actor
from lhb_review.extensions import db
from lhb_review.pipeline import tokens
from tests.conftest import Browser, fresh_request_globals, test_env
from tests.factories import PASSWORD, make_order_with_stages, make_user

PGBOUNCER = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
BIN_DIR = pg_bin_dir()
pytestmark = [
    pytest.mark.skipif(PGBOUNCER is None, reason="pgbouncer is not installed (Debian package pgbouncer)"),
    pytest.mark.skipif(BIN_DIR is None, reason="PostgreSQL server binaries are not installed"),
]
SERVER_CONNECTIONS = 2  # fewer than the app's pool: its connections share server connections by transaction


@pytest.fixture(scope="module")
def bouncer():
    server = ReplicatedServers(BIN_DIR, standby=False)
    pooler = PgBouncer(PGBOUNCER, server.primary.port, pool_size=SERVER_CONNECTIONS)
    yield server, pooler
    pooler.close()
    server.close()


@pytest.fixture(scope="module")
def bapp(bouncer, tmp_path_factory):
    server, pooler = bouncer
    tmp = tmp_path_factory.mktemp("pgbouncer")
    # Migrations run straight on the server, as a deploy would; the app runs through PgBouncer.
    migrating = create_app({"TESTING": True}, env=test_env(server.primary.url(), tmp))
    with migrating.app_context():
        upgrade()
        db.engine.dispose()
    application = create_app({"TESTING": True}, env=test_env(pooler.url(), tmp, DB_POOL_MIN=4, DB_POOL_MAX=6))
    request_started.connect(fresh_request_globals, application)
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


def server_backends(server) -> set[int]:
    """The backend pids of the app's server connections (PgBouncer's, as the app cannot see them)."""
    conn = psycopg2.connect(host="127.0.0.1", port=server.primary.port, user="postgres", dbname="postgres")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = 'lhb_replicas' AND backend_type = 'client backend'")
            return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


def test_the_decision_path_works_through_pgbouncer_in_transaction_mode(bapp, bouncer):
    server, _ = bouncer
    reviewer = make_user("reviewer@example.com")
    first, second, third = (make_order_with_stages("pending", order_id=f"LHB-B{n}").order_id for n in (1, 2, 3))
    browser = Browser(bapp.test_client())
    assert browser.login(reviewer.email, PASSWORD).status_code == 302
    browser.refresh_csrf("/queue")

    assert browser.post(f"/orders/{first}/stages/preBria/claim", {}).status_code < 400
    assert browser.post(f"/orders/{first}/stages/preBria/approve", {"notes": "fine"}).status_code in (302, 303)
    assert browser.post(f"/orders/{second}/stages/preBria/reject",
                        {"reasons": "text_error", "notes": "the name is misspelt"}).status_code in (302, 303)
    assert browser.post(f"/orders/{second}/stages/preBria/undo", {}).status_code < 400
    _, secret = tokens.create(Actor(email="ops@example.com", kind="system"), "pipeline")
    with bapp.test_client() as client:
        auth = {"Authorization": f"Bearer {secret}"}
        assert client.post(f"/api/v1/orders/{third}/stages/preBria/approve", json={}, headers=auth).status_code == 200
        assert client.get(f"/api/v1/orders/{third}/stages/preBria", headers=auth).get_json()["status"] == "approved"
    queue = browser.get("/queue?status=any", headers={"HX-Request": "true"})
    assert queue.status_code == 200 and first in queue.get_data(as_text=True)

    db.session.remove()
    statuses = dict(db.session.execute(text(
        "SELECT order_id, status FROM review_stages WHERE stage_name = 'preBria'")).all())
    assert statuses == {first: "approved", second: "pending", third: "approved"}
    actions = db.session.execute(text(
        "SELECT order_id, action FROM audit_logs WHERE order_id IS NOT NULL ORDER BY created_at, id")).all()
    assert (first, "stage_approved") in actions and (second, "stage_rejected") in actions
    assert (third, "stage_approved") in actions
    # PgBouncer, not the app's pool, owns the server connections: at most its pool size of them.
    assert 0 < len(server_backends(server)) <= SERVER_CONNECTIONS


def test_startup_options_do_not_pass_through_pgbouncer(bapp):
    """Why docs/scaling.md says to set the timeouts on the role: PgBouncer drops the startup options."""
    assert db.session.execute(text("SHOW statement_timeout")).scalar() == "0"
