"""Operator commands against the real server: flask stats, flask db-bootstrap, flask backup ..."""
from __future__ import annotations

import re
import secrets
from pathlib import Path

import psycopg2
import pytest
from flask_migrate import upgrade
from psycopg2 import errors as pg_errors
from sqlalchemy.engine import make_url

from lhb_review.extensions import db
from lhb_review.models import ErrorLog
from lhb_review.ops import backups
from tests.conftest import admin_connect, plain_dsn
from tests.factories import make_order_with_stages
from tests.ops_helpers import make_app


def test_stats_prints_the_useful_queries(runner):
    order = make_order_with_stages("approved", "pending")
    from lhb_review.review.approvals import approve_stage

    approve_stage(order.order_id, "preBria", "ann@example.com")
    db.session.add(ErrorLog(error_id="E-STAT-0001", error_type="KeyError", severity="critical", message="boom"))
    db.session.commit()
    result = runner.invoke(args=["stats"])
    assert result.exit_code == 0, result.output
    out = result.output
    for title in ("Active connections", "Table sizes", "Recent errors", "Recent approvals"):
        assert title in out
    assert re.search(r"^\s+public\s+orders\s+\d+ [kM]?B", out, re.M)
    assert "E-STAT-0001" in out and "critical" in out
    assert re.search(rf"{order.order_id}\s+preBria\s+approved\s+\S+ \S+\s+ann@example.com", out)
    assert "lhb-review" in out  # this very connection shows up in pg_stat_activity


def test_stats_on_an_empty_database_says_so(runner):
    out = runner.invoke(args=["stats"]).output
    assert "no errors recorded" in out and "no approvals yet" in out


@pytest.fixture
def bootstrap_names(server_url):
    suffix = secrets.token_hex(4)
    names = {"database": f"lhb_bt_{suffix}", "owner": f"lhb_bt_owner_{suffix}", "app": f"lhb_bt_app_{suffix}"}
    yield names
    conn = admin_connect(server_url)
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{names["database"]}" WITH (FORCE)')
        for role in (names["app"], names["owner"]):
            cur.execute(f'DROP ROLE IF EXISTS "{role}"')
    conn.close()


def bootstrap_args(server_url, names, *extra):
    return ["db-bootstrap", "--superuser-url", server_url, "--database", names["database"],
            "--owner-role", names["owner"], "--app-role", names["app"], *extra]


def role_url(server_url, names, role, password):
    return make_url(server_url).set(username=names[role], password=password,
                                    database=names["database"]).render_as_string(hide_password=False)


def test_db_bootstrap_creates_a_least_privilege_setup_idempotently(runner, server_url, bootstrap_names, tmp_path):
    names = bootstrap_names
    first = runner.invoke(args=bootstrap_args(server_url, names))
    assert first.exit_code == 0, first.output
    assert f"created role {names['owner']}" in first.output and f"created database {names['database']}" in first.output
    passwords = dict(re.findall(r"^\s+(lhb_bt_\w+): (\S+)$", first.output, re.M))
    assert set(passwords) == {names["owner"], names["app"]}

    second = runner.invoke(args=bootstrap_args(server_url, names))
    assert second.exit_code == 0, second.output
    assert "exists; password unchanged" in second.output and "Generated passwords" not in second.output
    assert not re.search(r"(lhb_bt_\w+): (\S{20,})$", second.output, re.M)

    owner_url = role_url(server_url, names, "owner", passwords[names["owner"]])
    app_url = role_url(server_url, names, "app", passwords[names["app"]])
    migrating = make_app(owner_url, tmp_path / "owner")
    with migrating.app_context():
        upgrade()
        db.engine.dispose()
    assert runner.invoke(args=bootstrap_args(server_url, names)).exit_code == 0  # after the first migration

    conn = psycopg2.connect(plain_dsn(app_url))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT current_user, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user")
        assert cur.fetchone() == (names["app"], False, False, False)
        cur.execute("INSERT INTO orders (order_id, platform, project, customer_first_name, customer_last_name, "
                    "customer_email, order_date, status) VALUES ('BT-1', 'shopify', 'p', 'A', 'B', 'a@b.c', now(), 'x')")
        cur.execute("UPDATE orders SET status = 'y' WHERE order_id = 'BT-1'")
        cur.execute("INSERT INTO review_stages (order_id, stage_name) VALUES ('BT-1', 'preBria')")
        cur.execute("SELECT version_num FROM alembic_version")
        assert cur.fetchone()
        cur.execute("DELETE FROM review_stages")
        for statement in ("CREATE TABLE intruder (id int)", "DROP TABLE orders", "TRUNCATE audit_logs",
                          "ALTER TABLE audit_logs DISABLE TRIGGER ALL", "UPDATE alembic_version SET version_num = 'x'",
                          "CREATE SCHEMA sneaky"):
            with pytest.raises(pg_errors.InsufficientPrivilege):
                cur.execute(statement)
    conn.close()

    serving = make_app(app_url, tmp_path / "app")
    assert serving.test_client().get("/readyz").status_code == 200
    with serving.app_context():
        db.engine.dispose()


def test_db_bootstrap_takes_passwords_from_the_environment(runner, server_url, bootstrap_names):
    names = bootstrap_names
    result = runner.invoke(args=bootstrap_args(server_url, names),
                           env={"DB_OWNER_PASSWORD": "owner-secret-123", "DB_APP_PASSWORD": "app-secret-456"})
    assert result.exit_code == 0, result.output
    assert "Generated passwords" not in result.output and "app-secret-456" not in result.output
    conn = psycopg2.connect(plain_dsn(role_url(server_url, names, "app", "app-secret-456")))
    conn.close()


@pytest.mark.parametrize("bad", ["Robert'); DROP", "x-y", ""])
def test_db_bootstrap_refuses_odd_names(runner, server_url, bad):
    result = runner.invoke(args=["db-bootstrap", "--superuser-url", server_url, "--app-role", bad])
    assert result.exit_code != 0
    assert "plain lower-case identifier" in result.output


def test_db_bootstrap_reports_an_unreachable_server(runner):
    result = runner.invoke(args=["db-bootstrap", "--superuser-url", "postgresql://postgres@127.0.0.1:1/postgres"])
    assert result.exit_code != 0 and "Bootstrap failed" in result.output


def test_backup_commands_end_to_end(runner, tmp_path, scratch_database):
    make_order_with_stages("approved", "pending")
    created = runner.invoke(args=["backup", "create", "--dir", str(tmp_path)])
    assert created.exit_code == 0, created.output
    assert "same major as the server" in created.output or "oldest newer one" in created.output
    archive = next(tmp_path.glob("*.dump"))
    assert str(archive) in created.output

    listed = runner.invoke(args=["backup", "list", "--dir", str(tmp_path)])
    assert archive.name in listed.output and "yes" in listed.output

    verified = runner.invoke(args=["backup", "verify", str(archive)])
    assert verified.exit_code == 0, verified.output
    assert "Verification OK" in verified.output and "public.orders" in verified.output

    target = scratch_database("cli")
    declined = runner.invoke(args=["backup", "restore", str(archive), "--target-url", target], input="n\n")
    assert declined.exit_code != 0
    conn = psycopg2.connect(plain_dsn(target))
    assert backups.relation_count(conn) == 0
    conn.close()

    restored = runner.invoke(args=["backup", "restore", str(archive), "--target-url", target], input="y\n")
    assert restored.exit_code == 0, restored.output
    refused = runner.invoke(args=["backup", "restore", str(archive), "--target-url", target, "--yes"])
    assert refused.exit_code == 3 and "not empty" in refused.output
    forced = runner.invoke(args=["backup", "restore", str(archive), "--target-url", target, "--yes", "--force"])
    assert forced.exit_code == 0, forced.output


def test_backup_prune_keeps_the_newest(runner, tmp_path):
    for _ in range(3):
        assert runner.invoke(args=["backup", "create", "--dir", str(tmp_path)]).exit_code == 0
    newest = backups.list_backups(tmp_path)[0]
    result = runner.invoke(args=["backup", "prune", "--keep", "1", "--dir", str(tmp_path)])
    assert result.exit_code == 0 and "removed 2" in result.output
    assert [Path(m.file).name for m in backups.list_backups(tmp_path)] == [Path(newest.file).name]
    assert runner.invoke(args=["backup", "prune", "--keep", "0", "--dir", str(tmp_path)]).exit_code != 0


def test_backup_create_uses_backup_dir_by_default(app, runner):
    result = runner.invoke(args=["backup", "create"])
    assert result.exit_code == 0, result.output
    assert list(Path(app.config["BACKUP_DIR"]).glob("*.dump"))
