"""`flask tokens`, `flask webhooks` and `flask import-approvals`: the pipeline's side of the command line."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from lhb_review.cli.common import CLI_ACTOR, fail
from lhb_review.cli.counts import compact_in_worker
from lhb_review.extensions import db
from lhb_review.pipeline import importer, tokens, webhooks
from lhb_review.review import counts
from lhb_review.core.errors import DomainError

tokens_cli = AppGroup("tokens", help="API tokens of the pipeline.")
webhooks_cli = AppGroup("webhooks", help="Deliver decision webhooks from the outbox.")


def register(app: Flask) -> None:
    app.cli.add_command(tokens_cli)
    app.cli.add_command(webhooks_cli)
    app.cli.add_command(import_approvals)


@tokens_cli.command("create")
@click.argument("name")
def tokens_create(name: str) -> None:
    """Create a token and print it once; only its hash is stored."""
    try:
        row, token = tokens.create(CLI_ACTOR, name)
    except DomainError as exc:
        fail(exc.message)
    click.echo(f"Created token {row.name!r}. Store it now: it is not shown again.", err=True)
    click.echo(token)


@tokens_cli.command("list")
def tokens_list() -> None:
    """Every token with its state and when it was last used (never the token itself)."""
    rows = tokens.list_tokens()
    if not rows:
        click.echo("No tokens yet. Create one with: flask tokens create NAME")
    for row in rows:
        state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
        used = f"last used {row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never used"
        click.echo(f"{row.name:<32} {row.prefix}…  {state:<24} created {row.created_at:%Y-%m-%d}  {used}")


@tokens_cli.command("revoke")
@click.argument("name")
def tokens_revoke(name: str) -> None:
    """Revoke a token: requests with it are refused from now on."""
    try:
        row = tokens.revoke(CLI_ACTOR, name)
    except DomainError as exc:
        fail(exc.message)
    click.echo(f"Revoked token {row.name!r}.")


@webhooks_cli.command("deliver")
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
def webhooks_deliver(once: bool) -> None:
    """Send due deliveries with retries; runs until stopped (SIGTERM or Ctrl-C finish the current batch)."""
    settings = webhooks.WebhookSettings.from_config(current_app.config)
    if not settings.secret:
        click.secho(
            "WEBHOOK_SECRET is not set: only URLs with their own secret can be signed.", fg="yellow", err=True
        )
    worker = webhooks.worker_name()
    if once:
        sent = webhooks.drain(settings, worker)
        click.echo(f"{sent} delivery attempts made.")
        return
    stopping = []

    def stop(signum, frame):
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(f"Worker {worker} delivering webhooks; stop with Ctrl-C.")
    poll = float(current_app.config.get("WEBHOOK_POLL_SECONDS", 2))
    compactor = counts.Compactor()  # the queue's counts are compacted by whichever worker gets there first
    while not stopping:
        compact_in_worker(compactor)
        try:
            sent = webhooks.drain(settings, worker)
        except Exception as exc:  # a database restart must not end the worker; it retries after the pause
            db.session.rollback()
            click.secho(f"Delivery round failed, retrying: {exc}", fg="red", err=True)
            sent = 0
        if not sent:
            waited = 0.0
            while waited < poll and not stopping:
                time.sleep(0.2)
                waited += 0.2
    click.echo("Worker stopped.")


@click.command("import-approvals")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--apply", "apply_changes", is_flag=True, help="Write the changes (the default is a dry run).")
def import_approvals(path: Path, apply_changes: bool) -> None:
    """Import the file-based approval store: a JSON file, or a directory of them."""
    report = importer.run(path, apply_changes=apply_changes)
    for line in report.lines:
        click.echo(line)
    for problem in report.errors:
        click.secho(f"error: {problem}", fg="red", err=True)
    click.echo(
        ("" if apply_changes else "Dry run (nothing written; add --apply to write): ") + report.summary()
    )
    if report.errors:
        sys.exit(1)
