"""Settings from the environment: DATABASE_URL or the seed's DB_* variables, and the app's own knobs."""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import URL, make_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE = PROJECT_ROOT / "instance"
DRIVER = "postgresql+psycopg2"
TRUE_WORDS = {"1", "true", "yes", "on"}


class ConfigError(RuntimeError):
    """The environment asks for something the app cannot run with."""


def env_flag(env: dict, name: str, default: bool = False) -> bool:
    value = env.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in TRUE_WORDS


def env_list(env: dict, name: str, default: str) -> tuple[str, ...]:
    """A comma-separated setting as a tuple of its non-empty, stripped items."""
    raw = env.get(name)
    return tuple(item.strip() for item in (default if raw is None else raw).split(",") if item.strip())


def env_int(env: dict, name: str, default: int) -> int:
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, not {value!r}") from exc


def normalise_url(url: str) -> str:
    """Accept the plain URLs people paste and run them on the driver the project ships (psycopg2).

    SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3, which is not installed.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(f"lhb-review runs on PostgreSQL only; got a {parsed.get_backend_name()!r} URL")
    return parsed.set(drivername=DRIVER).render_as_string(hide_password=False)


@dataclass(frozen=True)
class DatabaseSettings:
    """Where the database is and how the engine's pool behaves."""

    url: str | None
    schema: str | None
    ssl: bool | None
    pool_min: int
    pool_max: int
    pool_idle_timeout_ms: int
    statement_timeout_ms: int
    lock_timeout_ms: int
    parallel_workers: int | None = 0  # max_parallel_workers_per_gather for lhb-review's sessions (None: server's)

    @property
    def embedded(self) -> bool:
        return self.url is None

    @classmethod
    def from_env(cls, env: dict) -> "DatabaseSettings":
        url = env.get("DATABASE_URL") or None
        if url is None and (env.get("DB_HOST") or env.get("DB_NAME")):
            url = URL.create(
                DRIVER,
                username=env.get("DB_USER") or None,
                password=env.get("DB_PASSWORD") or None,
                host=env.get("DB_HOST") or "localhost",
                port=env_int(env, "DB_PORT", 5432),
                database=env.get("DB_NAME") or "little_hero_books",
            ).render_as_string(hide_password=False)
        ssl_raw = env.get("DB_SSL")
        pool_min = env_int(env, "DB_POOL_MIN", 2)
        pool_max = env_int(env, "DB_POOL_MAX", 10)
        if pool_min < 0 or pool_max < 1 or pool_min > pool_max:
            raise ConfigError(f"DB_POOL_MIN ({pool_min}) must be between 0 and DB_POOL_MAX ({pool_max})")
        parallel = None if env.get("DB_PARALLEL_WORKERS") == "server" else env_int(env, "DB_PARALLEL_WORKERS", 0)
        if parallel is not None and parallel < 0:
            raise ConfigError(f"DB_PARALLEL_WORKERS must be 0 or more, or 'server', not {parallel}")
        schema = env.get("DB_SCHEMA") or None
        if schema is not None and not schema.replace("_", "").isalnum():
            raise ConfigError(f"DB_SCHEMA must be a plain identifier, not {schema!r}")
        return cls(
            url=normalise_url(url) if url else None,
            schema=schema,
            ssl=None if ssl_raw in (None, "") else env_flag(env, "DB_SSL"),
            pool_min=pool_min,
            pool_max=pool_max,
            pool_idle_timeout_ms=env_int(env, "DB_POOL_IDLE_TIMEOUT", 30000),
            statement_timeout_ms=env_int(env, "DB_STATEMENT_TIMEOUT", 15000),
            lock_timeout_ms=env_int(env, "DB_LOCK_TIMEOUT", 5000),
            parallel_workers=parallel,
        )

    def engine_options(self) -> dict:
        """The seed's pool settings mapped onto SQLAlchemy's QueuePool.

        DB_POOL_MIN connections are kept open; up to DB_POOL_MAX in all (the rest are overflow, closed
        when returned). SQLAlchemy has no idle timer, so DB_POOL_IDLE_TIMEOUT becomes pool_recycle:
        a connection older than that is replaced on its next checkout.
        """
        connect_args: dict = {"application_name": "lhb-review", "connect_timeout": 5}
        options = [f"-c statement_timeout={self.statement_timeout_ms}", f"-c lock_timeout={self.lock_timeout_ms}"]
        if self.parallel_workers is not None:
            # The pages' queries are short index walks under a LIMIT: a parallel plan's worker start-up costs
            # more than it saves, and on a small server takes the cores other requests are waiting for.
            options.append(f"-c max_parallel_workers_per_gather={self.parallel_workers}")
        if self.schema:
            options.append(f"-c search_path={self.schema}")
        connect_args["options"] = " ".join(options)
        if self.ssl is True:
            connect_args["sslmode"] = "require"
        elif self.ssl is False:
            connect_args["sslmode"] = "disable"
        return {
            # A failing statement's parameters (webhook secrets, customers' names) never reach an error
            # message, the error log or the application log.
            "hide_parameters": True,
            "pool_pre_ping": True,
            "pool_size": max(self.pool_min, 1),
            "max_overflow": self.pool_max - max(self.pool_min, 1),
            "pool_recycle": max(self.pool_idle_timeout_ms // 1000, 1),
            "pool_timeout": 10,
            "connect_args": connect_args,
        }


def redact(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def build_config(env: dict | None = None) -> dict:
    """Everything Flask needs, read from the environment (after .env and .env.local are loaded)."""
    env = dict(os.environ if env is None else env)
    app_env = env.get("APP_ENV") or env.get("FLASK_ENV") or "development"
    secret = env.get("SECRET_KEY")
    if not secret:
        if app_env not in ("development", "test"):
            raise ConfigError(
                "SECRET_KEY is not set. Outside development lhb-review refuses to start without one: "
                "set SECRET_KEY to a long random string (python -c 'import secrets; print(secrets.token_hex(32))')."
            )
        secret = "dev-only-secret-key-not-for-production"
    database = DatabaseSettings.from_env(env)
    instance = Path(env.get("INSTANCE_PATH") or DEFAULT_INSTANCE)
    https = env_flag(env, "HTTPS", False)
    return {
        "APP_ENV": app_env,
        "SECRET_KEY": secret,
        "DATABASE": database,
        "INSTANCE_DIR": instance,
        "ASSET_DIR": Path(env.get("ASSET_DIR") or instance / "assets"),
        "BACKUP_DIR": Path(env.get("BACKUP_DIR") or instance / "backups"),
        "TRUST_PROXY_HOPS": env_int(env, "TRUST_PROXY_HOPS", 0),
        "HTTPS": https,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": https,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": https,
        "REMEMBER_COOKIE_DURATION": timedelta(days=env_int(env, "REMEMBER_DAYS", 14)),
        "WTF_CSRF_TIME_LIMIT": env_int(env, "CSRF_TIME_LIMIT", 8 * 3600),
        "MAX_CONTENT_LENGTH": env_int(env, "MAX_UPLOAD_BYTES", 20 * 1024 * 1024),
        "RATELIMIT_STORAGE_URI": env.get("REDIS_URL") or "memory://",
        "RATELIMIT_KEY_PREFIX": env.get("RATELIMIT_KEY_PREFIX") or "lhb-review",
        # A Redis outage must not lock everyone out: count in memory until it is back.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        "LOGIN_LIMIT_PER_ACCOUNT": env.get("LOGIN_LIMIT_PER_ACCOUNT") or "10 per 15 minutes",
        "LOGIN_LIMIT_PER_IP": env.get("LOGIN_LIMIT_PER_IP") or "60 per 15 minutes",
        "QUEUE_PLATFORMS": env_list(env, "QUEUE_PLATFORMS", "shopify,amazon"),
        "QUEUE_PROJECTS": env_list(env, "QUEUE_PROJECTS", "my-first-adventure,bedtime-hero,space-explorer,dino-friends"),
        "LOG_FORMAT": env.get("LOG_FORMAT", "text"),
        "LOG_LEVEL": env.get("LOG_LEVEL", "INFO"),
        "SLOW_QUERY_MS": env_int(env, "SLOW_QUERY_MS", 500),
        "PG_BIN_DIR": env.get("PG_BIN_DIR") or None,
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        **pipeline_settings(env),
        **review_flow_settings(env),
        **check_settings(env),
        **replica_settings(env),
    }


def replica_settings(env: dict) -> dict:
    """Read replicas: DATABASE_REPLICA_URLS, or DB_REPLICA_HOSTS (host[:port],...) with the DB_* login."""
    urls = list(env_list(env, "DATABASE_REPLICA_URLS", ""))
    if not urls:
        for item in env_list(env, "DB_REPLICA_HOSTS", ""):
            host, _, port = item.partition(":")
            try:
                port_number = int(port or env.get("DB_PORT") or 5432)
            except ValueError as exc:
                raise ConfigError(f"DB_REPLICA_HOSTS: {item!r} is not host or host:port") from exc
            urls.append(URL.create(
                DRIVER, username=env.get("DB_USER") or None, password=env.get("DB_PASSWORD") or None,
                host=host, port=port_number, database=env.get("DB_NAME") or "little_hero_books",
            ).render_as_string(hide_password=False))
    max_lag = env_int(env, "REPLICA_MAX_LAG_MS", 1000)
    cooldown = env_int(env, "REPLICA_COOLDOWN_SECONDS", 30)
    connect_timeout = env_int(env, "REPLICA_CONNECT_TIMEOUT_SECONDS", 2)
    if max_lag < 0 or cooldown < 0 or connect_timeout < 1:
        raise ConfigError("REPLICA_MAX_LAG_MS and REPLICA_COOLDOWN_SECONDS must be at least 0, "
                          "REPLICA_CONNECT_TIMEOUT_SECONDS at least 1")
    return {
        "DATABASE_REPLICA_URLS": tuple(normalise_url(url) for url in urls),
        "REPLICA_MAX_LAG_MS": max_lag,
        "REPLICA_COOLDOWN_SECONDS": cooldown,
        "REPLICA_CONNECT_TIMEOUT_SECONDS": connect_timeout,
    }


def review_flow_settings(env: dict) -> dict:
    """Claims, undo, service levels, uploads and asset storage."""
    claim_ttl = env_int(env, "CLAIM_TTL_SECONDS", 300)
    heartbeat = env_int(env, "CLAIM_HEARTBEAT_SECONDS", max(claim_ttl // 3, 5))
    if claim_ttl < 10 or not 1 <= heartbeat < claim_ttl:
        raise ConfigError("CLAIM_TTL_SECONDS must be at least 10 and CLAIM_HEARTBEAT_SECONDS between 1 and it")
    warn, breach = env_int(env, "SLA_WARN_HOURS", 12), env_int(env, "SLA_BREACH_HOURS", 24)
    if not 0 < warn <= breach:
        raise ConfigError(f"SLA_WARN_HOURS ({warn}) must be positive and at most SLA_BREACH_HOURS ({breach})")
    backend = (env.get("STORAGE_BACKEND") or "local").strip().lower()
    if backend not in ("local", "s3"):
        raise ConfigError(f"STORAGE_BACKEND must be local or s3, not {backend!r}")
    s3_required = ("S3_ENDPOINT_URL", "S3_BUCKET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY")
    missing = [name for name in s3_required if backend == "s3" and not env.get(name)]
    if missing:
        raise ConfigError(f"STORAGE_BACKEND=s3 needs {', '.join(missing)}")
    return {
        "CLAIM_TTL_SECONDS": claim_ttl,
        "CLAIM_HEARTBEAT_SECONDS": heartbeat,
        "CLAIM_PRESENCE_SECONDS": env_int(env, "CLAIM_PRESENCE_SECONDS", 2),
        "UNDO_WINDOW_SECONDS": env_int(env, "UNDO_WINDOW_SECONDS", 120),
        "SLA_WARN_HOURS": warn,
        "SLA_BREACH_HOURS": breach,
        "MAX_ASSET_BYTES": env_int(env, "MAX_ASSET_BYTES", 20 * 1024 * 1024),
        "MAX_IMAGE_PIXELS": env_int(env, "MAX_IMAGE_PIXELS", 40_000_000),
        "STORAGE_BACKEND": backend,
        "S3_ENDPOINT_URL": env.get("S3_ENDPOINT_URL") or None,
        "S3_BUCKET": env.get("S3_BUCKET") or None,
        "S3_ACCESS_KEY_ID": env.get("S3_ACCESS_KEY_ID") or None,
        "S3_SECRET_ACCESS_KEY": env.get("S3_SECRET_ACCESS_KEY") or None,
        "S3_REGION": env.get("S3_REGION") or "auto",
        "S3_PREFIX": (env.get("S3_PREFIX") or "").strip("/"),
        "S3_PUBLIC_URL": (env.get("S3_PUBLIC_URL") or "").rstrip("/") or None,
    }


def allowed_networks(env: dict) -> tuple:
    """WEBHOOK_ALLOWED_NETWORKS: internal receivers webhooks may call anyway, as comma-separated CIDRs."""
    from lhb_review.core.egress import parse_networks

    try:
        return parse_networks(env.get("WEBHOOK_ALLOWED_NETWORKS") or "")
    except ValueError as exc:
        raise ConfigError(f"WEBHOOK_ALLOWED_NETWORKS: {exc}") from exc
def check_settings(env: dict) -> dict:
    """Machine checks: their thresholds, and the limits each check job runs under."""
    def number(name: str, default: float, *, minimum: float = 0.0) -> float:
        raw = env.get(name)
        try:
            value = float(raw) if raw not in (None, "") else default
        except ValueError as exc:
            raise ConfigError(f"{name} must be a number, not {raw!r}") from exc
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum:g}")
        return value

    warn_dpi, fail_dpi = number("CHECK_WARN_DPI", 300, minimum=1), number("CHECK_FAIL_DPI", 150, minimum=1)
    if fail_dpi > warn_dpi:
        raise ConfigError(f"CHECK_FAIL_DPI ({fail_dpi:g}) must be at most CHECK_WARN_DPI ({warn_dpi:g})")
    aspect = env.get("CHECK_ASPECT_RATIO") or None
    if aspect is not None:
        try:
            width, height = (float(part) for part in aspect.split(":")) if ":" in aspect else (float(aspect), 1.0)
            aspect = width / height
        except (ValueError, ZeroDivisionError) as exc:
            raise ConfigError(f"CHECK_ASPECT_RATIO must be like 1:1 or 0.75, not {aspect!r}") from exc
    return {
        "CHECK_MIN_IMAGE_PX": env_int(env, "CHECK_MIN_IMAGE_PX", 1024),
        "CHECK_COLOR_MODES": env_list(env, "CHECK_COLOR_MODES", "RGB,RGBA"),
        "CHECK_ASPECT_RATIO": aspect,
        "CHECK_WARN_DPI": warn_dpi,
        "CHECK_FAIL_DPI": fail_dpi,
        "CHECK_BLEED_IN": number("CHECK_BLEED_IN", 0.125),
        "CHECK_SAFE_ZONE_IN": number("CHECK_SAFE_ZONE_IN", 0.25),
        "CHECK_PAGES_PER_ILLUSTRATION": int(number("CHECK_PAGES_PER_ILLUSTRATION", 2, minimum=1)),
        "CHECK_COVER_PAGES": env_int(env, "CHECK_COVER_PAGES", 0),
        "CHECK_TIME_LIMIT_SECONDS": number("CHECK_TIME_LIMIT_SECONDS", 60, minimum=0.1),
        "CHECK_MEMORY_LIMIT_MB": int(number("CHECK_MEMORY_LIMIT_MB", 768, minimum=128)),
        "CHECK_LEASE_SECONDS": number("CHECK_LEASE_SECONDS", 900, minimum=1),
        "CHECK_MAX_ATTEMPTS": int(number("CHECK_MAX_ATTEMPTS", 3, minimum=1)),
        "CHECK_POLL_SECONDS": number("CHECK_POLL_SECONDS", 2, minimum=0.1),
    }


def pipeline_settings(env: dict) -> dict:
    """The pipeline API's body limit and the webhook worker's knobs."""
    def seconds(name: str, default: float) -> float:
        try:
            value = float(env.get(name) or default)
        except ValueError as exc:
            raise ConfigError(f"{name} must be a number of seconds, not {env.get(name)!r}") from exc
        if value <= 0:
            raise ConfigError(f"{name} must be more than 0")
        return value

    return {
        "API_MAX_BODY_BYTES": env_int(env, "API_MAX_BODY_BYTES", 1024 * 1024),
        "WEBHOOK_SECRET": env.get("WEBHOOK_SECRET") or None,
        "WEBHOOK_ALLOWED_NETWORKS": allowed_networks(env),
        "WEBHOOK_TIMEOUT_SECONDS": seconds("WEBHOOK_TIMEOUT_SECONDS", 10),
        "WEBHOOK_MAX_ATTEMPTS": env_int(env, "WEBHOOK_MAX_ATTEMPTS", 8),
        "WEBHOOK_BACKOFF_BASE_SECONDS": seconds("WEBHOOK_BACKOFF_BASE_SECONDS", 30),
        "WEBHOOK_BACKOFF_CAP_SECONDS": seconds("WEBHOOK_BACKOFF_CAP_SECONDS", 3600),
        "WEBHOOK_LEASE_SECONDS": seconds("WEBHOOK_LEASE_SECONDS", 120),
        "WEBHOOK_POLL_SECONDS": seconds("WEBHOOK_POLL_SECONDS", 2),
        # The deprecated X-LHB-* headers, sent beside the Standard Webhooks ones for the transition.
        "WEBHOOK_LEGACY_HEADERS": (env.get("WEBHOOK_LEGACY_HEADERS") or "true").strip().lower() in TRUE_WORDS,
    }


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def url_for_database(url: str, database: str) -> str:
    """The same server URL pointing at another database (tests, backups, bootstrap)."""
    return make_url(url).set(database=database).render_as_string(hide_password=False)
