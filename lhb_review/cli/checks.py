"""`flask checks run` and `flask checks rerun`: the machine-check worker and re-running a stage's checks."""
from __future__ import annotations

import signal
import time

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from lhb_review.cli.common import fail
from lhb_review.core.stages import UnknownStage, parse_stage
from lhb_review.extensions import db
from lhb_review.cli.counts import compact_in_worker
from lhb_review.review import counts
from lhb_review.review.checks import jobs

checks_cli = AppGroup("checks", help="Machine checks of each stage's files.")


def register(app: Flask) -> None:
    app.cli.add_command(checks_cli)


@checks_cli.command("run")
@click.option("--once", is_flag=True, help="Work the runs that are due now, then exit.")
def checks_run(once: bool) -> None:
    """Work queued check runs; several workers may run at once. SIGTERM or Ctrl-C finish the current run."""
    settings = jobs.WorkerSettings.from_config(current_app.config)
    worker = jobs.worker_name()
    if once:
        done = jobs.run_worker(settings, once=True, worker=worker)
        click.echo(f"{done} check runs done.")
        return
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.append(signum))
    click.echo(f"Worker {worker} checking files; stop with Ctrl-C.")
    compactor = counts.Compactor()  # the queue's counts are compacted by whichever worker gets there first
    while not stopping:
        compact_in_worker(compactor)
        try:
            done = jobs.run_worker(settings, once=True, worker=worker, should_stop=lambda: bool(stopping))
        except Exception as exc:  # a database restart must not end the worker; it retries after the pause
            db.session.rollback()
            click.secho(f"Check round failed, retrying: {exc}", fg="red", err=True)
            done = 0
        if not done:
            waited = 0.0
            while waited < settings.poll and not stopping:
                time.sleep(0.2)
                waited += 0.2
    click.echo("Worker stopped.")


@checks_cli.command("rerun")
@click.argument("order_id")
@click.argument("stage", required=False)
def checks_rerun(order_id: str, stage: str | None) -> None:
    """Queue the checks of ORDER's stages (or only STAGE) again; their current results become stale."""
    try:
        name = parse_stage(stage).value if stage else None
    except UnknownStage as exc:
        fail(str(exc))
    runs = jobs.rerun(order_id, name)
    if not runs:
        fail(f"Order {order_id} has no {name or 'submitted'} stage to check.")
    click.echo(f"Queued {len(runs)} check runs for {order_id}: {', '.join(r.stage for r in runs)}.")
