"""Check runs as jobs: enqueued in the submitting transaction, claimed by workers, results stored per fingerprint.

A run is claimed with FOR UPDATE SKIP LOCKED and leased (locked_until) in one short transaction, as the
webhook outbox is; the files are checked outside any transaction in bounded child processes; the outcome is
written only while the lease is still this worker's. A worker that dies leaves its lease to expire and
another takes the run again; after ``max_attempts`` the run is closed with a ``checks.run`` error.
"""
from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, select, tuple_, update

from lhb_review.core.storage import Storage, StorageError, get_storage
from lhb_review.core.tx import transaction
from lhb_review.extensions import db
from lhb_review.models import CheckRun, Order, ReviewStage
from lhb_review.models.core import asset_entries
from lhb_review.review.checks.isolated import Limits, run_isolated
from lhb_review.review.checks.results import ERROR, Result, failing_ids, ordered
from lhb_review.review.checks.settings import CheckSettings, Specs
from lhb_review.review.fingerprints import fingerprint

log = logging.getLogger(__name__)
PENDING, RUNNING, DONE = "pending", "running", "done"


@dataclass(frozen=True)
class WorkerSettings:
    checks: CheckSettings
    limits: Limits
    lease: float = 900.0
    max_attempts: int = 3
    poll: float = 2.0
    max_bytes: int = 20 * 1024 * 1024

    @classmethod
    def from_config(cls, config: Any) -> WorkerSettings:
        return cls(
            checks=CheckSettings.from_config(config),
            limits=Limits(seconds=float(config.get("CHECK_TIME_LIMIT_SECONDS", 60)),
                          memory_mb=int(config.get("CHECK_MEMORY_LIMIT_MB", 768))),
            lease=float(config.get("CHECK_LEASE_SECONDS", 900)),
            max_attempts=int(config.get("CHECK_MAX_ATTEMPTS", 3)),
            poll=float(config.get("CHECK_POLL_SECONDS", 2)),
            max_bytes=int(config.get("MAX_ASSET_BYTES", 20 * 1024 * 1024)),
        )


def worker_name() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def enqueue_checks(order_id: str, stage: str, *, reason: str = "submitted", force: bool = False) -> CheckRun | None:
    """Queue the checks of the stage's assets as they are now, inside the caller's transaction.

    The current run becomes stale when its fingerprint differs (or with ``force``, as ``flask checks rerun``
    asks); when it already covers these assets nothing is queued, so calling this on every path that may
    change assets is safe. Returns the new run, or None. The stage row must exist, and the caller should
    hold the order's row lock (submissions and replacements do), since a stage has one current run.
    """
    db.session.flush()
    assets = db.session.scalar(select(Order.r2_assets[stage]).where(Order.order_id == order_id))
    value = fingerprint(asset_entries(assets))
    live = and_(CheckRun.order_id == order_id, CheckRun.stage == stage, CheckRun.stale_at.is_(None))
    if not force and db.session.scalar(select(CheckRun.id).where(live, CheckRun.fingerprint == value).limit(1)):
        return None
    stale = live if force else and_(live, CheckRun.fingerprint != value)
    db.session.execute(update(CheckRun).where(stale).values(stale_at=func.now()))
    run = CheckRun(order_id=order_id, stage=stage, fingerprint=value, reason=reason)
    db.session.add(run)
    db.session.flush()
    return run


def rerun(order_id: str, stage: str | None = None) -> list[CheckRun]:
    """Queue fresh runs of the order's stages (or one), making their current results stale. One transaction."""
    with transaction():
        # The order row lock serialises this with submissions, which also replace the current run.
        db.session.execute(select(Order.id).where(Order.order_id == order_id).with_for_update())
        query = select(ReviewStage.stage_name).where(ReviewStage.order_id == order_id)
        if stage:
            query = query.where(ReviewStage.stage_name == stage)
        stages = list(db.session.scalars(query.order_by(ReviewStage.created_at)))
        return [run for name in stages if (run := enqueue_checks(order_id, name, reason="rerun", force=True))]


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    order_id: str
    stage: str
    fingerprint: str
    attempts: int


def claim(worker: str, settings: WorkerSettings, limit: int = 1) -> list[Claimed]:
    """Lease up to ``limit`` due runs: pending ones, and running ones whose lease has expired (their worker died)."""
    with transaction():
        due = (
            select(CheckRun.id)
            .where(
                CheckRun.stale_at.is_(None),
                CheckRun.state != DONE,
                CheckRun.locked_until.is_(None) | (CheckRun.locked_until < func.statement_timestamp()),
            )
            .order_by(CheckRun.enqueued_at, CheckRun.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = db.session.execute(
            update(CheckRun)
            .where(CheckRun.id.in_(due.scalar_subquery()))
            .values(
                state=RUNNING,
                attempts=CheckRun.attempts + 1,
                locked_by=worker,
                started_at=func.statement_timestamp(),
                locked_until=func.statement_timestamp() + func.make_interval(0, 0, 0, 0, 0, 0, settings.lease),
            )
            .returning(CheckRun.id, CheckRun.order_id, CheckRun.stage, CheckRun.fingerprint, CheckRun.attempts)
        ).all()
    return [Claimed(*r) for r in rows]


def finish(run: Claimed, worker: str, results: list[Result], error: str | None = None) -> bool:
    """Store the results if the lease is still this worker's; False when another worker has taken over."""
    results = ordered(results)
    with transaction():
        done = db.session.execute(
            update(CheckRun)
            .where(CheckRun.id == run.id, CheckRun.locked_by == worker, CheckRun.state == RUNNING)
            .values(state=DONE, results=[r.as_dict() for r in results], failing=failing_ids(results),
                    finished_at=func.statement_timestamp(), locked_until=None, error=error)
        ).rowcount
    return bool(done)


def _fetch(storage: Storage, key: str, max_bytes: int) -> tuple[bytes | None, Result | None]:
    try:
        if not storage.exists(key):
            return None, None
        data = storage.get(key)
    except StorageError as exc:
        return None, Result("file.exists", ERROR, f"The store could not be read: {exc}", key)
    except Exception as exc:  # noqa: BLE001 - an unusable key is the file's problem, not the worker's
        return None, Result("file.exists", ERROR, f"The file could not be fetched ({type(exc).__name__}).", key)
    return data, None


def check_run(run: Claimed, settings: WorkerSettings, storage: Storage) -> list[Result]:
    """Every check of a claimed run: set checks and file presence here, content checks in child processes."""
    order = db.session.execute(
        select(Order.character_specs, Order.book_specs, Order.r2_assets[run.stage].label("assets"))
        .where(Order.order_id == run.order_id)
    ).one()
    db.session.rollback()  # no transaction stays open while files are read and checked
    assets = asset_entries(order.assets)
    specs = Specs.from_order(order.character_specs, order.book_specs)
    if fingerprint(assets) != run.fingerprint:
        return [Result("checks.run", ERROR, "The stage's files changed while the checks were queued; "
                                            "a newer run checks them.")]
    # The engine (and the PDF and image libraries under it) loads in the checks worker only, not in web workers.
    from lhb_review.review.checks.engine import check_stage_set, file_present

    results = check_stage_set(run.stage, assets, specs, settings.checks)
    present: list[tuple[dict, bytes]] = []
    for asset in assets:
        data, problem = _fetch(storage, asset["key"], settings.max_bytes)
        if problem:
            results.append(problem)
            continue
        results.extend(file_present(asset, data))
        if data is not None:
            present.append((asset, data))
    results.extend(run_isolated(run.stage, present, specs, settings.checks, settings.limits))
    return results


def work_one(run: Claimed, worker: str, settings: WorkerSettings, storage: Storage | None = None) -> bool:
    """Check one claimed run and store its results; any failure of the checking itself is stored as an error."""
    if run.attempts > settings.max_attempts:
        return finish(run, worker, [Result("checks.run", ERROR, f"Gave up after {run.attempts - 1} attempts: the "
                                                                "worker stopped each time.")], "too many attempts")
    try:
        results = check_run(run, settings, storage or get_storage())
    except Exception as exc:
        db.session.rollback()
        log.exception("Checking %s %s failed", run.order_id, run.stage)
        return finish(run, worker, [Result("checks.run", ERROR, f"The checks could not run ({type(exc).__name__}); "
                                                                "run them again with flask checks rerun.")],
                      f"{type(exc).__name__}: {exc}"[:2000])
    return finish(run, worker, results)


def run_worker(settings: WorkerSettings, *, once: bool = False, worker: str | None = None,
               should_stop=lambda: False) -> int:
    """Work due runs until told to stop (or, with ``once``, until none is due). Returns how many were done."""
    worker = worker or worker_name()
    done = 0
    while not should_stop():
        claimed = claim(worker, settings)
        for run in claimed:
            done += work_one(run, worker, settings)
        if not claimed:
            if once:
                break
            time.sleep(settings.poll)
    return done


def current_runs(pairs: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """The current (not stale) run of each (order_id, stage), in one statement: state, results, failing ids."""
    if not pairs:
        return {}
    rows = db.session.execute(
        select(CheckRun.order_id, CheckRun.stage, CheckRun.state, CheckRun.results, CheckRun.failing)
        .where(tuple_(CheckRun.order_id, CheckRun.stage).in_(pairs), CheckRun.stale_at.is_(None))
    ).all()
    return {(r.order_id, r.stage): r for r in rows}


def summary(run: Any) -> dict[str, Any]:
    """What the API, the webhooks and the page show: {"state": pending|done, "results": [...]}."""
    if run is None or run.state != DONE:
        return {"state": PENDING, "results": []}
    return {"state": DONE, "results": [
        {k: r.get(k) for k in ("check", "outcome", "message", "asset", "page")} for r in run.results or []]}


def stage_checks(order_id: str, stage: str) -> dict[str, Any]:
    return summary(current_runs([(order_id, stage)]).get((order_id, stage)))


def failing_checks(order_id: str, stage: str) -> list[str]:
    """The ids of the stage's current checks that failed or could not run ([] while they are pending)."""
    run = current_runs([(order_id, stage)]).get((order_id, stage))
    return list(run.failing) if run is not None and run.state == DONE else []


def check_state_of(order_id_column, stage_column):
    """A correlated scalar: 'pending', 'failing' or 'pass' for the stage's current run, NULL without one.
    The queue selects it per row in its one statement (the current-run index answers it)."""
    return (
        select(case((CheckRun.state != DONE, PENDING),
                    (func.jsonb_array_length(CheckRun.failing) > 0, "failing"), else_="pass"))
        .where(CheckRun.order_id == order_id_column, CheckRun.stage == stage_column, CheckRun.stale_at.is_(None))
        .scalar_subquery()  # one row at most: ux_check_runs_current
    )
