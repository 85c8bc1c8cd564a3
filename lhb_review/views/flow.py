"""Reviewer flow beyond approve and reject: claims and presence, undo, asset replacement, the order
timeline and the reject-reasons report."""
from __future__ import annotations

import hashlib
import re

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ..auth import current_actor
from ..extensions import db
from ..htmx import wants_fragment
from ..models import AuditLog, Order, ReviewStage
from ..reasons import REASONS
from ..services import claims, fingerprints, history, pdf_pages, reports, timeline, undo, uploads
from ..services.errors import DomainError, Invalid
from ..stages import STAGE_NAMES, Stage, UnknownStage, parse_stage
from ..storage import InvalidKey, get_storage

bp = Blueprint("flow", __name__)

CLAIM_ACTIONS = {"claim": claims.claim, "renew": claims.renew, "release": claims.release, "takeover": claims.takeover}


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
    return url_for("review.stage", order_id=order_id, stage=stage)


def claim_context(order_id: str, stage: str, *, auto: bool = False, error: str | None = None) -> dict:
    row = db.session.scalar(
        db.select(ReviewStage).where(ReviewStage.order_id == order_id, ReviewStage.stage_name == stage)
        .execution_options(populate_existing=True))
    claim = claims.live_claim(order_id, stage)
    if row is None or row.status in ("approved", "rejected"):
        state = "decided"
    elif claim is None:
        state = "free"
    elif claim.held_by(current_user.email):
        state = "mine"
    else:
        state = "other"
    return {
        "order_id": order_id, "stage": stage, "claim": claim, "claim_state": state, "auto_claim": auto,
        "claim_error": error, "heartbeat": current_app.config["CLAIM_HEARTBEAT_SECONDS"],
        "presence_poll": min(current_app.config["CLAIM_HEARTBEAT_SECONDS"], 20),
    }


@bp.post("/orders/<order_id>/stages/<stage>/claim", defaults={"action": "claim"})
@bp.post("/orders/<order_id>/stages/<stage>/renew", defaults={"action": "renew"})
@bp.post("/orders/<order_id>/stages/<stage>/release", defaults={"action": "release"})
@bp.post("/orders/<order_id>/stages/<stage>/takeover", defaults={"action": "takeover"})
@login_required
def claim_action(order_id: str, stage: str, action: str):
    _, _, parsed = load_stage(order_id, stage)
    try:
        CLAIM_ACTIONS[action](current_actor(), order_id, parsed.value)
    except DomainError as exc:
        if request.form.get("beacon"):
            return "", 204  # a page giving its claim back as it closes: nobody is there to read an error
        if not wants_fragment():
            flash(exc.message, "error")
            return redirect(stage_page(order_id, parsed.value), 303)
        context = claim_context(order_id, parsed.value, error=exc.message)
        return render_template("review/_claim.html", **context), exc.status, {"HX-Trigger": "claim-changed"}
    if request.form.get("beacon"):
        return "", 204
    if not wants_fragment():
        return redirect(stage_page(order_id, parsed.value), 303)
    headers = {} if action == "renew" else {"HX-Trigger": "claim-changed"}
    return render_template("review/_claim.html", **claim_context(order_id, parsed.value)), 200, headers


@bp.get("/orders/<order_id>/stages/<stage>/presence")
@login_required
def presence(order_id: str, stage: str):
    """The claim bar as it is now: polled by pages whose stage someone else holds."""
    _, _, parsed = load_stage(order_id, stage)
    return render_template("review/_claim.html", **claim_context(order_id, parsed.value))


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
        flash(exc.message, "error")
        return redirect(stage_page(order_id, parsed.value), 303)
    message = "Asset replaced."
    if result.voided:
        message += " The stage's approval no longer covers its assets: it is waiting for review again."
    elif result.status_before != result.status_after:
        message += " The stage is waiting for review again."
    flash(message, "info")
    return redirect(stage_page(order_id, parsed.value), 303)


@bp.get("/orders/<order_id>/timeline")
@login_required
def order_timeline(order_id: str):
    order = db.session.scalar(db.select(Order).where(Order.order_id == order_id))
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


def undo_state(order_id: str, stage: str) -> dict | None:
    """What the decision panel needs to offer an undo: the decision and the seconds left, or None."""
    if not current_user.is_authenticated:
        return None
    found = undo.undoable(order_id, stage, current_user.email)
    if found is None:
        return None
    decision, left = found
    return {"decision": decision, "seconds_left": left, "window": current_app.config["UNDO_WINDOW_SECONDS"]}


@bp.get("/orders/<order_id>/stages/<stage>/pages/<int:page>.png")
@login_required
def pdf_page(order_id: str, stage: str, page: int):
    """A picture of page ``page`` of the stage's PDF, for comparing it with the illustrations."""
    order, _, parsed = load_stage(order_id, stage)
    pdf = next((a for a in order.assets_for(parsed.value) if a.get("content_type") == "application/pdf"), None)
    if pdf is None:
        abort(404)
    storage = get_storage()
    try:
        key = pdf_pages.cached_page_picture(storage, pdf["key"], content_hash(pdf), page,
                                            max_pixels=current_app.config["MAX_IMAGE_PIXELS"])
    except (pdf_pages.NoPicture, InvalidKey):
        abort(404)
    return redirect(url_for("assets.file", key=key), 302)


def content_hash(asset: dict) -> str:
    value = str(asset.get("sha256") or "")
    return value if re.fullmatch(r"[0-9a-f]{64}", value) else hashlib.sha256(asset["key"].encode()).hexdigest()


def asset_url(asset: dict) -> str:
    return url_for("assets.file", key=asset["key"])


def compare_context(order: Order, parsed: Stage) -> dict | None:
    """The previous stage's pictures and the current ones, for postBria and postPdf."""
    previous = parsed.previous
    if parsed is Stage.PRE_BRIA or previous is None:
        return None
    before = [{"label": a.get("label") or a["key"], "url": asset_url(a)}
              for a in order.assets_for(previous.value) if str(a.get("content_type", "")).startswith("image/")]
    current = []
    for asset in order.assets_for(parsed.value):
        if str(asset.get("content_type", "")).startswith("image/"):
            current.append({"label": asset.get("label") or asset["key"], "url": asset_url(asset)})
        elif asset.get("content_type") == "application/pdf":
            pages = pdf_pages.pages_in(get_storage(), asset["key"], content_hash(asset))
            current += [{"label": f"{asset.get('label') or 'PDF'}, page {n}",
                         "url": url_for("flow.pdf_page", order_id=order.order_id, stage=parsed.value, page=n)}
                        for n in range(1, pages + 1)]
    if not before or not current:
        return None
    return {"previous_stage": previous.value, "stage": parsed.value, "previous": before, "current": current}


def latest_void(order_id: str, stage: str) -> AuditLog | None:
    """The approval_voided row that explains why this stage waits again (none once it was decided since)."""
    row = db.session.scalar(
        db.select(AuditLog).where(AuditLog.order_id == order_id, AuditLog.stage == stage,
                                  AuditLog.action.in_(["approval_voided", "stage_approved", "stage_rejected"]))
        .order_by(AuditLog.created_at.desc()).limit(1))
    return row if row is not None and row.action == "approval_voided" else None


def flow_context(order: Order, row: ReviewStage, **extra) -> dict:
    """Everything the review page's flow pieces need: claim bar, reasons, undo, compare, changes, replace."""
    parsed = parse_stage(row.stage_name)
    assets = order.assets_for(parsed.value)
    return {
        "order_id": order.order_id,
        "stage": parsed.value,
        "status": row.status,
        "reasons": REASONS,
        "assets": assets,
        "fingerprint": fingerprints.fingerprint(assets),
        "undo": undo_state(order.order_id, parsed.value),
        "compare": compare_context(order, parsed),
        "voided": latest_void(order.order_id, parsed.value) if row.status in ("pending", "in_review") else None,
        "decisions": history.decisions_for(order.order_id, parsed.value, limit=20),
        "max_asset_bytes": current_app.config["MAX_ASSET_BYTES"],
        **extra,
    }
