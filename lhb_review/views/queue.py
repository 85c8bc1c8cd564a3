"""The review queue: stages waiting for a reviewer, filtered and paged by keyset, with counts at a glance."""
from __future__ import annotations

from flask import Blueprint, render_template, request, url_for
from flask_login import login_required

from ..htmx import wants_fragment
from ..services import queries, sla
from ..services.queries import BadQuery
from . import flow

bp = Blueprint("queue", __name__)


@bp.get("/")
@bp.get("/queue")
@login_required
def index():
    template = "queue/_rows.html" if wants_fragment() else "queue/index.html"
    try:
        queue_filter = queries.parse_queue_filter(request.args)
    except BadQuery as exc:
        return render_template(template, error=exc.message, page=None, filter=queries.QueueFilter(),
                               **_page_context(fragment=wants_fragment())), exc.status
    page = queries.queue_page(queue_filter)
    flow.remember_queue_filter(queue_filter.params(cursor=None, size=queries.DEFAULT_PAGE_SIZE))
    body = render_template(template, page=page, filter=queue_filter, error=None,
                           **_page_context(fragment=wants_fragment()))
    # The address bar gets the short form of the filter (no empty fields, no defaults), so it is worth sharing.
    headers = {"HX-Push-Url": url_for("queue.index", **queue_filter.params())} if wants_fragment() else {}
    return body, 200, headers


def _page_context(*, fragment: bool) -> dict:
    """What the full page needs around the list: capped counts and the filter choices (not for fragments)."""
    if fragment:
        return {}
    return {
        "counts": queries.stage_counts(),
        "choices": queries.filter_choices(),
        "page_sizes": queries.PAGE_SIZES,
        "status_filters": queries.STATUS_FILTERS,
        "sorts": sla.SORTS,
    }
