"""The batch review page: a grid of waiting stages of one kind, judged together, each card its own decision;
opening, showing, submitting, undoing and leaving a batch (review.batches does the work)."""
from __future__ import annotations

from datetime import datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.datastructures import MultiDict

from lhb_review.core.clock import db_now
from lhb_review.core.errors import DomainError, Invalid
from lhb_review.core.stages import DECIDED, STAGE_LABELS, Stage
from lhb_review.extensions import db
from lhb_review.review.checks.jobs import current_runs
from lhb_review.models import Order
from lhb_review.review import batches, claims, fingerprints, queries
from lhb_review.review.batches import Card, Choice
from lhb_review.review.queries import BadQuery
from lhb_review.review.reasons import REASONS
from lhb_review.views import queue
from lhb_review.web.auth import current_actor

bp = Blueprint("batch", __name__)

BATCH_KEY, RESULT_KEY, STARTED_KEY, EXCLUDE_KEY = "batch", "batch_result", "batch_started", "batch_exclude"
FILTER_KEYS = ("platform", "project", "q", "sort")
SIZES = (6, 12, 18, 24)
CARD_SPECS = ("name", "age", "hair", "skin_tone", "eyes", "glasses", "outfit")  # what the character is judged by
MAX_ORDER_ID = 255


def wanted_filter() -> queries.QueueFilter:
    """The queue's filter: what the reviewer's queue remembers, with this request's parameters on top."""
    args = MultiDict({k: v for k, v in queue.remembered_filter().items() if k in FILTER_KEYS})
    for key in FILTER_KEYS:
        if key in request.args:
            args[key] = request.args[key]
    return queries.parse_queue_filter(args)


def bad_request(message: str, status: int = 400):
    return render_template("errors/error.html", status="This batch cannot be used", message=message), status


@bp.get("/queue/batch")
@login_required
def open_batch():
    """Open a new batch: claim the cards, remember them for this session, and show them."""
    try:
        stage = batches.parse_batch_stage(request.args.get("stage") or "preBria")
        size = batches.parse_size(request.args.get("size") or (session.get(BATCH_KEY) or {}).get("size"))
        wanted = wanted_filter()
    except (Invalid, BadQuery) as exc:
        return bad_request(exc.message, 400)
    exclude = [Card(o, stage) for o in session.pop(EXCLUDE_KEY, [])]
    opened = batches.open_batch(current_actor(), stage, size=size, filters=queue.filter_clauses(wanted),
                                sort=wanted.sort, exclude=exclude)
    session.setdefault(STARTED_KEY, db_now().isoformat())
    session[BATCH_KEY] = {"id": opened.batch_id, "stage": stage, "size": size,
                          "cards": [c.order_id for c in opened.cards], "filter": wanted.params(cursor=None)}
    if opened.skipped:
        flash(f"{len(opened.skipped)} stage{'s' if len(opened.skipped) != 1 else ''} claimed by someone else "
              "meanwhile were skipped and replaced.", "success")
    return redirect(url_for("batch.show", batch_id=opened.batch_id), 303)


def current_batch(batch_id: str) -> dict | None:
    found = session.get(BATCH_KEY)
    return found if isinstance(found, dict) and found.get("id") == batch_id else None


def open_url(kept: dict | None) -> str:
    kept = kept or {}
    return url_for("batch.open_batch", stage=kept.get("stage", "preBria"), size=kept.get("size"),
                   **(kept.get("filter") or {}))


def card_views(order_ids: list[str], stage: str) -> list[dict]:
    """Each card as the grid shows it: the order, the stage row, its key assets and specs, who holds it."""
    orders = {o.order_id: o for o in db.session.scalars(
        select(Order).options(selectinload(Order.stages)).where(Order.order_id.in_(order_ids)))}
    live = claims.live_claims([(o, stage) for o in order_ids])
    runs = current_runs([(o, stage) for o in order_ids])  # the machine checks, one statement for the grid
    views = []
    for i, order_id in enumerate(order_ids):
        order = orders.get(order_id)
        if order is None:
            continue
        row = next((s for s in order.stages if s.stage_name == stage), None)
        assets = order.assets_for(stage)
        claim = live.get((order_id, stage))
        run = runs.get((order_id, stage))
        specs = order.character_specs if isinstance(order.character_specs, dict) else {}
        views.append({
            "index": i, "order": order, "row": row, "status": row.status if row else "missing",
            "decided": row is not None and row.status in DECIDED,
            "images": [a for a in assets if str(a.get("content_type", "")).startswith("image/")][:4],
            "fingerprint": fingerprints.fingerprint(assets),
            "specs": [(key.replace("_", " "), specs[key]) for key in CARD_SPECS if key in specs],
            "held_by": claim.claimed_by if claim else None,
            "mine": claim is not None and claim.held_by(current_user.email),
            "failing_checks": list(run.failing or []) if run is not None and run.state == "done" else [],
            "checks_pending": run is not None and run.state != "done",
        })
    return views


@bp.get("/queue/batch/<batch_id>")
@login_required
def show(batch_id: str):
    """The batch this session opened; coming back (from a card's stage page) claims its waiting cards again."""
    kept = current_batch(batch_id)
    if kept is None:
        flash("That batch is over: here is a new one.", "success")
        return redirect(open_url(session.get(BATCH_KEY)), 303)
    stage = kept["stage"]
    cards = [Card(o, stage) for o in kept["cards"]]
    batches.keep(current_actor(), batch_id, cards)
    started = session.get(STARTED_KEY)
    pace = batches.throughput(current_user.email, datetime.fromisoformat(started)) if started else None
    return render_template("batch/index.html", batch_id=batch_id, stage=stage, stage_label=STAGE_LABELS[Stage(stage)],
                           cards=card_views(kept["cards"], stage), reasons=REASONS, result=session.get(RESULT_KEY),
                           pace=pace, size=kept.get("size", batches.DEFAULT_SIZE), sizes=SIZES,
                           filter=kept.get("filter") or {})


def parse_choices(form, stage: str) -> list[Choice]:
    """The cards of a submitted batch form and what was chosen for each; Invalid (nothing decided) when the
    form is not one this page could have sent."""
    choices = []
    for i in range(batches.MAX_SIZE):
        order_id = form.get(f"card-{i}")
        if order_id is None:
            continue
        if not order_id or "\x00" in order_id or len(order_id) > MAX_ORDER_ID:
            raise Invalid("The batch names a card that cannot exist: reload the batch and try again.")
        choice = form.get(f"choice-{i}", batches.APPROVE)
        if choice not in batches.CHOICES:
            raise Invalid(f"Each card is approved, flagged or rejected, not {choice[:40]!r}.")
        choices.append(Choice(Card(order_id, stage), choice, notes=form.get(f"notes-{i}") or None,
                              reasons=tuple(form.getlist(f"reasons-{i}")),
                              fingerprint=form.get(f"fingerprint-{i}") or None))
    if not choices:
        raise Invalid("This batch has no cards to decide.")
    return choices


def summary(result: batches.Result, stage: str) -> dict:
    """What the next page says about a submitted batch (kept in the session, so plain types only)."""
    return {"id": result.batch_id, "stage": stage,
            "outcomes": [{"order_id": o.card.order_id, "result": o.result, "message": o.message}
                         for o in result.outcomes]}


@bp.post("/queue/batch/<batch_id>")
@login_required
def submit(batch_id: str):
    """Decide every card of the batch, each on its own; then the next batch, with what happened on top."""
    try:
        batch_id = batches.parse_batch_id(batch_id)
        stage = batches.parse_batch_stage(request.form.get("stage"))
        choices = parse_choices(request.form, stage)
    except Invalid as exc:
        return bad_request(f"Nothing was decided: {exc.message}", 422)
    result = batches.decide(current_actor(), batch_id, choices)
    session[RESULT_KEY] = summary(result, stage)
    session[EXCLUDE_KEY] = [o.card.order_id for o in result.having("flagged")]
    kept = current_batch(batch_id) or {"stage": stage, "filter": (session.get(BATCH_KEY) or {}).get("filter")}
    if current_batch(batch_id):  # what was not decided goes back to the queue as the next batch opens
        batches.release(current_actor(), batch_id, [c.card for c in choices])
    return redirect(open_url(kept), 303)


def back_to_batch():
    kept = session.get(BATCH_KEY)
    if isinstance(kept, dict) and kept.get("id"):
        return redirect(url_for("batch.show", batch_id=kept["id"]), 303)
    return redirect(url_for("queue.index"), 303)


@bp.post("/queue/batch/<batch_id>/undo")
@login_required
def undo(batch_id: str):
    """Undo what a batch decided, or only the card named by ``order_id``, within the undo window."""
    try:
        batch_id = batches.parse_batch_id(batch_id)
    except Invalid as exc:
        abort(404, description=exc.message)
    result = session.get(RESULT_KEY) or {}
    stage = result.get("stage") if result.get("id") == batch_id else request.form.get("stage")
    if stage not in batches.BATCH_STAGES:
        abort(404, description="There is no such batch to undo.")
    order_id = request.form.get("order_id")
    undone = batches.undo(current_actor(), batch_id, only=Card(order_id, stage) if order_id else None)
    done, refused = undone.having("undone"), undone.refused
    if done:
        flash(f"Undone: {len(done)} decision{'s' if len(done) != 1 else ''} of the batch, back where they were.",
              "success")
    for outcome in refused:
        flash(f"{outcome.card.order_id}: not undone. {outcome.message}", "error")
    if not done and not refused:
        flash("Nothing of this batch is left to undo.", "error")
    return back_to_batch()


@bp.post("/queue/batch/<batch_id>/release")
@login_required
def release(batch_id: str):
    """Leave the batch: every card not decided is given back (the page's beacon as it closes, or the button)."""
    kept = current_batch(batch_id)
    if kept is not None:
        batches.release(current_actor(), batch_id, [Card(o, kept["stage"]) for o in kept["cards"]])
    if request.form.get("beacon"):
        return "", 204
    flash("The cards you had not decided are back in the queue.", "success")
    return redirect(url_for("queue.index", **((kept or {}).get("filter") or {})), 303)


@bp.errorhandler(DomainError)
def domain_error(exc: DomainError):
    return bad_request(exc.message, exc.status)
