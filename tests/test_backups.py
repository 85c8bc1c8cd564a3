"""Backups: create -> restore finds every row again; manifest, checksum, refusals, verify, prune, tool choice."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import psycopg2
import pytest

from lhb_review.extensions import db
from lhb_review.models import AuditLog, ErrorLog
from lhb_review.ops import backups
from lhb_review import review
from lhb_review.core.actors import Actor
from lhb_review.ops.backups import Tool
from tests.conftest import plain_dsn
from tests.factories import make_order_with_stages, make_user


@pytest.fixture
def data(app):
    """Rows in every table, with JSONB, INET, unicode and NULLs in them."""
    make_user("ann@example.com", role="admin")
    make_user("bob@example.com")
    actor = Actor(email="ann@example.com", ip="203.0.113.7", user_agent="Firefox ✓")
    for i in range(4):
        order = make_order_with_stages("pending", "pending", customer_first_name=f"Zoë {i}",
                                       character_specs={"name": "Mãya", "tags": [i, None, "🚀"]})
        review.approve(actor=actor, order_id=order.order_id, stage="preBria", notes=f"ok {i}")
    db.session.add(ErrorLog(error_id="E-BKUP-0001", error_type="RuntimeError", severity="error",
                            message="disk \"full\"\nline two", details={"a": [1, 2]}, ip_address="::1"))
    db.session.commit()


def app_url() -> str:
    return db.engine.url.render_as_string(hide_password=False)


def table_contents(url: str) -> dict[str, list[str]]:
    """Every row of every table as text, sorted: what 'the same data' means."""
    conn = psycopg2.connect(plain_dsn(url))
    try:
        with conn.cursor() as cur:
            tables = backups.user_tables(cur)
            contents = {}
            for schema, table in tables:
                cur.execute(f'SELECT t::text FROM "{schema}"."{table}" t ORDER BY 1')
                contents[f"{schema}.{table}"] = [r[0] for r in cur.fetchall()]
            return contents
    finally:
        conn.close()


def test_backup_restores_every_row(data, tmp_path, scratch_database):
    manifest, tools = backups.create_backup(app_url(), tmp_path)
    archive = Path(manifest.file)
    assert archive.exists() and archive.stat().st_size == manifest.size
    assert manifest.sha256 == backups.sha256_of(archive)
    assert manifest.row_counts["public.orders"] == 4
    assert manifest.row_counts["public.audit_logs"] >= 4
    assert manifest.alembic_revision and manifest.server_version
    assert tools.dump.major >= tools.server_major

    target = scratch_database("restore")
    result = backups.restore(archive, target)
    assert result.mismatches == {}
    original, restored = table_contents(app_url()), table_contents(target)
    assert restored == original
    assert restored["public.orders"] and restored["public.error_logs"]


def test_manifest_sits_next_to_the_archive(data, tmp_path):
    manifest, _ = backups.create_backup(app_url(), tmp_path)
    saved = json.loads(backups.manifest_path(Path(manifest.file)).read_text())
    assert saved["file"] == Path(manifest.file).name
    assert set(saved) >= {"size", "sha256", "row_counts", "alembic_revision", "server_version", "created_at"}
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.tmp"))


def test_restore_refuses_a_non_empty_target_unless_forced(data, tmp_path, scratch_database):
    manifest, _ = backups.create_backup(app_url(), tmp_path)
    target = scratch_database("busy")
    backups.restore(Path(manifest.file), target)
    conn = psycopg2.connect(plain_dsn(target))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DELETE FROM orders")
    with pytest.raises(backups.TargetNotEmpty):
        backups.restore(Path(manifest.file), target)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM orders")
        assert cur.fetchone()[0] == 0  # the refusal touched nothing
    conn.close()
    result = backups.restore(Path(manifest.file), target, force=True)
    assert result.mismatches == {}
    assert table_contents(target) == table_contents(app_url())


def test_a_damaged_archive_is_refused(data, tmp_path, scratch_database):
    manifest, _ = backups.create_backup(app_url(), tmp_path)
    archive = Path(manifest.file)
    raw = bytearray(archive.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    archive.write_bytes(bytes(raw))
    with pytest.raises(backups.BackupError, match="Checksum mismatch"):
        backups.verify(archive, app_url())
    with pytest.raises(backups.BackupError, match="Checksum mismatch"):
        backups.restore(archive, scratch_database("damaged"))


def test_verify_restores_into_a_scratch_database_and_drops_it(data, tmp_path):
    manifest, _ = backups.create_backup(app_url(), tmp_path)
    result = backups.verify(Path(manifest.file), app_url())
    assert result.ok
    assert result.restored.target_counts == manifest.row_counts
    conn = psycopg2.connect(plain_dsn(app_url()))
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (result.scratch_database,))
        assert cur.fetchone()[0] == 0
    conn.close()


def test_verify_reports_counts_that_differ_from_the_manifest(data, tmp_path):
    manifest, _ = backups.create_backup(app_url(), tmp_path)
    path = backups.manifest_path(Path(manifest.file))
    saved = json.loads(path.read_text())
    saved["row_counts"]["public.orders"] = 999
    path.write_text(json.dumps(saved))
    result = backups.verify(Path(manifest.file), app_url())
    assert not result.ok
    assert result.restored.mismatches == {"public.orders": (999, 4)}


def test_list_and_prune(tmp_path):
    for stamp in ("2025-01-01T00:00:00+00:00", "2025-01-02T00:00:00+00:00", "2025-01-03T00:00:00+00:00"):
        archive = tmp_path / f"lhb-x-{stamp[:10]}.dump"
        archive.write_bytes(b"x")
        manifest = backups.Manifest(file=str(archive), size=1, sha256=backups.sha256_of(archive), created_at=stamp,
                                    database="x", server_version="15", pg_dump_version=15,
                                    alembic_revision=["r"], row_counts={"public.t": 1})
        backups.manifest_path(archive).write_text(manifest.to_json())
    assert [m.created_at[:10] for m in backups.list_backups(tmp_path)] == ["2025-01-03", "2025-01-02", "2025-01-01"]
    removed = backups.prune(tmp_path, keep=1)
    assert sorted(Path(m.file).name for m in removed) == ["lhb-x-2025-01-01.dump", "lhb-x-2025-01-02.dump"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lhb-x-2025-01-03.dump", "lhb-x-2025-01-03.dump.json"]
    with pytest.raises(backups.BackupError):
        backups.prune(tmp_path, keep=0)


SYSTEM15 = [Tool("pg_dump", "/usr/lib/postgresql/15/bin/pg_dump", 15),
            Tool("pg_restore", "/usr/lib/postgresql/15/bin/pg_restore", 15),
            Tool("psql", "/usr/lib/postgresql/15/bin/psql", 15)]
EMBEDDED18 = [Tool("pg_dump", "/emb/pg_dump", 18), Tool("pg_restore", "/emb/pg_restore", 18),
              Tool("psql", "/emb/psql", 18)]


def test_binaries_matching_the_server_major_win():
    tools = backups.choose_tools(EMBEDDED18 + SYSTEM15, 15)
    assert (tools.dump.major, tools.restore.major, tools.psql.major) == (15, 15, 15)
    assert not tools.restore_through_filter


def test_an_older_pg_dump_is_never_used_on_a_newer_server():
    tools = backups.choose_tools(SYSTEM15, 17)
    assert tools.dump is None and "17 or newer" in tools.reasons[0]


def test_only_newer_binaries_restore_through_the_filter():
    tools = backups.choose_tools(EMBEDDED18, 15)
    assert tools.dump.path == "/emb/pg_dump"
    assert tools.restore.major == 18 and tools.restore_through_filter
    assert tools.psql.path == "/emb/psql"


def test_an_archive_from_a_newer_pg_dump_needs_a_newer_pg_restore():
    tools = backups.choose_tools(EMBEDDED18 + SYSTEM15, 15, archive_major=18)
    assert tools.restore.major == 18 and tools.restore_through_filter


def test_filter_drops_settings_the_server_does_not_know():
    script = ["SET statement_timeout = 0;\n", "SET transaction_timeout = 0;\n", "SELECT 1;\n"]
    assert list(backups.filter_restore_script(script, 15)) == ["SET statement_timeout = 0;\n", "SELECT 1;\n"]
    assert list(backups.filter_restore_script(script, 17)) == script


def test_discovered_tools_report_their_real_versions():
    found = backups.discover_tools()
    assert found, "no PostgreSQL client binaries found at all"
    for tool in found:
        assert tool.major == backups.tool_major(tool.path)


@pytest.mark.skipif(backups.embedded_bin_dir() is None, reason="embedded PostgreSQL binaries not installed")
def test_newer_embedded_binaries_back_up_and_restore_an_older_server(data, tmp_path, scratch_database):
    """The fallback path for real: pg_dump/pg_restore/psql 18 against this server, through the filter."""
    conn = backups.connect(app_url())
    server = backups.server_major(conn)
    conn.close()
    embedded = [t for t in backups.discover_tools(str(backups.embedded_bin_dir()))
                if Path(t.path).parent == backups.embedded_bin_dir()]
    newer = [t for t in embedded if t.major > server]
    if len(newer) < 3:
        pytest.skip("the embedded binaries are not newer than the server")
    tools = backups.choose_tools(newer, server)
    manifest, _ = backups.create_backup(app_url(), tmp_path, tools=tools)
    target = scratch_database("newer")
    result = backups.restore(Path(manifest.file), target, tools=tools)
    assert tools.restore_through_filter and result.mismatches == {}
    assert table_contents(target) == table_contents(app_url())


def test_counts_match_the_snapshot_the_dump_read(data, tmp_path):
    manifest, _ = backups.create_backup(app_url(), tmp_path)
    assert manifest.row_counts["public.audit_logs"] == db.session.query(AuditLog).count()
    assert datetime.fromisoformat(manifest.created_at) <= datetime.now(timezone.utc)


def test_a_missing_target_database_is_a_clear_error(data, tmp_path, server_url):
    manifest, _ = backups.create_backup(app_url(), tmp_path)
    missing = server_url.rsplit("/", 1)[0] + "/lhb_no_such_database_here"
    with pytest.raises(backups.BackupError, match="Cannot connect to .*lhb_no_such_database_here"):
        backups.restore(Path(manifest.file), missing)


def test_a_missing_archive_is_a_clear_error(tmp_path, app):
    with pytest.raises(backups.BackupError, match="No backup file"):
        backups.verify(tmp_path / "nope.dump", app_url())


def test_client_binaries_get_socket_and_ssl_settings_from_the_url():
    env = backups.libpq_env("postgresql+psycopg2://postgres:s3cret@/lhb?host=/tmp/sock&sslmode=require")
    assert env["PGHOST"] == "/tmp/sock" and env["PGSSLMODE"] == "require"
    assert env["PGDATABASE"] == "lhb" and env["PGUSER"] == "postgres" and env["PGPASSWORD"] == "s3cret"
