"""The stage review page and every action on it: claim, renew, release, take over, approve, reject, reopen,
undo, replace an asset, move on to the next waiting stage, and the pictures of a PDF's pages."""
from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Callable

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required

from sqlalchemy.exc import SQLAlchemyError

from lhb_review import review
from lhb_review.core.errors import DomainError, Invalid, NotFound
from lhb_review.core.stages import DECIDED, STAGE_NAMES, Stage, StageStatus
from lhb_review.core.storage import InvalidKey, get_storage
from lhb_review.extensions import db
from lhb_review.models import Order, ReviewStage
from lhb_review.review import claims, counts, fingerprints, history, pdf_pages, queries
from lhb_review.review.checks import stage_checks
from lhb_review.review.reasons import REASONS
from lhb_review.views import queue, ui
from lhb_review.web.auth import current_actor
from lhb_review.web.htmx import fragment_or_redirect, go_to, wants_fragment

bp = Blueprint("review", __name__)

CLAIM_ACTIONS = {"claim": review.claim, "renew": review.renew, "release": review.release,
                 "takeover": review.takeover}
OUTCOMES = {
    "approve": "Approved. The decision and its audit entry are saved.",
    "reject": "Rejected. The notes went to the pipeline with the decision, and it is in the audit log.",
    "reopen": "Reopened. The stage is waiting for review again.",
}
UNDONE = "Decision undone: the stage is back where it was."
# The queue's count rows are folded once a minute by each web process, on the heartbeat of open stage pages
# (nobody waits on its answer), so the counts stay cheap to read even where no checks or webhook worker runs.
COMPACTOR = counts.Compactor()
MAX_ORDER_ID = 255  # orders.order_id is VARCHAR(255)


# --- loading what the URL names ------------------------------------------------------------------------

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


def stage_page(order_id: str, stage: str) -> str:
    return url_for("review.stage", order_id=order_id, stage=stage)


# --- what the page shows -------------------------------------------------------------------------------

def claim_state(status: str, claim: claims.ClaimView | None) -> str:
    if status in DECIDED:
        return "decided"
    if claim is None:
        return "free"
    return "mine" if claim.held_by(current_user.email) else "other"


def claim_context(order_id: str, stage: str, status: str, claim: claims.ClaimView | None, *,
                  auto: bool = False, error: str | None = None, blocked: bool = False) -> dict:
    return {
        "order_id": order_id, "stage": stage, "claim": claim, "claim_state": claim_state(status, claim),
        "auto_claim": auto and not blocked, "claim_error": error, "blocked": blocked,
        "heartbeat": current_app.config["CLAIM_HEARTBEAT_SECONDS"],
        "presence_poll": current_app.config["CLAIM_PRESENCE_SECONDS"],
        "version": presence_version(status, claim, blocked),
    }


def claim_bar(order_id: str, stage: str, **options) -> dict:
    """The claim bar as it is now (for the claim actions and presence polling); 404 without the stage."""
    check_names(order_id, stage)
    facts = queries.claim_bar_facts(order_id, stage)
    if facts is None:
        load(order_id, stage)  # says which of the two is missing
    status, blocked, claim = facts
    return claim_context(order_id, stage, status, claim, blocked=blocked, **options)


def presence_version(status: str, claim: claims.ClaimView | None, blocked: bool = False) -> str:
    """What an open page's claim bar depends on, as a short tag: the same tag means the same bar, so a poll
    is answered 304 with no body. Expiry counts to the minute, as the bar shows it."""
    parts = [status, "blocked" if blocked else "open"]
    if claim is not None:
        parts += [claim.claimed_by, claim.claimed_at.isoformat(), claim.expires_at.strftime("%H:%M")]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def refusal_message(message: str, order_id: str, stage: str) -> str:
    """A refused decision or claim, said with who holds or decided the stage and when: "rev2 took this
    over at 05:37 UTC"."""
    facts = history.stage_facts(order_id, stage)
    if facts.claim is not None and not facts.claim.held_by(current_user.email):
        return (f"{facts.claim.claimed_by} took this over at {facts.claim.claimed_at.strftime('%H:%M')} UTC. "
                f"{message}")
    decision = facts.decision or {}
    if decision.get("reviewer_email") not in (None, current_user.email) and decision.get("decided_at"):
        when = datetime.fromisoformat(decision["decided_at"]).strftime("%H:%M")
        return f"{decision['reviewer_email']} {decision.get('outcome', 'decided')} this stage at {when} UTC. {message}"
    return message


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
    """Everything the page's flow pieces need, in one statement beyond what the page loads."""
    parsed = Stage(row.stage_name)
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
        "claim": claim_context(order.order_id, parsed.value, row.status, facts.claim, auto=auto_claim,
                               blocked=extra.pop("blocked", False)),
        "held_by": facts.claim.claimed_by if claim_state(row.status, facts.claim) == "other" else None,
        "undo": undo_offer(facts, row),
        "decision_reasons": (facts.decision or {}).get("reasons") or [] if row.status in DECIDED else [],
        "voided": event if event.get("action") in review.VOID_ACTIONS and row.status not in DECIDED else None,
        "compare": compare_context(order, parsed),
        "checks": facts.checks,
        "max_asset_bytes": current_app.config["MAX_ASSET_BYTES"],
        **extra,
    }


def panel_context(order: Order, row: ReviewStage, *, auto_claim: bool = False, kept: dict | None = None,
                  **extra) -> dict:
    """Everything review/_decision.html needs: the stage, whether it can be decided, what blocks approval,
    and the flow around it (claim, reasons, undo, compare)."""
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
        # Opening a stage that cannot be decided yet (an earlier one is not approved) claims nothing.
        "flow": flow_context(order, row, auto_claim=auto_claim, blocked=bool(blocked_by), **(kept or {})),
        **extra,
    }


def render_panel(order_id: str, stage: str, **extra) -> str:
    order, row = load(order_id, stage)
    return render_template("review/_decision.html", **panel_context(order, row, **extra))


def render_decided(order_id: str, decided: review.Decided, outcome: str) -> str:
    """The panel right after the reviewer's own decision, from what the decision wrote (nothing read back):
    the decided stage, its reasons, and the undo with its whole window left."""
    row, window = decided.stage, current_app.config["UNDO_WINDOW_SECONDS"]
    flow = {"order_id": order_id, "stage": row.stage_name,
            "decision_reasons": decided.reasons,
            "undo": {"outcome": decided.outcome, "seconds_left": window, "window": window} if window > 0 else None}
    return render_template("review/_decision.html", order={"order_id": order_id}, row=row, decided=True,
                           blocked_by=[], outcome=outcome, error=None, field_errors={}, notes="",
                           failed_action=None, flow=flow)


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
                           "url": url_for("review.pdf_page", order_id=order.order_id, stage=stage.value, page=n)}
                          for n in range(1, pages + 1)]
        return found

    before, current = pictures(previous), pictures(parsed)
    if not before or not current:
        return None
    return {"previous_stage": previous.value, "stage": parsed.value, "previous": before, "current": current}


def content_hash(asset: dict) -> str:
    value = str(asset.get("sha256") or "")
    return value if re.fullmatch(r"[0-9a-f]{64}", value) else hashlib.sha256(asset["key"].encode()).hexdigest()


# --- machine checks ------------------------------------------------------------------------------------

FIRST_WAIT, MAX_WAIT = 2, 30  # seconds between polls of pending checks: doubling up to the cap


def checks_context(order_id: str, stage: str, wait: int = FIRST_WAIT, found: dict | None = None) -> dict:
    """The checks panel: the stage's current checks (``found``, when already read with the page's other facts)
    with a link for each result, outcome counts, and how long to wait before asking again while pending."""
    found = stage_checks(order_id, stage) if found is None else found
    results = []
    for result in found["results"]:
        link = url_for("assets.file", key=result["asset"]) if result.get("asset") else None
        if link and result.get("page"):
            # A print PDF's page opens in the proof view; any other file's page as the browser shows it.
            link = (url_for("review.proof", order_id=order_id) + f"#page-{result['page']}"
                    if stage == Stage.POST_PDF.value else link + f"#page={result['page']}")
        results.append({**result, "link": link})
    counts = {outcome: sum(1 for r in results if r["outcome"] == outcome) for outcome in ("fail", "error", "warn", "pass")}
    wait = min(max(wait, FIRST_WAIT), MAX_WAIT)
    return {"order_id": order_id, "stage": stage, "state": found["state"], "results": results, "counts": counts,
            "wait": wait, "next_wait": min(wait * 2, MAX_WAIT)}


@bp.get("/orders/<order_id>/stages/<stage>/checks")
@login_required
def checks_panel(order_id: str, stage: str):
    """The checks panel as it is now: polled while the checks run."""
    load(order_id, stage)
    wait = request.args.get("wait", "")
    return render_template("review/_checks.html", checks_ctx=checks_context(
        order_id, stage, int(wait) if wait.isdigit() and len(wait) < 4 else FIRST_WAIT))


# --- the page ------------------------------------------------------------------------------------------

@bp.get("/orders/<order_id>/stages/<stage>")
@login_required
def stage(order_id: str, stage: str):
    found, row = load(order_id, stage)
    context = panel_context(found, row, auto_claim=True)
    return render_template("review/stage.html", **context,
                           history=queries.stage_history(order_id, stage), recent_undo=queue.recent_undo(),
                           checks_ctx=checks_context(order_id, stage, found=context["flow"]["checks"]))


@bp.get("/orders/<order_id>/stages/<stage>/panel")
@login_required
def panel(order_id: str, stage: str):
    """The decision panel as it is now (after a claim changed hands)."""
    load(order_id, stage)
    return render_panel(order_id, stage)


@bp.get("/orders/<order_id>/stages/<stage>/presence")
@login_required
def presence(order_id: str, stage: str):
    """The claim bar as it is now: polled every few seconds by every open page of an undecided stage."""
    bar = claim_bar(order_id, stage)
    etag = f'"{bar["version"]}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache, private"}
    # Nothing changed since the page's last look: 304 and no body (htmx leaves the bar as it is).
    if request.headers.get("If-None-Match") == etag:
        return "", 304, headers
    # When the stage changed hands (or was decided) since the page last looked, its decision panel follows.
    if request.args.get("seen") not in (None, bar["claim_state"]):
        headers["HX-Trigger"] = "claim-changed"
    return render_template("review/_claim.html", claim_ctx=bar), 200, headers


# --- claims --------------------------------------------------------------------------------------------

def tidy_up(*, compact: bool) -> None:
    """Housekeeping that rides on reviewers' claims: lapsed claims elsewhere go back to pending and, on a
    heartbeat, the queue's count rows are compacted when due. A failed compaction is logged and tried again
    later; the reviewer's claim goes on."""
    review.expire_lapsed(limit=50)
    if not compact:
        return
    try:
        COMPACTOR.maybe()
    except SQLAlchemyError:
        db.session.rollback()
        current_app.logger.warning("Compacting the queue's counts failed; trying again later", exc_info=True)


@bp.post("/orders/<order_id>/stages/<stage>/claim", defaults={"action": "claim"})
@bp.post("/orders/<order_id>/stages/<stage>/renew", defaults={"action": "renew"})
@bp.post("/orders/<order_id>/stages/<stage>/release", defaults={"action": "release"})
@bp.post("/orders/<order_id>/stages/<stage>/takeover", defaults={"action": "takeover"})
@login_required
def claim_action(order_id: str, stage: str, action: str):
    load(order_id, stage)
    tidy_up(compact=action == "renew")
    beacon = bool(request.form.get("beacon"))  # a page giving its claim back as it closes: nobody reads the answer
    try:
        CLAIM_ACTIONS[action](current_actor(), order_id, stage)
    except DomainError as exc:
        if beacon:
            return "", 204
        message = refusal_message(exc.message, order_id, stage)
        return fragment_or_redirect(
            lambda: render_template("review/_claim.html", claim_ctx=claim_bar(order_id, stage, error=message)),
            stage_page(order_id, stage), message=message, category="error", status=exc.status,
            headers={"HX-Trigger": "claim-changed"})
    if beacon:
        return "", 204
    return fragment_or_redirect(
        lambda: render_template("review/_claim.html", claim_ctx=claim_bar(order_id, stage)),
        stage_page(order_id, stage), headers={} if action == "renew" else {"HX-Trigger": "claim-changed"})


# --- decisions -----------------------------------------------------------------------------------------

def decide(order_id: str, stage: str, action: str, service: Callable[..., object], kept: dict | None = None):
    """Run one decision; answer with the panel (htmx) or a 303 back to the page (plain form).

    A broken rule answers with its status (409, 422, 403) and the panel or page showing why, the form kept.
    With ``next`` in the form, a decision that succeeds goes on to the next waiting stage of the queue.
    """
    check_names(order_id, stage)
    notes = request.form.get("notes", "")
    try:
        done = service(current_actor(), order_id, stage, notes)
    except NotFound as exc:
        abort(404, description=exc.message)
    except DomainError as exc:
        order, row = load(order_id, stage)
        message = refusal_message(exc.message, order_id, stage) if exc.status == 409 else exc.message
        context = panel_context(order, row, error=message, field_errors=getattr(exc, "fields", {}) or {},
                                notes=notes, failed_action=action, kept=kept)
        if wants_fragment():
            # The claim bar comes along out of band, so the bar and the panel never disagree after a 409.
            return render_template("review/_decision.html", **context, claim_oob=exc.status == 409), exc.status
        return render_template("review/stage.html", **context, history=queries.stage_history(order_id, stage),
                               checks_ctx=checks_context(order_id, stage)), exc.status
    if request.form.get("next"):
        session[queue.RECENT_KEY] = [order_id, stage]  # the next page offers to undo this decision
        return go_to(next_url(order_id, stage) or url_for("review.go_next", order_id=order_id, stage=stage))
    if isinstance(done, review.Decided):
        panel = lambda: render_decided(order_id, done, OUTCOMES[action])  # noqa: E731
    else:
        panel = lambda: render_panel(order_id, stage, outcome=OUTCOMES[action])  # noqa: E731
    return fragment_or_redirect(panel, stage_page(order_id, stage), message=OUTCOMES[action],
                                headers={"HX-Trigger": "stage-decided"})


@bp.post("/orders/<order_id>/stages/<stage>/approve")
@login_required
def approve(order_id: str, stage: str):
    # The fingerprint of the assets the page showed: an approval covers those, or none.
    seen = request.form.get("fingerprint") or None
    return decide(order_id, stage, "approve",
                  lambda actor, o, s, notes: review.approve(actor, o, s, notes, fingerprint=seen))


@bp.post("/orders/<order_id>/stages/<stage>/reject")
@login_required
def reject(order_id: str, stage: str):
    seen = request.form.get("fingerprint") or None
    reasons, assets = request.form.getlist("reasons"), request.form.getlist("asset_keys")
    return decide(order_id, stage, "reject",
                  lambda actor, o, s, notes: review.reject(actor, o, s, notes, reasons, assets, fingerprint=seen),
                  kept={"chosen_reasons": reasons, "chosen_assets": assets})


@bp.post("/orders/<order_id>/stages/<stage>/reopen")
@login_required
def reopen(order_id: str, stage: str):
    return decide(order_id, stage, "reopen", review.reopen)


@bp.get("/orders/<order_id>/stages/<stage>/<any(approve, reject, reopen):action>")
@login_required
def action_page(order_id: str, stage: str, action: str):
    """An action URL opened directly (after signing in again, say) shows the stage instead of a 405."""
    load(order_id, stage)
    return redirect(stage_page(order_id, stage), code=303)


@bp.post("/orders/<order_id>/stages/<stage>/undo")
@login_required
def undo_decision(order_id: str, stage: str):
    load(order_id, stage)
    try:
        review.undo(current_actor(), order_id, stage)
    except DomainError as exc:
        refused = exc.message
        return fragment_or_redirect(lambda: render_panel(order_id, stage, error=refused),
                                    stage_page(order_id, stage), message=refused, category="error",
                                    status=exc.status)
    return fragment_or_redirect(lambda: render_panel(order_id, stage, outcome=UNDONE), stage_page(order_id, stage),
                                message=UNDONE, headers={"HX-Trigger": "stage-decided"})


# --- moving on -----------------------------------------------------------------------------------------

def next_url(order_id: str, stage: str, direction: str = "next") -> str | None:
    found = queue.next_waiting(current=(order_id, stage), direction=direction)
    return stage_page(*found) if found else None


@bp.get("/orders/<order_id>/stages/<stage>/next")
@login_required
def go_next(order_id: str, stage: str):
    """Open the next (or, with ?dir=prev, the previous) waiting stage of the reviewer's queue filter."""
    check_names(order_id, stage)
    target = next_url(order_id, stage, "prev" if request.args.get("dir") == "prev" else "next")
    if target is None:
        return queue.back_to_queue("Nothing else is waiting in this queue. Well done.")
    return redirect(target, 303)


# --- replacing an asset, PDF pages ---------------------------------------------------------------------

@bp.post("/orders/<order_id>/stages/<stage>/replace")
@login_required
def replace(order_id: str, stage: str):
    load(order_id, stage)
    upload = request.files.get("file")
    asset_key = request.form.get("asset_key", "")
    try:
        if upload is None or not upload.filename:
            raise Invalid("Choose a file to upload.", {"file": "Choose a file."})
        data = upload.stream.read(current_app.config["MAX_ASSET_BYTES"] + 1)
        result = review.replace_asset(current_actor(), order_id, stage, asset_key, data, filename=upload.filename)
    except DomainError as exc:
        flash(f"Nothing was replaced: {exc.message}", "error")
        return redirect(stage_page(order_id, stage), 303)
    message = "Asset replaced."
    if result.voided:
        message += " The approval did not cover the new file, so the stage is waiting for review again."
    elif result.status_before != result.status_after:
        message += " The stage is waiting for review again."
    flash(message, "success")
    return redirect(stage_page(order_id, stage), 303)


# --- the print proof ----------------------------------------------------------------------------------

def spreads(count: int) -> list[list[int]]:
    """How the book is read: page 1 (the cover) alone, then two pages side by side."""
    if count < 1:
        return []
    return [[1]] + [list(range(n, min(n + 2, count + 1))) for n in range(2, count + 1, 2)]


def proof_context(order: Order) -> dict:
    stage_name = Stage.POST_PDF.value
    pdf = next((a for a in order.assets_for(stage_name) if a.get("content_type") == "application/pdf"), None)
    pages: dict[int, dict] = {}
    if pdf is not None:
        storage, sha = get_storage(), content_hash(pdf)
        safe = float(current_app.config.get("CHECK_SAFE_ZONE_IN", 0.25)) * 72
        for n, geometry in enumerate(pdf_pages.geometry_of(storage, pdf["key"], sha), start=1):
            x, y, w, h = geometry.trim
            pages[n] = {
                "number": n, "geometry": geometry,
                "url": url_for("review.pdf_page", order_id=order.order_id, stage=stage_name, page=n),
                "safe": (x + safe, y + safe, max(w - 2 * safe, 0), max(h - 2 * safe, 0)),
            }
    return {"pdf": pdf, "pages": pages, "spreads": [[pages[n] for n in spread] for spread in spreads(len(pages))],
            "safe_zone_in": current_app.config.get("CHECK_SAFE_ZONE_IN", 0.25)}


@bp.get("/orders/<order_id>/stages/postPdf/proof")
@login_required
def proof(order_id: str):
    """The print PDF as it will be read, the cover and then spreads, with trim, bleed and safe-zone overlays."""
    order, row = load(order_id, Stage.POST_PDF.value)
    return render_template("review/proof.html", order=order, row=row, proof=proof_context(order))


@bp.get("/orders/<order_id>/stages/<stage>/pages/<int:page>.png")
@login_required
def pdf_page(order_id: str, stage: str, page: int):
    """A picture of page ``page`` of the stage's PDF, for comparing it with the illustrations."""
    order, _ = load(order_id, stage)
    pdf = next((a for a in order.assets_for(stage) if a.get("content_type") == "application/pdf"), None)
    if pdf is None:
        abort(404)
    try:
        key = pdf_pages.cached_page_picture(get_storage(), pdf["key"], content_hash(pdf), page,
                                            max_pixels=current_app.config["MAX_IMAGE_PIXELS"])
    except (pdf_pages.NoPicture, InvalidKey):
        abort(404)
    return redirect(url_for("assets.file", key=key), 302)
