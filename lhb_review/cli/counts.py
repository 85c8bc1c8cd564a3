"""`flask counts compact` and `flask counts rebuild`: the queue's counts at a glance, kept by the database."""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from lhb_review.extensions import db
from lhb_review.review import counts

counts_cli = AppGroup("counts", help="The queue's counts at a glance (kept by database triggers).")


def register(app: Flask) -> None:
    app.cli.add_command(counts_cli)


def compact_in_worker(compactor: counts.Compactor) -> None:
    """For the long-running workers (checks, webhooks): compact the counts when due. A failure is reported
    and tried again next time; it never stops the worker's own work."""
    try:
        compactor.maybe()
    except Exception as exc:
        db.session.rollback()
        click.secho(f"Compacting the queue's counts failed, trying again later: {exc}", fg="red", err=True)


@counts_cli.command("compact")
def counts_compact() -> None:
    """Sum the count deltas into one row per combination (safe any time; schedule it every minute)."""
    done = counts.compact()
    if done is None:
        click.echo("Another compaction is running; nothing done.")
        return
    click.echo(f"Compacted {done.removed:,} count rows into {done.kept:,}.")


@counts_cli.command("rebuild")
def counts_rebuild() -> None:
    """Recount from review_stages and orders, after a load that bypassed the triggers. Stage changes wait
    while it runs (seconds at a million orders)."""
    kept = counts.rebuild()
    click.echo(f"Counts rebuilt: {kept:,} rows.")
