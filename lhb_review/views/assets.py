"""Asset files for signed-in reviewers, served from the configured storage."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, send_from_directory
from flask_login import login_required

bp = Blueprint("assets", __name__)


@bp.get("/assets/<path:key>")
@login_required
def file(key: str):
    if ".." in key.split("/") or key.startswith("/"):
        abort(404)
    return send_from_directory(current_app.config["ASSET_DIR"], key, max_age=3600)
