"""Database faults on a private PostgreSQL server: a restart while requests run, a lock held elsewhere, a
statement that runs too long, a read-only database and a full disk. Each gets a clear answer in bounded time,
the app recovers by itself, and nothing committed is lost or half-written."""
from __future__ import annotations

import os
import re
import subprocess
import threading
import time

import psycopg2
import pytest
import requests
from flask import got_request_exception, request_started
from flask_migrate import upgrade
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from lhb_review import create_app
from lhb_review.web import resilience
from lhb_review.extensions import db
from lhb_review.models import Approval, AuditLog, ReviewStage
from lhb_review import review
from lhb_review.core.actors import Actor
from tests.conftest import CSRF_RE, Browser, LiveServer, fresh_request_globals, test_env
from tests.factories import PASSWORD, make_order_with_stages, make_user
from tests.private_pg import PrivateServer

REVIEWER = Actor(email="reviewer@example.com", ip="192.0.2.5", user_agent="pytest")
LOCK_TIMEOUT_MS = 800


@pytest.fixture(scope="module")
def private_pg():
    server = PrivateServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def fault_app(private_pg, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faults")
    application = create_app({"TESTING": True}, env=test_env(
        private_pg.url, tmp, DB_LOCK_TIMEOUT=LOCK_TIMEOUT_MS, DB_STATEMENT_TIMEOUT=20000,
        DB_POOL_MIN=2, DB_POOL_MAX=8))
    request_started.connect(fresh_request_globals, application)
    with application.app_context():
        upgrade()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def superuser(private_pg, database=None):
    conn = psycopg2.connect(private_pg.dsn(database))
    conn.autocommit = True
    return conn


@pytest.fixture
def fapp(fault_app, private_pg):
    """The fault app's context, with empty tables afterwards and the server left running and writable."""
    with fault_app.app_context():
        yield fault_app
        discard_session()
    try:
        psycopg2.connect(private_pg.dsn()).close()
    except psycopg2.OperationalError:
        private_pg.start()
    conn = superuser(private_pg, "postgres")
    with conn.cursor() as cur:
        cur.execute(f"ALTER DATABASE {private_pg.database} RESET default_transaction_read_only")
    conn.close()
    conn = superuser(private_pg)
    with conn.cursor() as cur:
        cur.execute("DROP TRIGGER IF EXISTS fill_the_disk ON audit_logs")
        cur.execute("BEGIN; SET LOCAL session_replication_role = replica; "
                    "TRUNCATE orders, review_stages, approvals, audit_logs, error_logs, users CASCADE; COMMIT")
    conn.close()
    with fault_app.app_context():
        db.engine.dispose()


def discard_session() -> None:
    """Drop the test's session; its connection may have died with the server, which is what we test."""
    try:
        db.session.remove()
    except sa_exc.DBAPIError:
        db.session.close()


def signed_in_browser(application, user) -> Browser:
    browser = Browser(application.test_client())
    response = browser.login(user.email, PASSWORD)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    browser.refresh_csrf("/queue")
    return browser


def counts(conn) -> dict[str, int]:
    with conn.cursor() as cur:
        result = {}
        for table in ("orders", "review_stages", "approvals", "audit_logs", "users"):
            cur.execute(f"SELECT count(*) FROM {table}")
            result[table] = cur.fetchone()[0]
        return result


def assert_decisions_whole(conn) -> int:
    """Every stage, its approvals row and its audit rows tell the same story; returns the decisions seen."""
    with conn.cursor() as cur:
        cur.execute("SELECT order_id, stage_name, status, reviewer_email FROM review_stages")
        stages = cur.fetchall()
        cur.execute("SELECT order_id, stage, status, reviewer_email FROM approvals")
        approvals = {(o, s): (st, r) for o, s, st, r in cur.fetchall()}
        cur.execute("SELECT order_id, stage, action, count(*) FROM audit_logs "
                    "WHERE action LIKE 'stage_%' GROUP BY 1, 2, 3")
        audits = {(o, s, a): n for o, s, a, n in cur.fetchall()}
    decided = 0
    for order_id, stage, status, reviewer in stages:
        approved = audits.get((order_id, stage, "stage_approved"), 0)
        if status == "approved":
            decided += 1
            assert approvals.get((order_id, stage)) == ("approved", reviewer), (order_id, stage)
            assert approved == 1, (order_id, stage, audits)
        else:
            assert status == "pending", (order_id, stage, status)
            assert (order_id, stage) not in approvals, (order_id, stage)
            assert approved == 0, (order_id, stage)
    assert sum(n for (_, _, a), n in audits.items() if a == "stage_approved") == decided
    return decided


# --- mapping: each SQLSTATE, raised for real by the server ------------------------------------------------

SQLSTATES = {
    "55P03": ("locked", 409), "57014": ("database_timeout", 503), "25006": ("database_read_only", 503),
    "53100": ("database_full", 503), "57P01": ("database_unavailable", 503),
    "57P03": ("database_unavailable", 503), "53300": ("database_unavailable", 503),
}


@pytest.mark.parametrize("sqlstate", SQLSTATES)
def test_each_database_fault_has_its_own_clear_answer(fapp, sqlstate):
    with pytest.raises(sa_exc.DBAPIError) as caught:
        db.session.execute(text(f"DO $$ BEGIN RAISE EXCEPTION 'fault' USING ERRCODE = '{sqlstate}'; END $$"))
    db.session.rollback()
    fault = resilience.classify(caught.value)
    assert (fault.code, fault.status) == SQLSTATES[sqlstate]
    assert fault.retry_after > 0 and fault.message


@pytest.mark.parametrize("sqlstate", ["23505", "42P01", "22P02"])
def test_bugs_are_not_mistaken_for_faults(fapp, sqlstate):
    with pytest.raises(sa_exc.DBAPIError) as caught:
        db.session.execute(text(f"DO $$ BEGIN RAISE EXCEPTION 'bug' USING ERRCODE = '{sqlstate}'; END $$"))
    db.session.rollback()
    assert resilience.classify(caught.value) is None


# --- PostgreSQL restarted while requests run ---------------------------------------------------------------

def test_a_restart_while_requests_run_gets_clear_503s_and_the_app_recovers(fapp, private_pg):
    user = make_user()
    order_ids = [make_order_with_stages("pending").order_id for _ in range(40)]
    db.session.rollback()  # hold no connection of the test's own across the restart
    server = LiveServer(fapp)
    http = requests.Session()
    page = http.get(server.url + "/login", timeout=10).text
    token = CSRF_RE.search(page).group(1)
    assert http.post(server.url + "/login", data={"email": user.email, "password": PASSWORD,
                                                  "csrf_token": token}, allow_redirects=False).status_code == 302
    answers: list[tuple[float, int, str, str | None]] = []
    outcomes: list[str] = []
    unhandled: list[str] = []
    stop = threading.Event()

    def record_unhandled(sender, exception, **extra):
        unhandled.append(f"{type(exception).__name__}: {exception}")

    got_request_exception.connect(record_unhandled, fapp)

    def browse():
        while not stop.is_set():
            try:
                r = http.get(server.url + "/queue", allow_redirects=False, timeout=20,
                             headers={"Accept": "text/html"})
                answers.append((time.monotonic(), r.status_code, r.text, r.headers.get("Retry-After")))
            except requests.RequestException as exc:  # pragma: no cover - reported by the assertion below
                answers.append((time.monotonic(), 0, repr(exc), None))
            time.sleep(0.02)

    deciding = requests.Session()
    token = CSRF_RE.search(deciding.get(server.url + "/login", timeout=10).text).group(1)
    reviewer = make_user()
    db.session.rollback()
    assert deciding.post(server.url + "/login", data={"email": reviewer.email, "password": PASSWORD,
                                                      "csrf_token": token}, allow_redirects=False).status_code == 302
    token = CSRF_RE.search(deciding.get(server.url + "/queue", timeout=10).text).group(1)

    def decide():
        for order_id in order_ids:
            if stop.is_set():
                break
            try:
                r = deciding.post(f"{server.url}/orders/{order_id}/stages/preBria/approve",
                                  data={"csrf_token": token, "notes": "fine"}, allow_redirects=False, timeout=20)
                outcomes.append({303: "ok", 503: "fault"}.get(r.status_code, f"unexpected {r.status_code}"))
            except requests.RequestException as exc:  # pragma: no cover - reported by the assertion below
                outcomes.append(f"unexpected {exc!r}")
            time.sleep(0.05)

    workers = [threading.Thread(target=browse), threading.Thread(target=decide)]
    for worker in workers:
        worker.start()
    try:
        deadline = time.monotonic() + 20
        while not any(code == 200 for _, code, _, _ in answers) and time.monotonic() < deadline:
            time.sleep(0.05)
        private_pg.stop()
        outage_started = time.monotonic()
        time.sleep(1.0)
        private_pg.start()
        restarted = time.monotonic()
        deadline = restarted + 30
        while time.monotonic() < deadline:
            if any(code == 200 and t > restarted for t, code, _, _ in list(answers)):
                break
            time.sleep(0.1)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
        server.stop()
        got_request_exception.disconnect(record_unhandled, fapp)

    during = [(code, body, retry) for t, code, body, retry in answers if outage_started <= t <= restarted]
    assert during, "requests ran during the outage"
    assert {code for code, _, _ in during} <= {200, 503}, [c for c, _, _ in during]
    refused = [(body, retry) for code, body, retry in during if code == 503]
    assert refused, "the outage was seen"
    assert all("database is not reachable" in body and retry == "5" for body, retry in refused)
    assert not unhandled, unhandled
    assert {code for _, code, _, _ in answers} <= {200, 503}, "never a 500 or a dropped connection"
    assert any(code == 200 and t > restarted for t, code, _, _ in answers), "the app recovered by itself"
    assert not [o for o in outcomes if o.startswith("unexpected")], outcomes
    assert "ok" in outcomes

    conn = superuser(private_pg)
    try:
        assert assert_decisions_whole(conn) == outcomes.count("ok")
    finally:
        conn.close()


def test_the_database_going_away_before_a_request_ends_is_not_a_500(fapp, private_pg):
    """Found by the restart test: a page rendered fine, then the server died before the request's teardown,
    whose rollback raised and turned the finished page into a 500."""
    context = fapp.app_context()  # a context of its own, as each request has, so popping it runs the teardowns
    context.push()
    try:
        db.session.execute(text("SELECT 1"))  # the session now holds a transaction on a live connection
        private_pg.stop()
    finally:
        try:
            context.pop()  # runs the teardowns; must not raise
        finally:
            private_pg.start()
    with fapp.app_context():
        assert db.session.execute(text("SELECT 2")).scalar() == 2, "the pool replaced the dead connection"


def test_json_clients_get_the_json_error_while_the_database_is_down(fapp, private_pg):
    browser = signed_in_browser(fapp, make_user())
    private_pg.stop()
    try:
        response = browser.get("/queue", headers={"Accept": "application/json"})
    finally:
        private_pg.start()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["error"]["code"] == "database_unavailable"
    assert browser.get("/queue").status_code == 200


def test_the_api_answers_its_json_error_while_the_database_is_down(fapp, private_pg):
    from tests.world import make_api_token

    token = make_api_token("fault-pipeline")
    db.session.rollback()
    client = fapp.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/stages", headers=headers).status_code == 200
    private_pg.stop()
    try:
        response = client.get("/api/v1/stages", headers=headers)
    finally:
        private_pg.start()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    error = response.get_json()["error"]
    assert error["code"] == "database_unavailable" and "not reachable" in error["message"]
    assert client.get("/api/v1/stages", headers=headers).status_code == 200


# --- a lock held by another session ------------------------------------------------------------------------

def test_a_lock_held_elsewhere_answers_in_bounded_time(fapp, private_pg):
    """Signing in writes an audit row; another session holds the table, so the write cannot get its lock."""
    user = make_user()
    before = counts(superuser(private_pg))
    holder = psycopg2.connect(private_pg.dsn())
    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLE audit_logs IN EXCLUSIVE MODE")
        browser = Browser(fapp.test_client())
        response = browser.login(user.email, PASSWORD)
    finally:
        holder.rollback()
        holder.close()
    assert response.status_code == 409
    assert response.headers["Retry-After"] == "2"
    html = response.get_data(as_text=True)
    assert "Someone else is changing this right now" in html
    assert counts(superuser(private_pg)) == before
    error_id = re.search(r"E-[A-Z2-9]{4}-[A-Z2-9]{4}", html).group(0)
    with superuser(private_pg).cursor() as cur:
        cur.execute("SELECT error_type, message FROM error_logs WHERE error_id = %s", (error_id,))
        kind, message = cur.fetchone()
    assert "lock" in message.lower(), "an operator finds the lock timeout in the error log by the page's id"
    assert browser.get("/queue").status_code == 302, "the refused sign-in left nobody signed in"


def test_a_statement_cancelled_by_the_statement_timeout_answers_clearly(private_pg, tmp_path, fapp):
    slow = create_app({"TESTING": True}, env=test_env(private_pg.url, tmp_path, DB_LOCK_TIMEOUT=0,
                                                      DB_STATEMENT_TIMEOUT=700))
    user = make_user()
    holder = psycopg2.connect(private_pg.dsn())
    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLE audit_logs IN EXCLUSIVE MODE")
        with slow.app_context():
            response = Browser(slow.test_client()).login(user.email, PASSWORD)
            db.session.remove()
            db.engine.dispose()
    finally:
        holder.rollback()
        holder.close()
    assert response.status_code == 503
    assert "took too long" in response.get_data(as_text=True)
    conn = superuser(private_pg)
    assert counts(conn)["audit_logs"] == 0
    conn.close()


# --- read-only database ------------------------------------------------------------------------------------

def test_a_read_only_database_refuses_the_change_clearly_and_keeps_what_was_saved(fapp, private_pg):
    user = make_user()
    order = make_order_with_stages("pending")
    review.approve(REVIEWER, order.order_id, "preBria", "looks right")
    browser = signed_in_browser(fapp, user)
    conn = superuser(private_pg)
    saved = counts(conn)
    admin = superuser(private_pg, "postgres")
    with admin.cursor() as cur:
        cur.execute(f"ALTER DATABASE {private_pg.database} SET default_transaction_read_only = on")
    discard_session()
    db.engine.dispose()  # new connections pick the setting up, as after a fail-over to a standby
    try:
        assert browser.get("/queue").status_code == 200, "reading still works"
        response = browser.post("/logout")
        assert response.status_code == 503
        assert "accepts no changes" in response.get_data(as_text=True)
        assert response.headers["Retry-After"] == "30"
        assert counts(conn) == saved
        assert browser.get("/queue").status_code == 200, "the refused sign-out left the session as it was"
    finally:
        with admin.cursor() as cur:
            cur.execute(f"ALTER DATABASE {private_pg.database} RESET default_transaction_read_only")
        admin.close()
        conn.close()
        db.engine.dispose()


# --- a full disk -------------------------------------------------------------------------------------------

def test_a_full_disk_refuses_the_change_clearly_and_keeps_what_was_saved(fapp, private_pg):
    """SQLSTATE 53100 raised by the server itself (a trigger standing in for the storage layer)."""
    user = make_user()
    conn = superuser(private_pg)
    saved = counts(conn)
    with conn.cursor() as cur:
        cur.execute("CREATE OR REPLACE FUNCTION fill_the_disk() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = '53100'; "
                    "END $$")
        cur.execute("CREATE TRIGGER fill_the_disk BEFORE INSERT ON audit_logs "
                    "FOR EACH ROW EXECUTE FUNCTION fill_the_disk()")
    try:
        response = Browser(fapp.test_client()).login(user.email, PASSWORD)
        assert response.status_code == 503
        assert "out of disk space" in response.get_data(as_text=True)
        assert counts(conn) == saved
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP TRIGGER IF EXISTS fill_the_disk ON audit_logs")
        conn.close()


def can_mount() -> bool:
    return os.geteuid() == 0 and os.path.exists("/bin/mount")


@pytest.fixture
def tiny_tablespace(private_pg):
    """A tablespace on a 1 MB tmpfs: a real disk that really fills up (needs root to mount)."""
    if not can_mount():
        pytest.skip("mounting a small tmpfs needs root")
    import pwd

    where = private_pg.root / "tiny"  # beside the data directory, where the server's user can reach
    where.mkdir(exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    owner = pwd.getpwnam(private_pg.server.system_user) if private_pg.server.system_user else None
    if owner:
        os.chown(where, owner.pw_uid, owner.pw_gid)
    conn = superuser(private_pg)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLESPACE tiny LOCATION '{where}'")
        yield conn
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS filler")
            cur.execute("ALTER TABLE audit_logs SET TABLESPACE pg_default")
            cur.execute("DROP TABLESPACE IF EXISTS tiny")
        conn.close()
        subprocess.run(["umount", str(where)], check=False)


def test_a_really_full_disk_refuses_the_change_clearly(fapp, private_pg, tiny_tablespace):
    user = make_user()
    conn = tiny_tablespace
    with conn.cursor() as cur:
        cur.execute("ALTER TABLE audit_logs SET TABLESPACE tiny")
        cur.execute("CREATE TABLE filler (junk text) TABLESPACE tiny")
        with pytest.raises(psycopg2.errors.DiskFull):
            for _ in range(200):
                cur.execute("INSERT INTO filler SELECT repeat(md5(random()::text), 60) FROM generate_series(1, 200)")
    saved = counts(conn)
    response = Browser(fapp.test_client()).login(user.email, PASSWORD)
    assert response.status_code == 503
    assert "out of disk space" in response.get_data(as_text=True)
    assert counts(conn) == saved


# --- the same faults on a reviewer's decision -------------------------------------------------------------

def stage_state(private_pg, order_id: str) -> tuple:
    """The stage row, its approvals row and its decision audit rows, as one comparable value."""
    conn = superuser(private_pg)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT status, reviewer_email, reviewer_notes FROM review_stages "
                        "WHERE order_id = %s AND stage_name = 'preBria'", (order_id,))
            stage = cur.fetchone()
            cur.execute("SELECT status, reviewer_email FROM approvals WHERE order_id = %s AND stage = 'preBria'",
                        (order_id,))
            approval = cur.fetchone()
            cur.execute("SELECT count(*) FROM audit_logs WHERE order_id = %s AND action LIKE 'stage_%%'", (order_id,))
            audits = cur.fetchone()[0]
        return stage, approval, audits
    finally:
        conn.close()


@pytest.fixture
def reviewer_and_order(fapp):
    browser = signed_in_browser(fapp, make_user())
    order = make_order_with_stages("pending", "pending")
    order_id = order.order_id
    db.session.rollback()
    return browser, order_id


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_a_stage_locked_by_another_session_answers_409_in_bounded_time(fapp, private_pg, reviewer_and_order, htmx):
    browser, order_id = reviewer_and_order
    before = stage_state(private_pg, order_id)
    holder = psycopg2.connect(private_pg.dsn())
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT 1 FROM review_stages WHERE order_id = %s AND stage_name = 'preBria' FOR UPDATE",
                        (order_id,))
        headers = {"HX-Target": "decision-panel", "HX-Current-URL": f"http://localhost/orders/{order_id}/stages/preBria"}
        response = browser.post(f"/orders/{order_id}/stages/preBria/approve", {"notes": "fine"}, htmx=htmx,
                                headers=headers if htmx else {})
    finally:
        holder.rollback()
        holder.close()
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "Someone else is changing this right now" in html
    if htmx:
        assert 'id="decision-panel"' in html and "<html" not in html
        assert f'href="/orders/{order_id}/stages/preBria"' in html
    assert stage_state(private_pg, order_id) == before
    again = browser.post(f"/orders/{order_id}/stages/preBria/approve", {"notes": "fine"})
    assert again.status_code == 303, "once the lock is gone the same decision goes through"
    assert stage_state(private_pg, order_id)[0][0] == "approved"


def test_a_decision_under_a_full_disk_writes_nothing_at_all(fapp, private_pg, reviewer_and_order):
    """The stage and approvals rows are written before the audit row fails: all three roll back together."""
    browser, order_id = reviewer_and_order
    before = stage_state(private_pg, order_id)
    conn = superuser(private_pg)
    with conn.cursor() as cur:
        cur.execute("CREATE OR REPLACE FUNCTION fill_the_disk() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = '53100'; "
                    "END $$")
        cur.execute("CREATE TRIGGER fill_the_disk BEFORE INSERT ON audit_logs "
                    "FOR EACH ROW EXECUTE FUNCTION fill_the_disk()")
    try:
        response = browser.post(f"/orders/{order_id}/stages/preBria/approve", {"notes": "fine"})
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP TRIGGER IF EXISTS fill_the_disk ON audit_logs")
        conn.close()
    assert response.status_code == 503
    assert "out of disk space" in response.get_data(as_text=True)
    assert stage_state(private_pg, order_id) == before


def test_a_decision_on_a_read_only_database_is_refused_clearly(fapp, private_pg, reviewer_and_order):
    browser, order_id = reviewer_and_order
    before = stage_state(private_pg, order_id)
    admin = superuser(private_pg, "postgres")
    with admin.cursor() as cur:
        cur.execute(f"ALTER DATABASE {private_pg.database} SET default_transaction_read_only = on")
    discard_session()
    db.engine.dispose()
    try:
        page = browser.get(f"/orders/{order_id}/stages/preBria")
        assert page.status_code == 200, "the stage can still be looked at"
        response = browser.post(f"/orders/{order_id}/stages/preBria/reject", {"notes": "colours"})
    finally:
        with admin.cursor() as cur:
            cur.execute(f"ALTER DATABASE {private_pg.database} RESET default_transaction_read_only")
        admin.close()
        db.engine.dispose()
    assert response.status_code == 503
    assert "accepts no changes" in response.get_data(as_text=True)
    assert stage_state(private_pg, order_id) == before
