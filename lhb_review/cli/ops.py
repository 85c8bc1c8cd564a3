"""Operator commands: `flask backup ...`, `flask stats`, `flask db-bootstrap`."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from lhb_review.config import redact
from lhb_review.cli.common import fail
from lhb_review.extensions import db
from lhb_review.ops import backups, bootstrap, opsstats

backup_cli = AppGroup("backup", help="Back up, list, prune, restore and verify database backups.")


def register(app: Flask) -> None:
    app.cli.add_command(backup_cli)
    app.cli.add_command(stats_command)
    app.cli.add_command(bootstrap_command)


def database_url() -> str:
    return db.engine.url.render_as_string(hide_password=False)


def human_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def print_table(title: str, rows: list[dict], empty: str = "(none)") -> None:
    """Rows of dicts as an aligned text table under a title."""
    click.secho(title, bold=True)
    if not rows:
        click.echo(f"  {empty}\n")
        return
    columns = list(rows[0].keys())
    cells = [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    click.echo("  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    click.echo("  " + "  ".join("-" * w for w in widths))
    for row in cells:
        click.echo("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths)))
    click.echo()


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return " ".join(str(value).split())


def backup_dir(override: str | None) -> Path:
    return Path(override) if override else Path(current_app.config["BACKUP_DIR"])


def explain_tools(tools: backups.Toolset) -> None:
    click.echo(f"Server major {tools.server_major}; binaries chosen:")
    for reason in tools.reasons:
        click.echo(f"  - {reason}")
    if tools.restore_through_filter:
        click.echo("  - pg_restore is newer than the server: its script is filtered and run through psql")


@backup_cli.command("create")
@click.option("--dir", "directory", help="Write here instead of BACKUP_DIR.")
@with_appcontext
def backup_create(directory: str | None) -> None:
    """Dump the database (pg_dump custom format) with a manifest: size, sha256, row counts, revision."""
    try:
        manifest, tools = backups.create_backup(database_url(), backup_dir(directory),
                                                current_app.config.get("PG_BIN_DIR"))
    except backups.BackupError as exc:
        fail(str(exc))
    explain_tools(tools)
    click.secho(f"Backup written: {manifest.file}", fg="green")
    click.echo(f"  size {human_size(manifest.size)}, sha256 {manifest.sha256}")
    click.echo(f"  revision {', '.join(manifest.alembic_revision) or '(none)'}, server {manifest.server_version}")
    click.echo(f"  rows: {sum(manifest.row_counts.values())} in {len(manifest.row_counts)} tables")


@backup_cli.command("list")
@click.option("--dir", "directory", help="Read this directory instead of BACKUP_DIR.")
@with_appcontext
def backup_list(directory: str | None) -> None:
    """List backups, newest first."""
    found = backups.list_backups(backup_dir(directory))
    rows = [{
        "created_at": m.created_at, "file": Path(m.file).name, "size": human_size(m.size),
        "rows": sum(m.row_counts.values()), "revision": ",".join(m.alembic_revision) or "-",
        "present": "yes" if Path(m.file).exists() else "MISSING",
    } for m in found]
    print_table(f"Backups in {backup_dir(directory)}", rows, "no backups yet: flask backup create")


@backup_cli.command("prune")
@click.option("--keep", type=click.IntRange(min=1), required=True, help="How many of the newest backups to keep.")
@click.option("--dir", "directory", help="Prune this directory instead of BACKUP_DIR.")
@with_appcontext
def backup_prune(keep: int, directory: str | None) -> None:
    """Delete all but the newest N backups (archive and manifest)."""
    removed = backups.prune(backup_dir(directory), keep)
    for manifest in removed:
        click.echo(f"Removed {Path(manifest.file).name}")
    click.echo(f"Kept the newest {keep}; removed {len(removed)}.")


@backup_cli.command("restore")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--target-url", required=True, help="The database to restore into (it must exist).")
@click.option("--force", is_flag=True, help="Restore even if the target already holds tables (they are replaced).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def backup_restore(file: str, target_url: str, force: bool, yes: bool) -> None:
    """Restore a backup into the database at --target-url."""
    from lhb_review.config import ConfigError, normalise_url

    try:
        target = normalise_url(target_url)
    except (ConfigError, Exception) as exc:  # noqa: BLE001 - any unparsable URL
        fail(f"--target-url is not a PostgreSQL URL: {exc}")
    if not yes:
        click.confirm(f"Restore {Path(file).name} into {redact(target)}"
                      f"{' replacing what is there' if force else ''}?", abort=True)
    try:
        result = backups.restore(Path(file), target, force=force, pg_bin_dir=current_app.config.get("PG_BIN_DIR"))
    except backups.TargetNotEmpty as exc:
        fail(str(exc), 3)
    except backups.BackupError as exc:
        fail(str(exc))
    explain_tools(result.tools)
    if result.mismatches:
        for table, (expected, found) in result.mismatches.items():
            click.secho(f"  {table}: manifest {expected}, restored {found}", fg="red")
        fail("Restored, but the row counts differ from the manifest.", 4)
    click.secho(f"Restored {sum(result.target_counts.values())} rows in {len(result.target_counts)} tables "
                f"into {redact(target)}.", fg="green")
    click.echo("Grants were not restored: run `flask db-bootstrap` for the application role if needed.")


@backup_cli.command("verify")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--server-url", help="Server for the scratch database (default: the app's database server).")
@with_appcontext
def backup_verify(file: str, server_url: str | None) -> None:
    """Check the checksum, restore into a scratch database, compare row counts, drop the scratch database."""
    try:
        result = backups.verify(Path(file), server_url or database_url(),
                                pg_bin_dir=current_app.config.get("PG_BIN_DIR"))
    except backups.BackupError as exc:
        fail(str(exc))
    explain_tools(result.restored.tools)
    click.echo(f"Checksum OK (sha256 {result.manifest.sha256}).")
    rows = [{"table": t, "manifest": n, "restored": result.restored.target_counts.get(t)}
            for t, n in sorted(result.manifest.row_counts.items())]
    print_table(f"Row counts (scratch database {result.scratch_database}, dropped)", rows)
    if not result.ok:
        fail("Verification FAILED: row counts differ from the manifest.", 4)
    click.secho("Verification OK.", fg="green")


@click.command("stats")
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True)
@with_appcontext
def stats_command(limit: int) -> None:
    """The setup guide's useful queries: connections, table sizes, recent errors, recent approvals."""
    with db.engine.connect() as conn:
        print_table("Active connections", opsstats.active_connections(conn))
        print_table("Table sizes", opsstats.table_sizes(conn))
        print_table("Recent errors", opsstats.recent_errors(conn, limit), "no errors recorded")
        print_table("Recent approvals", opsstats.recent_approvals(conn, limit), "no approvals yet")


@click.command("db-bootstrap")
@click.option("--superuser-url", envvar="BOOTSTRAP_SUPERUSER_URL", required=True,
              help="A superuser connection, e.g. postgresql://postgres@db:5432/postgres (env BOOTSTRAP_SUPERUSER_URL).")
@click.option("--database", envvar="DB_NAME", default="little_hero_books", show_default=True)
@click.option("--schema", envvar="DB_SCHEMA", default="public", show_default=True)
@click.option("--owner-role", envvar="DB_OWNER_ROLE", default="lhb_owner", show_default=True,
              help="Owns the database and schema; runs migrations.")
@click.option("--app-role", envvar="DB_APP_ROLE", default="lhb_app", show_default=True,
              help="The application's role: reads and writes rows, no DDL.")
@click.option("--owner-password", envvar="DB_OWNER_PASSWORD", default=None,
              help="Password for the owner role (env DB_OWNER_PASSWORD); generated for a new role if absent.")
@click.option("--app-password", envvar="DB_APP_PASSWORD", default=None,
              help="Password for the app role (env DB_APP_PASSWORD); generated for a new role if absent.")
def bootstrap_command(superuser_url, database, schema, owner_role, app_role, owner_password, app_password) -> None:
    """Create the database, an owner role (migrations) and a least-privilege app role; safe to run again."""
    from lhb_review.config import ConfigError, normalise_url

    try:
        url = normalise_url(superuser_url)
        report = bootstrap.bootstrap(url, database=database, owner_role=owner_role, app_role=app_role,
                                     schema=schema, owner_password=owner_password or None,
                                     app_password=app_password or None)
    except (bootstrap.BootstrapError, ConfigError) as exc:
        fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - a driver error: show it plainly
        fail(f"Bootstrap failed: {str(exc).strip()}")
    for step in report.steps:
        click.echo(f"  - {step}")
    if report.generated_passwords:
        click.secho("Generated passwords (shown once; store them now):", fg="yellow")
        for role, password in report.generated_passwords.items():
            click.echo(f"  {role}: {password}")
    click.echo("Migrations run as the owner:    DATABASE_URL=" + report.url_for(url, owner_role) + " flask db upgrade")
    click.echo("The app connects as the app role: DATABASE_URL=" + report.url_for(url, app_role))
    click.echo("Run this command again after the first migration so the app role may not write alembic_version.")
