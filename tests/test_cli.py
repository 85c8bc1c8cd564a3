"""flask seed, flask users and flask health against the real server."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from lhb_review import create_app
from lhb_review.cli import classify_db_error
from lhb_review.extensions import db
from lhb_review.models import Approval, AuditLog, Order, ReviewStage, User
from tests.conftest import admin_connect, test_env
from tests.factories import make_user


def counts():
    return tuple(db.session.scalar(select(func.count()).select_from(m)) for m in (Order, ReviewStage, Approval, AuditLog))


def test_seed_loads_orders_in_every_status_and_is_idempotent(runner, app):
    result = runner.invoke(args=["seed", "--orders", "18"])
    assert result.exit_code == 0, result.output
    first = counts()
    assert first[0] == 18
    statuses = set(db.session.scalars(select(ReviewStage.status)))
    assert statuses == {"pending", "in_review", "approved", "rejected"}
    platforms = set(db.session.scalars(select(Order.platform)))
    assert platforms == {"shopify", "amazon"}
    assert db.session.scalar(select(func.count()).where(Order.platform == "amazon",
                                                        Order.amazon_order_id.is_(None))) == 0
    again = runner.invoke(args=["seed", "--orders", "18"])
    assert "0 orders created, 18 already there" in again.output
    assert counts() == first


def test_seeded_approvals_agree_with_stages(runner, app):
    runner.invoke(args=["seed", "--orders", "18"])
    mismatched = db.session.execute(text("""
        SELECT s.order_id, s.stage_name FROM review_stages s
        LEFT JOIN approvals a ON a.order_id = s.order_id AND a.stage = s.stage_name
        WHERE (s.status = 'approved') <> (coalesce(a.status, 'pending') = 'approved')
    """)).all()
    assert mismatched == []


def test_seeded_assets_exist_on_disk(runner, app):
    runner.invoke(args=["seed", "--orders", "9"])
    root = app.config["ASSET_DIR"]
    for order in db.session.scalars(select(Order)):
        for entries in order.r2_assets.values():
            for asset in entries:
                assert (root / asset["key"]).stat().st_size > 100


def test_users_create_list_disable(runner, app):
    result = runner.invoke(args=["users", "create", "Kim@Example.com", "--role", "admin", "--password-stdin"],
                           input="a long enough password\n")
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.email == "kim@example.com"))
    assert user.role == "admin" and user.password_hash.startswith("$argon2")
    make_user("other-admin@example.com", role="admin")
    listing = runner.invoke(args=["users", "list"]).output
    assert "kim@example.com" in listing and "admin" in listing
    assert runner.invoke(args=["users", "disable", "kim@example.com"]).exit_code == 0
    db.session.expire_all()
    assert db.session.scalar(select(User.active).where(User.email == "kim@example.com")) is False


def test_users_create_refuses_short_password_and_duplicates(runner, app):
    short = runner.invoke(args=["users", "create", "a@example.com", "--password-stdin"], input="short\n")
    assert short.exit_code != 0 and "at least" in short.output
    make_user("b@example.com")
    dup = runner.invoke(args=["users", "create", "b@example.com", "--password-stdin"], input="long enough pw 1\n")
    assert dup.exit_code != 0 and "already exists" in dup.output


def test_last_admin_cannot_be_disabled(runner, app):
    make_user("only@example.com", role="admin")
    result = runner.invoke(args=["users", "disable", "only@example.com"])
    assert result.exit_code != 0 and "last active admin" in result.output


def test_users_demo_prints_logins(runner, app):
    result = runner.invoke(args=["users", "demo"])
    assert "reviewer@demo.littleherobooks.com" in result.output and "password:" in result.output


def test_health_reports_server_and_pool(runner, app):
    result = runner.invoke(args=["health"])
    assert result.exit_code == 0, result.output
    for word in ("Server:", "PostgreSQL", "NOW():", "Database:", "User:", "Pool:", "Database connection OK"):
        assert word in result.output


def run_health(url: str, tmp_path, **extra):
    application = create_app(env=test_env(url, tmp_path, **extra))
    with application.app_context():
        result = application.test_cli_runner().invoke(args=["health"])
        db.engine.dispose()
    return result


def test_health_connection_refused(tmp_path):
    result = run_health("postgresql://postgres@127.0.0.1:1/postgres", tmp_path)
    assert result.exit_code == 2 and "Connection refused" in result.output


def test_health_database_missing(database_url, tmp_path):
    url = make_url(database_url).set(database="no_such_database_here").render_as_string(hide_password=False)
    result = run_health(url, tmp_path)
    assert result.exit_code == 4 and "Database missing" in result.output


def test_health_authentication_failed(database_url, tmp_path):
    url = make_url(database_url).set(username="no_such_role_here").render_as_string(hide_password=False)
    result = run_health(url, tmp_path)
    assert result.exit_code == 3 and "Authentication failed" in result.output


def test_health_ssl_error(database_url, tmp_path):
    if make_url(database_url).query.get("host") or not make_url(database_url).host:
        pytest.skip("libpq ignores sslmode on a Unix socket (the embedded server); needs a TCP server")
    result = run_health(database_url, tmp_path, DB_SSL="true")
    assert result.exit_code == 5 and "SSL error" in result.output


def test_health_permission_denied(app, database_url, tmp_path):
    conn = admin_connect(database_url)
    with conn.cursor() as cur:
        cur.execute("DROP ROLE IF EXISTS lhb_health_nobody")
        cur.execute("CREATE ROLE lhb_health_nobody LOGIN")
    try:
        url = make_url(database_url).set(username="lhb_health_nobody").render_as_string(hide_password=False)
        result = run_health(url, tmp_path)
        assert result.exit_code == 6 and "Permission denied" in result.output
        assert "SQLSTATE 42501" in result.output
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP ROLE IF EXISTS lhb_health_nobody")
        conn.close()


@pytest.mark.parametrize("message, name", [
    ('connection to server at "x" failed: Connection refused', "connection refused"),
    ('FATAL:  password authentication failed for user "lhb"', "authentication failed"),
    ('FATAL:  database "lhb" does not exist', "database missing"),
    ("server does not support SSL, but SSL was required", "SSL error"),
    ("permission denied for table orders", "permission denied"),
])
def test_failure_messages_are_classified(message, name):
    assert classify_db_error(message)[1] == name


@pytest.mark.parametrize("sqlstate, name", [
    ("28P01", "authentication failed"),
    ("28000", "authentication failed"),
    ("3D000", "database missing"),
    ("42501", "permission denied"),
    ("3F000", "schema missing"),
    ("53300", "server busy"),
    ("57P01", "server busy"),
    ("08006", "connection refused"),
])
def test_a_server_sqlstate_decides_whatever_the_language_of_the_message(sqlstate, name):
    # A German server (lc_messages=de_DE) words every failure differently; the code stays the same.
    assert classify_db_error("FATAL:  Passwort-Authentifizierung für Benutzer fehlgeschlagen", sqlstate)[1] == name


def test_an_unknown_sqlstate_is_reported_with_its_code():
    code, name, advice = classify_db_error("permission denied for table orders", "XX000")
    assert (code, name) == (1, "database error") and "XX000" in advice


def test_a_missing_table_is_classified_by_the_servers_code(database_url, tmp_path):
    """42P01 from a real server: a database without the schema (the probe's to_regclass check bypassed)."""
    conn = admin_connect(database_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS lhb_health_bare")
        cur.execute("CREATE DATABASE lhb_health_bare")
    try:
        url = make_url(database_url).set(drivername="postgresql", database="lhb_health_bare")
        import psycopg2

        bare = psycopg2.connect(url.render_as_string(hide_password=False))
        try:
            with bare.cursor() as cur, pytest.raises(psycopg2.Error) as caught:
                cur.execute("SELECT 1 FROM orders")
        finally:
            bare.close()
        assert caught.value.pgcode == "42P01"
        assert classify_db_error(str(caught.value), caught.value.pgcode)[1] == "schema missing"
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS lhb_health_bare")
        conn.close()
