"""Read replicas on a real streaming standby: read-only pages read from it, a reviewer always sees their own
decision, another reviewer's view lags by at most REPLICA_MAX_LAG_MS, a stopped standby leaves pages served
from the primary, and no write ever reaches the standby."""
from __future__ import annotations

import re
import time

import pytest
from flask import request_started
from flask_migrate import upgrade
from prometheus_client import REGISTRY
from sqlalchemy import event, text

from bench.cluster import ReplicatedServers, pg_bin_dir
from lhb_review import create_app
from lhb_review.core import routing
from lhb_review.core.actors import Actor
from lhb_review.extensions import db
from lhb_review.pipeline import tokens
from tests.conftest import Browser, fresh_request_globals, table_names, test_env
from tests.factories import PASSWORD, make_order_with_stages, make_user

MAX_LAG_MS = 4000
WRITE_WORDS = re.compile(r"^\s*(INSERT|UPDATE|DELETE|TRUNCATE|CREATE|ALTER|DROP)\b|\bFOR (UPDATE|SHARE)\b|nextval\(",
                         re.IGNORECASE)

BIN_DIR = pg_bin_dir()
pytestmark = pytest.mark.skipif(BIN_DIR is None, reason="PostgreSQL server binaries (pg_basebackup) are not installed")


@pytest.fixture(scope="module")
def servers():
    pair = ReplicatedServers(BIN_DIR)
    yield pair
    pair.close()


@pytest.fixture(scope="module")
def rapp(servers, tmp_path_factory):
    application = create_app({"TESTING": True}, env=test_env(
        servers.primary.url(), tmp_path_factory.mktemp("replicas"),
        DATABASE_REPLICA_URLS=servers.standby.url(), REPLICA_MAX_LAG_MS=MAX_LAG_MS,
        REPLICA_COOLDOWN_SECONDS=1, REPLICA_CONNECT_TIMEOUT_SECONDS=2,
    ))
    request_started.connect(fresh_request_globals, application)
    with application.app_context():
        upgrade()
    servers.wait_for_replay()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
    application.extensions[routing.EXTENSION].dispose()


@pytest.fixture(scope="module")
def replica_statements(rapp):
    """Every statement any test in this module ran on the standby."""
    seen: list[str] = []
    engine = rapp.extensions[routing.EXTENSION].replicas[0].engine
    event.listen(engine, "before_cursor_execute", lambda conn, cur, statement, *rest: seen.append(statement))
    return seen


@pytest.fixture
def ctx(rapp, servers, replica_statements):
    """An app context, and afterwards: replay resumed and caught up, no cool-down left, tables emptied."""
    with rapp.app_context():
        yield rapp
        db.session.remove()
        servers.resume_replay()
        with db.engine.begin() as conn:
            names = table_names(conn)
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE"))
        servers.wait_for_replay()
        for replica in rapp.extensions[routing.EXTENSION].replicas:
            replica.down_until = 0.0


def reads(target: str) -> float:
    return REGISTRY.get_sample_value("lhb_db_read_requests_total", {"target": target}) or 0.0


def fallbacks(reason: str) -> float:
    return REGISTRY.get_sample_value("lhb_db_replica_fallbacks_total", {"reason": reason}) or 0.0


def replica_name(rapp) -> str:
    return rapp.extensions[routing.EXTENSION].replicas[0].name


class Counted:
    """The read counters' movement over a block: how many read-only requests each target answered."""

    def __init__(self, rapp):
        self.names = ("primary", replica_name(rapp))

    def __enter__(self):
        self.before = {name: reads(name) for name in self.names}
        return self

    def __exit__(self, *exc):
        self.delta = {name: reads(name) - self.before[name] for name in self.names}


def signed_in(rapp, user) -> Browser:
    browser = Browser(rapp.test_client())
    response = browser.login(user.email, PASSWORD)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    browser.refresh_csrf("/queue")
    return browser


def approved_queue(browser: Browser) -> str:
    response = browser.get("/queue?status=approved", headers={"HX-Request": "true"})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def setup_world(servers, *orders: str):
    """Two reviewers and some orders with a pending first stage, replicated before the test looks."""
    alice, bob = make_user("alice@example.com"), make_user("bob@example.com")
    made = [make_order_with_stages("pending", order_id=order_id) for order_id in orders]
    servers.wait_for_replay()
    return alice, bob, [order.order_id for order in made]


def test_read_only_pages_are_answered_from_the_replica(ctx, servers, replica_statements):
    alice, _, (order_id,) = setup_world(servers, "LHB-R1")
    browser = signed_in(ctx, alice)
    replica_statements.clear()
    with Counted(ctx) as counted:
        for path in ("/queue", f"/orders/{order_id}", f"/orders/{order_id}/stages/preBria", "/stats"):
            response = browser.get(path)
            assert response.status_code == 200, path
            assert order_id in response.get_data(as_text=True) or path == "/stats"
    assert counted.delta == {"primary": 0, replica_name(ctx): 4}
    assert any("review_stages" in statement for statement in replica_statements)
    # Who is asking is read from the primary: a sign-out elsewhere takes effect at once.
    assert not any(re.search(r"\bFROM users\b", statement) for statement in replica_statements)


def test_a_reviewer_sees_their_own_decision_at_once_with_replay_paused(ctx, servers):
    alice, _, (order_id,) = setup_world(servers, "LHB-R2")
    browser = signed_in(ctx, alice)
    assert order_id not in approved_queue(browser)
    servers.pause_replay()
    response = browser.post(f"/orders/{order_id}/stages/preBria/approve", {"notes": "fine"})
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:300]
    assert servers.standby.query(
        f"SELECT status FROM review_stages WHERE order_id = '{order_id}' AND stage_name = 'preBria'"
    ) == "pending", "the standby should still be behind the decision"
    with Counted(ctx) as counted:
        assert order_id in approved_queue(browser)
    assert counted.delta["primary"] == 1
    # Once the standby has replayed past the decision, her pages read from it again.
    servers.resume_replay()
    servers.wait_for_replay()
    with Counted(ctx) as counted:
        assert order_id in approved_queue(browser)
    assert counted.delta[replica_name(ctx)] == 1


def test_another_reviewers_page_may_lag_within_the_limit_but_never_past_it(ctx, servers):
    alice, bob, (order_id,) = setup_world(servers, "LHB-R3")
    deciding, watching = signed_in(ctx, alice), signed_in(ctx, bob)
    servers.wait_for_replay()
    servers.pause_replay()
    assert deciding.post(f"/orders/{order_id}/stages/preBria/approve", {"notes": "fine"}).status_code in (302, 303)
    decided_at = time.monotonic()
    with Counted(ctx) as counted:
        stale = approved_queue(watching)
    if time.monotonic() - decided_at < MAX_LAG_MS / 1000:
        # Within the limit the standby may answer, and then Bob does not see Alice's decision yet.
        assert counted.delta[replica_name(ctx)] == 1 and order_id not in stale
    time.sleep(max(0.0, MAX_LAG_MS / 1000 + 0.5 - (time.monotonic() - decided_at)))
    before = fallbacks("lagging") + fallbacks("cooling_down")
    with Counted(ctx) as counted:
        assert order_id in approved_queue(watching)
    assert counted.delta == {"primary": 1, replica_name(ctx): 0}
    assert fallbacks("lagging") + fallbacks("cooling_down") == before + 1


def test_pages_are_served_from_the_primary_while_the_replica_is_stopped(ctx, servers):
    alice, _, (order_id,) = setup_world(servers, "LHB-R4")
    browser = signed_in(ctx, alice)
    servers.standby.stop()
    try:
        unavailable = fallbacks("unavailable")
        with Counted(ctx) as counted:
            for path in ("/queue", f"/orders/{order_id}"):
                response = browser.get(path)
                assert response.status_code == 200, path
                assert order_id in response.get_data(as_text=True)
        assert counted.delta == {"primary": 2, replica_name(ctx): 0}
        assert fallbacks("unavailable") == unavailable + 1  # then it cools down: no second connection attempt
    finally:
        servers.standby.start()
    servers.wait_for_replay()
    time.sleep(1.1)  # REPLICA_COOLDOWN_SECONDS
    with Counted(ctx) as counted:
        assert browser.get("/queue").status_code == 200
    assert counted.delta[replica_name(ctx)] == 1


def test_an_api_read_marks_its_token_used_on_the_primary_and_reads_from_the_replica(ctx, servers, replica_statements):
    _, secret = tokens.create(Actor(email="ops@example.com", kind="system"), "pipeline")
    (order_id,) = setup_world(servers, "LHB-R5")[2]
    replica_statements.clear()
    with Counted(ctx) as counted, ctx.test_client() as client:
        response = client.get(f"/api/v1/orders/{order_id}/stages/preBria", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["status"] == "pending"
    assert counted.delta == {"primary": 0, replica_name(ctx): 1}
    assert db.session.execute(text("SELECT last_used_at FROM api_tokens")).scalar() is not None
    assert not any("api_tokens" in statement for statement in replica_statements)


def test_no_write_ever_reaches_the_replica(ctx, servers, replica_statements):
    """A reviewer's whole round (sign in, read, claim, approve, undo, read again) and the API's reads and
    approval: the standby is asked only to read."""
    _, secret = tokens.create(Actor(email="ops@example.com", kind="system"), "pipeline")
    alice, _, (first, second) = setup_world(servers, "LHB-R6", "LHB-R7")
    replica_statements.clear()
    browser = signed_in(ctx, alice)
    for path in ("/queue", f"/orders/{first}", f"/orders/{first}/stages/preBria"):
        assert browser.get(path).status_code == 200, path
    servers.wait_for_replay()
    assert browser.post(f"/orders/{first}/stages/preBria/claim", {}).status_code < 400
    assert browser.post(f"/orders/{first}/stages/preBria/approve", {"notes": "fine"}).status_code in (302, 303)
    assert browser.post(f"/orders/{first}/stages/preBria/undo", {}).status_code < 400
    assert browser.get("/queue").status_code == 200
    servers.wait_for_replay()
    auth = {"Authorization": f"Bearer {secret}"}
    with ctx.test_client() as client:
        assert client.get(f"/api/v1/orders/{second}", headers=auth).status_code == 200
        servers.pause_replay()
        assert client.post(f"/api/v1/orders/{second}/stages/preBria/approve", json={"notes": "fine"},
                           headers=auth).status_code == 200
        # The token reads its own write although the standby has not replayed it.
        assert client.get(f"/api/v1/orders/{second}/stages/preBria", headers=auth).get_json()["status"] == "approved"
    assert replica_statements, "the read-only pages should have read from the replica"
    assert [statement for statement in replica_statements if WRITE_WORDS.search(statement)] == []
    assert servers.standby.query("SELECT pg_is_in_recovery()") is True
    assert db.session.execute(text(
        "SELECT status FROM review_stages WHERE order_id = :o AND stage_name = 'preBria'"), {"o": second}
    ).scalar() == "approved"


def test_a_write_inside_a_replica_routed_request_reads_from_the_primary(ctx, servers):
    """Even when a read-only request calls a service that writes, the write's reads see the primary: what
    the request loaded from the replica is expired, not trusted."""
    from lhb_review.core.tx import transaction
    from lhb_review.models import ReviewStage
    from lhb_review.web import replicas

    _, _, (order_id,) = setup_world(servers, "LHB-R8")
    servers.pause_replay()
    conn = servers.primary.connect()
    with conn.cursor() as cur:
        cur.execute("UPDATE review_stages SET status = 'in_review' WHERE order_id = %s", (order_id,))
    conn.close()
    with ctx.test_request_context("/queue"):
        ctx.preprocess_request()
        assert replicas.READ_ENGINE in db.session.info, "the queue should be routed to the replica"
        row = db.session.scalars(db.select(ReviewStage).where(ReviewStage.order_id == order_id)).one()
        assert row.status == "pending"  # the standby has not replayed the update
        with transaction() as session:
            assert session.get(ReviewStage, row.id).status == "in_review"
        assert replicas.READ_ENGINE not in db.session.info
        replicas.end_reads()
