"""Asset files for signed-in reviewers, served from the configured storage."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, send_from_directory, url_for
from flask_login import login_required

from lhb_review.core.storage import InvalidKey, check_key, get_storage

bp = Blueprint("assets", __name__)


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico whatever the page says; they get the page's icon."""
    return redirect(url_for("static", filename="favicon.svg"), 301)


@bp.get("/assets/<path:key>")
@login_required
def file(key: str):
    try:
        check_key(key)
    except InvalidKey:
        abort(404)
    # An object store hands the browser a short-lived URL of its own; local files are sent from here.
    url = get_storage().url(key)
    if url:
        return redirect(url, 302)
    return send_from_directory(current_app.config["ASSET_DIR"], key, max_age=3600)
