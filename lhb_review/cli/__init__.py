"""`flask` commands: seed, users, health."""
from __future__ import annotations

import re
import secrets
import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from lhb_review.cli import ops as ops_commands
from lhb_review.cli.common import CLI_ACTOR, demo_option, fail, refuse_demo_outside_development
from lhb_review.cli import pipeline
from lhb_review.cli import checks as checks_commands
from lhb_review.cli import counts as counts_commands
from lhb_review.config import redact
from lhb_review.extensions import db
from lhb_review.models import User
from lhb_review.ops import users as user_service
from lhb_review.core.errors import DomainError
from lhb_review.core.storage import StorageError, get_storage

users_cli = AppGroup("users", help="Manage reviewer and admin accounts.")
claims_cli = AppGroup("claims", help="Reviewers' claims on stages.")


def register(app: Flask) -> None:
    app.cli.add_command(seed_command)
    app.cli.add_command(users_cli)
    app.cli.add_command(health_command)
    app.cli.add_command(claims_cli)
    ops_commands.register(app)
    pipeline.register(app)
    checks_commands.register(app)
    counts_commands.register(app)


@click.command("seed")
@click.option("--orders", "count", default=36, show_default=True, type=click.IntRange(1, 100000),
              help="How many demo orders to have.")
@click.option("--bulk", "bulk", type=click.IntRange(1, 50_000_000), default=None,
              help="Instead: make sure N bulk orders (LHB-B-0000001...) exist, loaded through COPY, "
                   "for benchmarks. Locks the tables while it runs.")
@demo_option
@with_appcontext
def seed_command(count: int, bulk: int | None, demo_override: bool) -> None:
    """Load demo orders with assets, stages in every status, approvals and audit history (idempotent).

    Refused outside development and test."""
    refuse_demo_outside_development(current_app.config["APP_ENV"], demo_override)
    if bulk is not None:
        bulk_seed(bulk)
        return
    from lhb_review.ops.seed import seed_demo

    created, skipped = seed_demo(count, current_app.config["ASSET_DIR"])
    click.echo(f"Demo data: {created} orders created, {skipped} already there.")


def bulk_seed(count: int) -> None:
    from bench.bulk import load_bulk

    click.echo(f"Bulk data: making sure {count:,} bulk orders exist...")
    result = load_bulk(count, current_app.config["ASSET_DIR"], progress=click.echo)
    if not result.created:
        click.echo(f"Bulk data: all {count:,} bulk orders already there ({result.existing:,} present); nothing to do.")
        return
    rows = ", ".join(f"{n:,} {table}" for table, n in result.rows.items())
    phases = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in result.seconds.items())
    click.echo(f"Bulk data: {result.created:,} orders created after the {result.existing:,} already there: {rows}.")
    click.secho(f"Loaded in {result.total_seconds:.1f}s ({phases}).", fg="green")


@users_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(User.ROLES), default="reviewer", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_create(email: str, role: str, password_stdin: bool) -> None:
    """Create a user; the password is prompted for (or read from stdin)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = user_service.create_user(CLI_ACTOR, email, password, role)
    except DomainError as exc:
        fail(exc.message)
    click.echo(f"Created {user.role} {user.email}.")


@users_cli.command("list")
def users_list() -> None:
    """List every user with role and state."""
    rows = db.session.scalars(select(User).order_by(User.email)).all()
    if not rows:
        click.echo("No users yet. Create one with: flask users create EMAIL --role admin")
    for user in rows:
        state = "active" if user.active else "disabled"
        click.echo(f"{user.email:<40} {user.role:<9} {state:<9} created {user.created_at:%Y-%m-%d}")


@users_cli.command("disable")
@click.argument("email")
def users_disable(email: str) -> None:
    """Disable a user: they cannot sign in, and are signed out on their next request."""
    try:
        user = user_service.set_active(CLI_ACTOR, email, False)
    except DomainError as exc:
        fail(exc.message)
    click.echo(f"Disabled {user.email}.")


@users_cli.command("enable")
@click.argument("email")
def users_enable(email: str) -> None:
    """Enable a disabled user again."""
    try:
        user = user_service.set_active(CLI_ACTOR, email, True)
    except DomainError as exc:
        fail(exc.message)
    click.echo(f"Enabled {user.email}.")


@users_cli.command("demo")
@demo_option
def users_demo(demo_override: bool) -> None:
    """Create (or reset) the demo reviewer and admin with fresh passwords, and print them.

    Refused outside development and test."""
    refuse_demo_outside_development(current_app.config["APP_ENV"], demo_override)
    for email, role in (("reviewer@demo.littleherobooks.com", "reviewer"), ("admin@demo.littleherobooks.com", "admin")):
        password = secrets.token_urlsafe(9)
        if user_service.find_by_email(email) is None:
            user_service.create_user(CLI_ACTOR, email, password, role)
        else:
            user_service.set_password(CLI_ACTOR, email, password)
            user_service.set_active(CLI_ACTOR, email, True)
        click.secho(f"  {role:<9} {email}  password: {password}", fg="green")


# Each failure of the customer's troubleshooting list gets its own message and exit code; checked in order.
HEALTH_FAILURES = [
    (5, "SSL error", re.compile(r"ssl", re.I),
     "SSL error: set DB_SSL=false for a local server without SSL; in production install proper certificates."),
    (4, "database missing", re.compile(r'database ".*" does not exist', re.I),
     "Database missing: create it (see the setup guide) or fix DB_NAME."),
    (3, "authentication failed",
     re.compile(r"password authentication failed|no password supplied|role \".*\" does not exist|pg_hba\.conf", re.I),
     "Authentication failed: verify DB_USER and DB_PASSWORD, and pg_hba.conf on the server."),
    (6, "permission denied", re.compile(r"permission denied", re.I),
     "Permission denied: grant the application role privileges on the schema and its tables."),
    (2, "connection refused",
     re.compile(r"connection refused|could not connect|could not translate host name|timeout expired|"
                r"is the server running|no such file or directory", re.I),
     "Connection refused: check DB_HOST and DB_PORT, firewall rules, and that PostgreSQL is running."),
]


ADVICE = {name: (code, advice) for code, name, _, advice in HEALTH_FAILURES}
ADVICE["schema missing"] = (7, "Schema missing: the tables do not exist yet. Run `flask db upgrade`.")
ADVICE["server busy"] = (2, "The server refuses connections for now (too many, or starting or stopping): "
                            "check max_connections and the pool size, or wait for the server.")
# SQLSTATE (exact code, then its two-character class) -> failure name. The server's messages are
# translated (lc_messages), its codes are not, so a code is trusted over any wording.
SQLSTATES = {
    "28P01": "authentication failed",  # invalid_password
    "28000": "authentication failed",  # invalid_authorization_specification (pg_hba.conf, unknown role)
    "3D000": "database missing",  # invalid_catalog_name
    "42501": "permission denied",  # insufficient_privilege
    "3F000": "schema missing",  # invalid_schema_name
    "42P01": "schema missing",  # undefined_table
    "53300": "server busy",  # too_many_connections
    "57P03": "server busy",  # cannot_connect_now
    "28": "authentication failed",
    "08": "connection refused",  # connection_exception
    "57": "server busy",  # operator_intervention (shutdown, admin_shutdown, ...)
}


def classify_db_error(message: str, sqlstate: str | None = None) -> tuple[int, str, str]:
    """(exit code, failure name, advice) for a driver error: by its SQLSTATE when the server sent one,
    else by the message, which is then libpq's own (connection refused, SSL, a FATAL during start-up)."""
    if sqlstate:
        name = SQLSTATES.get(sqlstate) or SQLSTATES.get(sqlstate[:2])
        if name:
            code, advice = ADVICE[name]
            return code, name, advice
        return 1, "database error", f"The database answered with SQLSTATE {sqlstate}; see the message above."
    for code, name, pattern, advice in HEALTH_FAILURES:
        if pattern.search(message):
            return code, name, advice
    return 1, "database error", "The database answered with an error; see the message above."


@click.command("health")
@with_appcontext
def health_command() -> None:
    """Run the connection test: server version, NOW(), database, user, pool settings, schema access."""
    engine = db.engine
    click.echo(f"Database URL: {redact(str(engine.url.render_as_string(hide_password=False)))}")
    try:
        with engine.connect() as conn:
            row = conn.execute(text(
                "SELECT version(), now(), current_database(), current_user, current_schema()"
            )).one()
            click.echo(f"Server:    {row[0]}")
            click.echo(f"NOW():     {row[1].isoformat()}")
            click.echo(f"Database:  {row[2]}")
            click.echo(f"User:      {row[3]}")
            click.echo(f"Schema:    {row[4]}")
            pool = engine.pool
            click.echo(f"Pool:      size {pool.size()}, max overflow {pool._max_overflow}, "
                       f"recycle {pool._recycle}s, pre-ping on")
            if conn.execute(text("SELECT to_regclass('orders')")).scalar() is None:
                fail("Schema missing: the tables do not exist yet. Run `flask db upgrade`.", 7)
            conn.execute(text("SELECT 1 FROM orders LIMIT 1")).all()
    except DBAPIError as exc:
        message = str(exc.orig).strip() if exc.orig is not None else str(exc)
        sqlstate = getattr(exc.orig, "pgcode", None) or getattr(exc.orig, "sqlstate", None)
        code, name, advice = classify_db_error(message, sqlstate)
        where = f", SQLSTATE {sqlstate}" if sqlstate else ""
        click.secho(f"Database check failed ({name}{where}): {message}", fg="red", err=True)
        fail(advice, code)
    click.secho("Database connection OK.", fg="green")
    if current_app.config.get("STORAGE_BACKEND") == "s3":
        storage = get_storage()
        click.echo(f"Storage:   s3 bucket {storage.bucket} at {storage.endpoint_url}")
        try:
            storage.check()
        except StorageError as exc:
            click.secho(f"Storage check failed: {exc}", fg="red", err=True)
            fail("The object store is not usable: check S3_ENDPOINT_URL, S3_BUCKET and the access key.", 8)
        click.secho("Storage OK.", fg="green")


@claims_cli.command("sweep")
@click.option("--limit", default=500, show_default=True, type=click.IntRange(1, 100000))
def claims_sweep(limit: int) -> None:
    """Return stages whose claim lapsed to pending (safe to run from cron; pages also sweep as they load)."""
    from lhb_review.review import expire_lapsed

    swept = expire_lapsed(limit)
    click.echo(f"Swept {swept} lapsed claim{'s' if swept != 1 else ''}.")
