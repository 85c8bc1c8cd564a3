"""The review queue: stages waiting for a reviewer, filtered and paged by keyset, with counts at a glance;
and the reviewer's way through it (start, next, previous), which follows the filter they came from."""
from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required
from werkzeug.datastructures import MultiDict

from lhb_review.models import Order, ReviewStage
from lhb_review.review import counts, next_stage, queries, sla
from lhb_review.review.checks.jobs import check_state_of
from lhb_review.review.queries import BadQuery
from lhb_review.review.undoing import undoable
from lhb_review.web.htmx import wants_fragment
from lhb_review.web.links import Links

bp = Blueprint("queue", __name__)
QUEUE_FILTER_KEY = "queue_filter"
RECENT_KEY = "recent_decision"


@bp.get("/")
@bp.get("/queue")
@login_required
def index():
    template = "queue/_rows.html" if wants_fragment() else "queue/index.html"
    try:
        queue_filter = queries.parse_queue_filter(request.args)
    except BadQuery as exc:
        return render_template(template, error=exc.message, page=None, filter=queries.QueueFilter(),
                               **_page_context(queries.QueueFilter(), fragment=wants_fragment())), exc.status
    page = queries.queue_page(queue_filter)
    remember_queue_filter(queue_filter.params(cursor=None, size=queries.DEFAULT_PAGE_SIZE))
    body = render_template(template, page=page, filter=queue_filter, error=None, links=row_links(),
                           now=datetime.now(timezone.utc),
                           recent_undo=None if wants_fragment() else recent_undo(),
                           **_page_context(queue_filter, fragment=wants_fragment()))
    # The address bar gets the short form of the filter (no empty fields, no defaults), so it is worth sharing.
    headers = {"HX-Push-Url": url_for("queue.index", **queue_filter.params())} if wants_fragment() else {}
    return body, 200, headers


def row_links() -> SimpleNamespace:
    """The two links of every queue row, each from one pattern built for this page."""
    return SimpleNamespace(order=Links("orders.order", "order_id"),
                           stage=Links("review.stage", "order_id", "stage"))


def _page_context(f: queries.QueueFilter, *, fragment: bool) -> dict:
    """What the full page needs around the list: the counts at a glance for the filter's platform and
    project, and the filter choices. A fragment gets the counts only when its platform or project differs
    from those of the page it lands on (swapped in out of band), so searching and paging add no statement."""
    scope = glance_scope(f)
    if fragment:
        shown = shown_scope()
        if shown in (None, scope):
            return {}
        return {"counts": counts.stage_counts(**scope), "scope": scope, "glance_oob": True}
    return {
        "counts": counts.stage_counts(**scope),
        "scope": scope,
        "choices": queries.filter_choices(),
        "page_sizes": queries.PAGE_SIZES,
        "status_filters": queries.STATUS_FILTERS,
        "sorts": sla.SORTS,
    }


def glance_scope(f: queries.QueueFilter) -> dict[str, str]:
    """What the counts at a glance follow: the filter's platform and project (the others do not narrow them)."""
    return {k: v for k, v in (("platform", f.platform), ("project", f.project)) if v}


def shown_scope() -> dict[str, str] | None:
    """The platform and project of the page an htmx request comes from (HX-Current-URL); None when unknown."""
    current = request.headers.get("HX-Current-URL")
    if not current:
        return None
    args = parse_qs(urlsplit(current).query)
    return {k: args[k][0].strip() for k in ("platform", "project") if args.get(k) and args[k][0].strip()}


@bp.get("/queue/next")
@login_required
def start():
    """Open the first stage the reviewer can act on under their queue filter."""
    found = next_waiting()
    if found is None:
        return back_to_queue("Nothing is waiting that you can act on in this queue.")
    return redirect(url_for("review.stage", order_id=found[0], stage=found[1]), 303)


def recent_undo() -> dict | None:
    """The decision made just before this page (by "decide and next"), while it can still be undone: offered
    on the next stage, or on the queue when nothing else was waiting."""
    recent = session.pop(RECENT_KEY, None)
    if not isinstance(recent, list) or len(recent) != 2:
        return None
    found = undoable(str(recent[0]), str(recent[1]), current_user.email)
    if found is None:
        return None
    decision, left = found
    return {"order_id": decision.order_id, "stage": decision.stage, "outcome": decision.outcome,
            "seconds_left": left}


# --- the filter the reviewer came from -----------------------------------------------------------------

def remember_queue_filter(params: dict) -> None:
    """So "next waiting stage" follows the filter the reviewer came from."""
    if session.get(QUEUE_FILTER_KEY) != params:
        session[QUEUE_FILTER_KEY] = params


def remembered_filter() -> dict:
    return session.get(QUEUE_FILTER_KEY) or {}


def queue_filter_clauses() -> list:
    try:
        f = queries.parse_queue_filter(MultiDict(remembered_filter()))
    except BadQuery:
        return []
    return filter_clauses(f)


def filter_clauses(f: queries.QueueFilter) -> list:
    """The filter's conditions on ReviewStage and Order (its stage, platform, project and search)."""
    clauses = []
    if f.stage:
        clauses.append(ReviewStage.stage_name == f.stage)
    if f.platform:
        clauses.append(Order.platform == f.platform)
    if f.project:
        clauses.append(Order.project == f.project)
    if f.q:
        clauses.append(queries.search_filter(f.q))
    if f.checks == "failing":
        clauses.append(check_state_of(ReviewStage.order_id, ReviewStage.stage_name) == "failing")
    return clauses


def next_waiting(current: tuple[str, str] | None = None, direction: str = "next") -> tuple[str, str] | None:
    """The (order_id, stage) the reviewer can act on after ``current`` in their queue, or None."""
    return next_stage.next_waiting(current_user.email, current=current, filters=queue_filter_clauses(),
                                   sort=remembered_filter().get("sort", "age"), direction=direction)


def back_to_queue(message: str):
    flash(message, "success")
    return redirect(url_for("queue.index", **remembered_filter()), 303)
