"""Reviewer flow beyond approve and reject: claims and presence, undo, the next waiting stage, asset
replacement, PDF pages for comparing, the order timeline and the reject-reasons report."""
from __future__ import annotations

import hashlib
import re
from datetime import datetime
from flask import (Blueprint, abort, current_app, flash, redirect, render_template, request, session,
                   url_for)
from flask_login import current_user, login_required
from werkzeug.datastructures import MultiDict

from ..auth import current_actor
from ..extensions import db
from ..htmx import wants_fragment
from ..models import Order, ReviewStage
from ..reasons import REASONS
from ..services import claims, fingerprints, history, next_stage, pdf_pages, queries, reports, timeline, undo, uploads
from ..services.errors import DomainError, Invalid
from ..services.queries import BadQuery
from ..stages import DECIDED, STAGE_NAMES, Stage, UnknownStage, parse_stage
from ..storage import InvalidKey, get_storage

bp = Blueprint("flow", __name__)

CLAIM_ACTIONS = {"claim": claims.claim, "renew": claims.renew, "release": claims.release, "takeover": claims.takeover}
QUEUE_FILTER_KEY = "queue_filter"


def load_stage(order_id: str, stage: str) -> tuple[Order, ReviewStage, Stage]:
    try:
        parsed = parse_stage(stage)
    except UnknownStage:
        abort(404)
    row = db.session.scalar(
        db.select(ReviewStage).where(ReviewStage.order_id == order_id, ReviewStage.stage_name == parsed.value))
    if row is None:
        abort(404)
    return row.order, row, parsed


def stage_page(order_id: str, stage: str) -> str:
    return url_for("orders.stage", order_id=order_id, stage=stage)


# --- what the review page shows ------------------------------------------------------------------------

def claim_state(status: str, claim: claims.ClaimView | None) -> str:
    if status in DECIDED:
        return "decided"
    if claim is None:
        return "free"
    return "mine" if claim.held_by(current_user.email) else "other"


def claim_context(order_id: str, stage: str, status: str, claim: claims.ClaimView | None, *,
                  auto: bool = False, error: str | None = None) -> dict:
    heartbeat = current_app.config["CLAIM_HEARTBEAT_SECONDS"]
    return {
        "order_id": order_id, "stage": stage, "claim": claim, "claim_state": claim_state(status, claim),
        "auto_claim": auto, "claim_error": error, "heartbeat": heartbeat,
        "presence_poll": current_app.config["CLAIM_PRESENCE_SECONDS"],
    }


def claim_bar(order_id: str, stage: str, **options) -> dict:
    """The claim bar as it is now (for the claim actions and presence polling)."""
    status = db.session.scalar(db.select(ReviewStage.status).where(
        ReviewStage.order_id == order_id, ReviewStage.stage_name == stage)) or "pending"
    return claim_context(order_id, stage, status, claims.live_claim(order_id, stage), **options)


def undo_offer(facts: history.StageFacts, row: ReviewStage) -> dict | None:
    """The undo the signed-in reviewer can still make on this stage, with the seconds left, or None."""
    decision = facts.decision
    if not decision or decision.get("voided_at") or not current_user.is_authenticated:
        return None
    mine = decision["reviewer_email"] == current_user.email == row.reviewer_email
    if not mine or row.status != decision["outcome"]:
        return None
    window = current_app.config["UNDO_WINDOW_SECONDS"]
    left = int((datetime.fromisoformat(decision["decided_at"]) - facts.now).total_seconds()) + window
    return {"outcome": decision["outcome"], "seconds_left": left, "window": window} if left > 0 else None


def flow_context(order: Order, row: ReviewStage, *, auto_claim: bool = False, **extra) -> dict:
    """Everything the review page's flow pieces need, in one statement beyond what the page loads."""
    parsed = parse_stage(row.stage_name)
    facts = history.stage_facts(order.order_id, parsed.value)
    assets = order.assets_for(parsed.value)
    event = facts.last_event or {}
    return {
        "order_id": order.order_id,
        "stage": parsed.value,
        "status": row.status,
        "reasons": REASONS,
        "assets": assets,
        "fingerprint": fingerprints.fingerprint(assets),
        "claim": claim_context(order.order_id, parsed.value, row.status, facts.claim, auto=auto_claim),
        "held_by": facts.claim.claimed_by if claim_state(row.status, facts.claim) == "other" else None,
        "undo": undo_offer(facts, row),
        "voided": event if event.get("action") == "approval_voided" and row.status not in DECIDED else None,
        "compare": compare_context(order, parsed),
        "max_asset_bytes": current_app.config["MAX_ASSET_BYTES"],
        **extra,
    }


def render_decision_panel(order_id: str, stage: str, **extra) -> str:
    from .orders import load, panel_context

    order, row = load(order_id, stage)
    return render_template("review/_decision.html", **panel_context(order, row, **extra))


# --- claims --------------------------------------------------------------------------------------------

@bp.post("/orders/<order_id>/stages/<stage>/claim", defaults={"action": "claim"})
@bp.post("/orders/<order_id>/stages/<stage>/renew", defaults={"action": "renew"})
@bp.post("/orders/<order_id>/stages/<stage>/release", defaults={"action": "release"})
@bp.post("/orders/<order_id>/stages/<stage>/takeover", defaults={"action": "takeover"})
@login_required
def claim_action(order_id: str, stage: str, action: str):
    _, _, parsed = load_stage(order_id, stage)
    claims.sweep_lapsed(limit=50)  # lapsed claims elsewhere go back to pending as people work
    try:
        CLAIM_ACTIONS[action](current_actor(), order_id, parsed.value)
    except DomainError as exc:
        if request.form.get("beacon"):
            return "", 204  # a page giving its claim back as it closes: nobody is there to read an error
        if not wants_fragment():
            flash(exc.message, "error")
            return redirect(stage_page(order_id, parsed.value), 303)
        body = render_template("review/_claim.html", claim_ctx=claim_bar(order_id, parsed.value, error=exc.message))
        return body, exc.status, {"HX-Trigger": "claim-changed"}
    if request.form.get("beacon"):
        return "", 204
    if not wants_fragment():
        return redirect(stage_page(order_id, parsed.value), 303)
    headers = {} if action == "renew" else {"HX-Trigger": "claim-changed"}
    return render_template("review/_claim.html", claim_ctx=claim_bar(order_id, parsed.value)), 200, headers


@bp.get("/orders/<order_id>/stages/<stage>/presence")
@login_required
def presence(order_id: str, stage: str):
    """The claim bar as it is now: polled by pages whose stage someone else holds."""
    _, _, parsed = load_stage(order_id, stage)
    bar = claim_bar(order_id, parsed.value)
    # When the stage changed hands (or was decided) since the page last looked, its decision panel follows.
    changed = request.args.get("seen") not in (None, bar["claim_state"])
    return render_template("review/_claim.html", claim_ctx=bar), 200, {"HX-Trigger": "claim-changed"} if changed else {}


@bp.get("/orders/<order_id>/stages/<stage>/panel")
@login_required
def panel(order_id: str, stage: str):
    """The decision panel as it is now (after a claim changed hands)."""
    _, _, parsed = load_stage(order_id, stage)
    return render_decision_panel(order_id, parsed.value)


# --- undo ----------------------------------------------------------------------------------------------

@bp.post("/orders/<order_id>/stages/<stage>/undo")
@login_required
def undo_decision(order_id: str, stage: str):
    _, _, parsed = load_stage(order_id, stage)
    try:
        undo.undo(current_actor(), order_id, parsed.value)
    except DomainError as exc:
        if not wants_fragment():
            flash(exc.message, "error")
            return redirect(stage_page(order_id, parsed.value), 303)
        return render_decision_panel(order_id, parsed.value, error=exc.message), exc.status
    if not wants_fragment():
        flash("Decision undone: the stage is back where it was.", "success")
        return redirect(stage_page(order_id, parsed.value), 303)
    body = render_decision_panel(order_id, parsed.value, outcome="Decision undone: the stage is back where it was.")
    return body, 200, {"HX-Trigger": "stage-decided"}


# --- the next waiting stage ----------------------------------------------------------------------------

RECENT_KEY = "recent_decision"


def remember_decision(order_id: str, stage: str) -> None:
    """After "decide and next": the next page offers to undo the decision just made."""
    session[RECENT_KEY] = [order_id, stage]


def recent_undo() -> dict | None:
    """The decision made just before this page (by "decide and next"), while it can still be undone."""
    recent = session.pop(RECENT_KEY, None)
    if not isinstance(recent, list) or len(recent) != 2:
        return None
    found = undo.undoable(str(recent[0]), str(recent[1]), current_user.email)
    if found is None:
        return None
    decision, left = found
    return {"order_id": decision.order_id, "stage": decision.stage, "outcome": decision.outcome,
            "seconds_left": left}


def remember_queue_filter(params: dict) -> None:
    """The queue view calls this, so "next waiting stage" follows the filter the reviewer came from."""
    if session.get(QUEUE_FILTER_KEY) != params:
        session[QUEUE_FILTER_KEY] = params


def queue_filter_clauses() -> list:
    try:
        f = queries.parse_queue_filter(MultiDict(session.get(QUEUE_FILTER_KEY) or {}))
    except BadQuery:
        return []
    clauses = []
    if f.stage:
        clauses.append(ReviewStage.stage_name == f.stage)
    if f.platform:
        clauses.append(Order.platform == f.platform)
    if f.project:
        clauses.append(Order.project == f.project)
    if f.q:
        clauses.append(queries.search_clause(f.q))
    return clauses


def next_url(order_id: str, stage: str, direction: str = "next") -> str | None:
    found = next_stage.next_waiting(current_user.email, current=(order_id, stage), filters=queue_filter_clauses(),
                                    sort=(session.get(QUEUE_FILTER_KEY) or {}).get("sort", "age"),
                                    direction=direction)
    return stage_page(*found) if found else None


@bp.get("/queue/next")
@login_required
def start():
    """Open the first stage the reviewer can act on under their queue filter."""
    found = next_stage.next_waiting(current_user.email, filters=queue_filter_clauses(),
                                    sort=(session.get(QUEUE_FILTER_KEY) or {}).get("sort", "age"))
    if found is None:
        flash("Nothing is waiting that you can act on in this queue.", "success")
        return redirect(url_for("queue.index", **(session.get(QUEUE_FILTER_KEY) or {})), 303)
    return redirect(stage_page(*found), 303)


@bp.get("/orders/<order_id>/stages/<stage>/next")
@login_required
def go_next(order_id: str, stage: str):
    """Open the next (or, with ?dir=prev, the previous) waiting stage of the reviewer's queue filter."""
    if stage not in STAGE_NAMES:
        abort(404)
    target = next_url(order_id, stage, "prev" if request.args.get("dir") == "prev" else "next")
    if target is None:
        flash("Nothing else is waiting in this queue. Well done.", "success")
        return redirect(url_for("queue.index", **(session.get(QUEUE_FILTER_KEY) or {})), 303)
    return redirect(target, 303)


# --- replacing an asset, PDF pages ---------------------------------------------------------------------

@bp.post("/orders/<order_id>/stages/<stage>/replace")
@login_required
def replace(order_id: str, stage: str):
    _, _, parsed = load_stage(order_id, stage)
    upload = request.files.get("file")
    asset_key = request.form.get("asset_key", "")
    try:
        if upload is None or not upload.filename:
            raise Invalid("Choose a file to upload.", {"file": "Choose a file."})
        data = upload.stream.read(current_app.config["MAX_ASSET_BYTES"] + 1)
        result = uploads.replace_asset(current_actor(), order_id, parsed.value, asset_key, data,
                                       filename=upload.filename)
    except DomainError as exc:
        flash(f"Nothing was replaced: {exc.message}", "error")
        return redirect(stage_page(order_id, parsed.value), 303)
    message = "Asset replaced."
    if result.voided:
        message += " The approval did not cover the new file, so the stage is waiting for review again."
    elif result.status_before != result.status_after:
        message += " The stage is waiting for review again."
    flash(message, "success")
    return redirect(stage_page(order_id, parsed.value), 303)


def content_hash(asset: dict) -> str:
    value = str(asset.get("sha256") or "")
    return value if re.fullmatch(r"[0-9a-f]{64}", value) else hashlib.sha256(asset["key"].encode()).hexdigest()


@bp.get("/orders/<order_id>/stages/<stage>/pages/<int:page>.png")
@login_required
def pdf_page(order_id: str, stage: str, page: int):
    """A picture of page ``page`` of the stage's PDF, for comparing it with the illustrations."""
    order, _, parsed = load_stage(order_id, stage)
    pdf = next((a for a in order.assets_for(parsed.value) if a.get("content_type") == "application/pdf"), None)
    if pdf is None:
        abort(404)
    try:
        key = pdf_pages.cached_page_picture(get_storage(), pdf["key"], content_hash(pdf), page,
                                            max_pixels=current_app.config["MAX_IMAGE_PIXELS"])
    except (pdf_pages.NoPicture, InvalidKey):
        abort(404)
    return redirect(url_for("assets.file", key=key), 302)


def compare_context(order: Order, parsed: Stage) -> dict | None:
    """The previous stage's pictures and the current ones, for postBria and postPdf."""
    previous = parsed.previous
    if previous is None:
        return None

    def pictures(stage: Stage) -> list[dict]:
        found = []
        for asset in order.assets_for(stage.value):
            label = asset.get("label") or asset["key"]
            if str(asset.get("content_type", "")).startswith("image/"):
                found.append({"label": label, "url": url_for("assets.file", key=asset["key"])})
            elif asset.get("content_type") == "application/pdf":
                pages = pdf_pages.pages_in(get_storage(), asset["key"], content_hash(asset))
                found += [{"label": f"{label}, page {n}",
                           "url": url_for("flow.pdf_page", order_id=order.order_id, stage=stage.value, page=n)}
                          for n in range(1, pages + 1)]
        return found

    before, current = pictures(previous), pictures(parsed)
    if not before or not current:
        return None
    return {"previous_stage": previous.value, "stage": parsed.value, "previous": before, "current": current}


# --- timeline and report -------------------------------------------------------------------------------

@bp.get("/orders/<order_id>/timeline")
@login_required
def order_timeline(order_id: str):
    order = db.session.scalar(db.select(Order).where(Order.order_id == order_id)) if len(order_id) <= 255 else None
    if order is None:
        abort(404)
    kinds = [k for k in request.args.getlist("kind") if k in timeline.KINDS]
    stage = request.args.get("stage") if request.args.get("stage") in STAGE_NAMES else None
    entries = timeline.order_timeline(order_id, kinds=kinds or None, stage=stage)
    context = dict(order=order, entries=entries, kinds=timeline.KINDS, chosen=set(kinds), stage=stage,
                   stages=STAGE_NAMES)
    if wants_fragment():
        return render_template("orders/_timeline.html", **context)
    return render_template("orders/timeline.html", **context)


@bp.get("/reports/rejects")
@login_required
def reject_report():
    period = reports.parse_period(request.args.get("period"))
    return render_template("reports/rejects.html", report=reports.reject_report(period), period=period,
                           periods=reports.PERIODS)
