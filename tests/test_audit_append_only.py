"""audit_logs is append-only: UPDATE, DELETE and TRUNCATE are refused by a trigger the application role cannot
get around, and deleting an order leaves its audit history in place."""
from __future__ import annotations

import psycopg2
import pytest
from psycopg2 import errors as pg_errors
from psycopg2 import sql
from sqlalchemy import text
from sqlalchemy.engine import make_url

from lhb_review import create_app
from lhb_review.extensions import db
from lhb_review.models import AuditLog, Order
from lhb_review import review
from lhb_review.core.actors import Actor
from tests.conftest import admin_connect, plain_dsn, test_env
from tests.factories import make_order_with_stages

REVIEWER = Actor(email="reviewer@example.com", ip="192.0.2.10", user_agent="pytest")
REFUSALS = {
    "update": "UPDATE audit_logs SET action = 'tampered'",
    "update-nothing": "UPDATE audit_logs SET action = 'tampered' WHERE false",
    "delete": "DELETE FROM audit_logs",
    "truncate": "TRUNCATE audit_logs",
}


def audited_order():
    order = make_order_with_stages("pending")
    review.approve(REVIEWER, order.order_id, "preBria", "fine")
    return order


def audit_rows(conn) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute("SELECT id, action, order_id, details::text FROM audit_logs ORDER BY created_at, id")
        return cur.fetchall()


@pytest.mark.parametrize("statement", REFUSALS.values(), ids=REFUSALS.keys())
def test_changing_or_removing_audit_rows_is_refused(app, database_url, statement):
    audited_order()
    conn = admin_connect(database_url)  # a superuser, so privileges are not what stops it: the trigger is
    try:
        before = audit_rows(conn)
        assert len(before) == 1
        with pytest.raises(pg_errors.InsufficientPrivilege, match="append-only"):
            with conn.cursor() as cur:
                cur.execute(statement)
        assert audit_rows(conn) == before
    finally:
        conn.close()


def test_the_refusal_reaches_the_orm_too(app):
    audited_order()
    row = db.session.query(AuditLog).one()
    row.action = "tampered"
    with pytest.raises(Exception, match="append-only"):
        db.session.commit()
    db.session.rollback()
    assert db.session.query(AuditLog).one().action == "stage_approved"


def test_new_audit_rows_are_still_written(app):
    order = audited_order()
    assert db.session.query(AuditLog).count() == 1
    review.reopen(Actor(email="admin@example.com", is_admin=True), order.order_id, "preBria")
    assert [r.action for r in db.session.query(AuditLog).order_by(AuditLog.created_at)] == [
        "stage_approved", "stage_reopened"]


def test_the_suites_replica_mode_cleanup_still_works(app, database_url):
    """Ordinary triggers are skipped under session_replication_role = replica (superuser only)."""
    audited_order()
    conn = admin_connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SET LOCAL session_replication_role = replica")
            cur.execute("TRUNCATE audit_logs")
            cur.execute("SELECT count(*) FROM audit_logs")
            assert cur.fetchone()[0] == 0
            cur.execute("ROLLBACK")
        assert len(audit_rows(conn)) == 1
    finally:
        conn.close()


def test_deleting_an_order_keeps_its_audit_history(app):
    order = audited_order()
    order_id, key = order.order_id, order.id
    before = db.session.query(AuditLog).filter_by(order_id=order_id).count()
    assert before == 1
    db.session.execute(text("DELETE FROM orders WHERE order_id = :o"), {"o": order_id})
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Order, key) is None
    assert db.session.query(AuditLog).filter_by(order_id=order_id).count() == before
    foreign_keys = db.session.execute(text(
        "SELECT count(*) FROM pg_constraint WHERE conrelid = 'audit_logs'::regclass AND contype = 'f'"
    )).scalar()
    assert foreign_keys == 0


# --- the least-privilege role ------------------------------------------------------------------------

@pytest.fixture
def app_role_database(scratch_database, tmp_path):
    """A migrated scratch database (owned by the superuser) and a role with only SELECT/INSERT/UPDATE/DELETE,
    as `flask db-bootstrap` sets up the application role."""
    from flask_migrate import upgrade

    url = scratch_database("appendonly")
    migrated = create_app({"TESTING": True}, env=test_env(url, tmp_path))
    with migrated.app_context():
        upgrade()
        order = make_order_with_stages("pending")
        review.approve(REVIEWER, order.order_id, "preBria", "fine")
        db.session.remove()
        db.engine.dispose()
    role = "lhb_app_" + make_url(url).database[-6:]
    password = "app-role-password"
    conn = admin_connect(url)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(role)), (password,))
        cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(role)))
        cur.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(
            sql.Identifier(role)))
    conn.close()
    role_url = make_url(url).set(username=role, password=password)
    yield plain_dsn(role_url.render_as_string(hide_password=False))
    conn = admin_connect(url)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        cur.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    conn.close()


ESCAPES = {
    "disable-trigger": ("ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only", pg_errors.InsufficientPrivilege),
    "disable-all": ("ALTER TABLE audit_logs DISABLE TRIGGER ALL", pg_errors.InsufficientPrivilege),
    "drop-trigger": ("DROP TRIGGER audit_logs_append_only ON audit_logs", pg_errors.InsufficientPrivilege),
    "drop-function": ("DROP FUNCTION audit_logs_refuse_change()", pg_errors.InsufficientPrivilege),
    "replace-function": (
        "CREATE OR REPLACE FUNCTION audit_logs_refuse_change() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN RETURN NULL; END $$", pg_errors.InsufficientPrivilege),
    "replica-mode": ("SET session_replication_role = replica", pg_errors.InsufficientPrivilege),
    "update": ("UPDATE audit_logs SET action = 'tampered'", pg_errors.InsufficientPrivilege),
    "delete": ("DELETE FROM audit_logs", pg_errors.InsufficientPrivilege),
    "truncate": ("TRUNCATE audit_logs", pg_errors.InsufficientPrivilege),
    "drop-table": ("DROP TABLE audit_logs", pg_errors.InsufficientPrivilege),
}


@pytest.mark.parametrize("statement,error", ESCAPES.values(), ids=ESCAPES.keys())
def test_the_application_role_cannot_get_around_the_trigger(app_role_database, statement, error):
    conn = psycopg2.connect(app_role_database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM audit_logs")
            assert cur.fetchone()[0] == 1
            cur.execute("INSERT INTO audit_logs (order_id, action) VALUES ('X', 'still_allowed')")
            conn.commit()
            with pytest.raises(error):
                cur.execute(statement)
            conn.rollback()
            cur.execute("SELECT action FROM audit_logs ORDER BY created_at")
            assert [a for (a,) in cur.fetchall()] == ["stage_approved", "still_allowed"]
    finally:
        conn.close()


def test_the_application_role_can_still_change_the_other_tables(app_role_database):
    """The same role UPDATEs and DELETEs elsewhere, so privileges alone do not explain the refusals above."""
    conn = psycopg2.connect(app_role_database)
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE review_stages SET reviewer_notes = 'changed'")
            assert cur.rowcount == 1
            cur.execute("DELETE FROM approvals")
            assert cur.rowcount == 1
        conn.rollback()
    finally:
        conn.close()


# --- the roles `flask db-bootstrap` creates -------------------------------------------------------------------

@pytest.fixture
def bootstrapped(runner, server_url, tmp_path):
    """A database set up by `flask db-bootstrap` (owner role + app role), migrated by the owner, with one
    audited decision; yields the app role's libpq URL."""
    import re
    import secrets

    from flask_migrate import upgrade

    suffix = secrets.token_hex(4)
    names = {"database": f"lhb_ao_{suffix}", "owner": f"lhb_ao_owner_{suffix}", "app": f"lhb_ao_app_{suffix}"}
    result = runner.invoke(args=["db-bootstrap", "--superuser-url", server_url, "--database", names["database"],
                                 "--owner-role", names["owner"], "--app-role", names["app"]])
    assert result.exit_code == 0, result.output
    passwords = dict(re.findall(r"^\s+(lhb_ao_\w+): (\S+)$", result.output, re.M))

    def url_of(role):
        return make_url(server_url).set(username=names[role], password=passwords[names[role]],
                                        database=names["database"]).render_as_string(hide_password=False)

    owner = create_app({"TESTING": True}, env=test_env(url_of("owner"), tmp_path))
    with owner.app_context():
        upgrade()
        order = make_order_with_stages("pending")
        review.approve(REVIEWER, order.order_id, "preBria", "fine")
        db.session.remove()
        db.engine.dispose()
    yield plain_dsn(url_of("app"))
    conn = admin_connect(server_url)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(names["database"])))
        for role in (names["app"], names["owner"]):
            cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    conn.close()


@pytest.mark.parametrize("statement", [
    "UPDATE audit_logs SET action = 'tampered'", "DELETE FROM audit_logs",
    "ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only", "DROP TRIGGER audit_logs_append_only ON audit_logs",
    "SET session_replication_role = replica",
])
def test_the_bootstrapped_app_role_cannot_change_audit_history(bootstrapped, statement):
    """The app role may UPDATE and DELETE rows of audit_logs as far as privileges go; the trigger still says no."""
    conn = psycopg2.connect(bootstrapped)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT has_table_privilege('audit_logs', 'DELETE'), "
                        "has_table_privilege('audit_logs', 'UPDATE')")
            assert cur.fetchone() == (True, True)
            with pytest.raises(pg_errors.InsufficientPrivilege):
                cur.execute(statement)
            conn.rollback()
            cur.execute("SELECT action FROM audit_logs")
            assert [a for (a,) in cur.fetchall()] == ["stage_approved"]
    finally:
        conn.close()


# --- the database's clock -------------------------------------------------------------------------------------

@pytest.mark.parametrize("sent", ["'2000-01-01T00:00:00Z'", "'2999-12-31T00:00:00Z'", "NULL"])
def test_the_application_role_cannot_choose_an_audit_rows_time(app_role_database, sent):
    conn = psycopg2.connect(app_role_database)
    try:
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO audit_logs (order_id, action, created_at) VALUES ('X', 'timed', {sent}) "
                        "RETURNING created_at = now(), created_at")
            same, stored = cur.fetchone()
            assert same, f"stored {stored} although the database's time is now()"
            cur.execute("INSERT INTO audit_logs (order_id, action) VALUES ('X', 'untimed') "
                        "RETURNING created_at = now()")
            assert cur.fetchone()[0]
        conn.rollback()
    finally:
        conn.close()


def test_the_owner_may_still_write_historic_times(app):
    """Superusers and the owner (seeding, bulk loads, restores) keep their times: they could drop the trigger."""
    from datetime import datetime, timezone

    at = datetime(2020, 5, 1, tzinfo=timezone.utc)
    db.session.add(AuditLog(order_id="X", action="seeded", created_at=at))
    db.session.commit()
    assert db.session.scalar(db.select(AuditLog.created_at).where(AuditLog.action == "seeded")) == at
