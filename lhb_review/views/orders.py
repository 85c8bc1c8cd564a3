"""The order page, the stage review page and the reviewer's actions on a stage (approve, reject, reopen)."""
from __future__ import annotations

from typing import Callable

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required

from ..auth import current_actor
from ..htmx import wants_fragment
from ..models import Order, ReviewStage
from ..services import decisions, queries
from ..services.errors import DomainError, NotFound
from ..stages import DECIDED, STAGE_NAMES, Stage, StageStatus
from . import flow, ui

bp = Blueprint("orders", __name__)

OUTCOMES = {
    "approve": "Approved. The decision and its audit entry are saved.",
    "reject": "Rejected. The notes went to the pipeline with the decision, and it is in the audit log.",
    "reopen": "Reopened. The stage is waiting for review again.",
}
MAX_ORDER_ID = 255  # orders.order_id is VARCHAR(255)


def check_names(order_id: str, stage: str | None) -> None:
    """404 for names no row can have: an unknown stage, or an order id PostgreSQL could not even compare."""
    if stage is not None and stage not in STAGE_NAMES:
        abort(404, description=f"There is no stage called {stage!r}: stages are {', '.join(STAGE_NAMES)}.")
    if "\x00" in order_id or len(order_id) > MAX_ORDER_ID:
        abort(404, description="There is no order with that id.")


def load(order_id: str, stage: str | None = None) -> tuple[Order, ReviewStage | None]:
    """The order (with its stages) and the named stage's row; 404 when either is absent."""
    check_names(order_id, stage)
    order = queries.order_with_stages(order_id)
    if order is None:
        abort(404, description=f"There is no order {order_id!r}.")
    if stage is None:
        return order, None
    row = next((s for s in order.stages if s.stage_name == stage), None)
    if row is None:
        abort(404, description=f"Order {order_id} has no {ui.stage_label(stage)} stage yet.")
    return order, row


@bp.get("/orders/<order_id>")
@login_required
def order(order_id: str):
    found, _ = load(order_id)
    return render_template(
        "orders/show.html",
        order=found,
        stages=queries.stages_in_order(found),
        audit=queries.order_audit(order_id),
        audit_limit=queries.ORDER_AUDIT_LIMIT,
    )


@bp.get("/orders/<order_id>/stages/<stage>")
@login_required
def stage(order_id: str, stage: str):
    found, row = load(order_id, stage)
    history = queries.stage_history(order_id, stage)
    return render_template("review/stage.html", **panel_context(found, row, auto_claim=True), history=history,
                           recent_undo=flow.recent_undo())


def panel_context(order: Order, row: ReviewStage, *, auto_claim: bool = False, kept: dict | None = None,
                  **extra) -> dict:
    """Everything review/_decision.html needs: the stage, whether it can be decided, what blocks approval,
    and the review flow around it (claim, reasons, undo, compare; see views.flow)."""
    parsed = Stage(row.stage_name)
    statuses = {s.stage_name: s.status for s in order.stages}
    blocked_by = [s.value for s in parsed.earlier if statuses.get(s.value) != StageStatus.APPROVED]
    return {
        "order": order,
        "row": row,
        "stages": queries.stages_in_order(order),
        "decided": row.status in DECIDED,
        "blocked_by": blocked_by,
        "outcome": None,
        "error": None,
        "field_errors": {},
        "notes": "",
        "failed_action": None,
        "flow": flow.flow_context(order, row, auto_claim=auto_claim, **(kept or {})),
        **extra,
    }


def decide(order_id: str, stage: str, action: str, service: Callable[..., ReviewStage], kept: dict | None = None):
    """Run one decision service; answer with the panel (htmx) or a 303 back to the page (plain form).

    A broken rule answers with its status (409, 422, 403) and the panel or page showing why, the form kept.
    With ``next`` in the form, a decision that succeeds goes on to the next waiting stage of the queue.
    """
    check_names(order_id, stage)
    notes = request.form.get("notes", "")
    try:
        service(current_actor(), order_id, stage, notes)
    except NotFound as exc:
        abort(404, description=exc.message)
    except DomainError as exc:
        order, row = load(order_id, stage)
        context = panel_context(order, row, error=exc.message, field_errors=getattr(exc, "fields", {}) or {},
                                notes=notes, failed_action=action, kept=kept)
        if wants_fragment():
            return render_template("review/_decision.html", **context), exc.status
        return render_template("review/stage.html", **context,
                               history=queries.stage_history(order_id, stage)), exc.status
    if request.form.get("next"):
        flow.remember_decision(order_id, stage)
        target = flow.next_url(order_id, stage) or url_for("flow.go_next", order_id=order_id, stage=stage)
        if wants_fragment():
            return "", 200, {"HX-Redirect": target}
        return redirect(target, code=303)
    if wants_fragment():
        order, row = load(order_id, stage)
        body = render_template("review/_decision.html", **panel_context(order, row, outcome=OUTCOMES[action]))
        return body, 200, {"HX-Trigger": "stage-decided"}
    flash(OUTCOMES[action], "success")
    return redirect(url_for("orders.stage", order_id=order_id, stage=stage), code=303)


@bp.post("/orders/<order_id>/stages/<stage>/approve")
@login_required
def approve(order_id: str, stage: str):
    # The fingerprint of the assets the page showed: an approval covers those, or none.
    seen = request.form.get("fingerprint") or None
    return decide(order_id, stage, "approve",
                  lambda actor, o, s, notes: decisions.approve(actor, o, s, notes, fingerprint=seen))


@bp.post("/orders/<order_id>/stages/<stage>/reject")
@login_required
def reject(order_id: str, stage: str):
    seen = request.form.get("fingerprint") or None
    reasons, assets = request.form.getlist("reasons"), request.form.getlist("asset_keys")
    return decide(order_id, stage, "reject",
                  lambda actor, o, s, notes: decisions.reject(actor, o, s, notes, reasons, assets, fingerprint=seen),
                  kept={"chosen_reasons": reasons, "chosen_assets": assets})


@bp.post("/orders/<order_id>/stages/<stage>/reopen")
@login_required
def reopen(order_id: str, stage: str):
    return decide(order_id, stage, "reopen", decisions.reopen)


@bp.get("/orders/<order_id>/stages/<stage>/<any(approve, reject, reopen):action>")
@login_required
def action_page(order_id: str, stage: str, action: str):
    """An action URL opened directly (after signing in again, say) shows the stage instead of a 405."""
    load(order_id, stage)
    return redirect(url_for("orders.stage", order_id=order_id, stage=stage), code=303)
