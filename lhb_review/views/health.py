"""Probes and metrics for the platform: /healthz, /readyz, /metrics (no login; restrict at the proxy)."""
from __future__ import annotations

import logging
from functools import lru_cache

from flask import Blueprint, Response, current_app, jsonify

from lhb_review.config import PROJECT_ROOT
from lhb_review.core.storage import StorageError, get_storage
from lhb_review.extensions import csrf, db

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def migration_heads() -> tuple[str, ...]:
    """The revisions the code expects (the heads of migrations/versions)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    return tuple(sorted(ScriptDirectory.from_config(config).get_heads()))


def database_revisions(conn, schema: str | None) -> tuple[str, ...]:
    from alembic.runtime.migration import MigrationContext

    opts = {"version_table_schema": schema} if schema else {}
    return tuple(sorted(MigrationContext.configure(conn, opts=opts).get_current_heads()))


def readiness() -> tuple[bool, dict]:
    """(ready, report): the database answers and its schema is at the code's migration head."""
    expected = migration_heads()
    try:
        with db.engine.connect() as conn:
            current = database_revisions(conn, current_app.config.get("DB_SCHEMA"))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the database means "not ready"
        log.warning("Readiness: database unreachable: %s", exc.__class__.__name__)
        return False, {"status": "unavailable", "database": "unreachable", "error": exc.__class__.__name__,
                       "migrations": {"expected": list(expected)}}
    at_head = current == expected
    report = {
        "status": "ready" if at_head else "migrations_pending",
        "database": "ok",
        "migrations": {"current": list(current), "expected": list(expected), "at_head": at_head},
    }
    storage_ok = True
    if current_app.config.get("STORAGE_BACKEND") == "s3":
        # Assets live in the bucket: without it no stage can be reviewed, so it is part of readiness.
        try:
            get_storage().check()
            report["storage"] = "ok"
        except StorageError as exc:
            log.warning("Readiness: object store unavailable: %s", exc)
            storage_ok = False
            report["storage"] = "forbidden" if exc.status == 403 else "unreachable"
            if at_head:
                report["status"] = "unavailable"
    return at_head and storage_ok, report


@bp.get("/healthz")
def healthz():
    """The process is up and answering; says nothing about the database (that is /readyz)."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    ready, report = readiness()
    response = jsonify(report)
    response.status_code = 200 if ready else 503
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/metrics")
def metrics():
    from lhb_review.web.metrics import render

    body, content_type = render(current_app._get_current_object())
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})


csrf.exempt(bp)
