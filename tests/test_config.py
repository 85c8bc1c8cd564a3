"""Configuration from the environment: DATABASE_URL, the seed's DB_* variables, SECRET_KEY, .env files."""
from __future__ import annotations

import pytest
from flask_migrate import upgrade
from sqlalchemy import text

from lhb_review import create_app, load_env_files
from lhb_review.config import ConfigError, DatabaseSettings, build_config, normalise_url
from lhb_review.extensions import db
from tests.conftest import test_env

DB_VARS = dict(DB_HOST="db.internal", DB_PORT="6543", DB_NAME="little_hero_books", DB_USER="lhb_user",
               DB_PASSWORD="s3cret/pw")


@pytest.mark.parametrize("given", [
    "postgresql://u:p@h:5432/d",
    "postgres://u:p@h:5432/d",
    "postgresql+psycopg2://u:p@h:5432/d",
])
def test_plain_urls_run_on_psycopg2(given):
    assert normalise_url(given) == "postgresql+psycopg2://u:p@h:5432/d"


def test_non_postgres_urls_are_refused():
    with pytest.raises(ConfigError):
        normalise_url("mysql://u@h/d")


def test_database_url_wins_over_db_variables():
    settings = DatabaseSettings.from_env({"DATABASE_URL": "postgresql://a@b/c", **DB_VARS})
    assert settings.url == "postgresql+psycopg2://a@b/c"


def test_db_variables_build_the_url():
    settings = DatabaseSettings.from_env(DB_VARS)
    assert settings.url == "postgresql+psycopg2://lhb_user:s3cret%2Fpw@db.internal:6543/little_hero_books"


def test_nothing_configured_means_embedded():
    assert DatabaseSettings.from_env({}).embedded


@pytest.mark.parametrize("value, sslmode", [("true", "require"), ("false", "disable"), (None, None)])
def test_db_ssl_sets_sslmode(value, sslmode):
    env = dict(DB_VARS, **({"DB_SSL": value} if value is not None else {}))
    args = DatabaseSettings.from_env(env).engine_options()["connect_args"]
    assert args.get("sslmode") == sslmode


def test_pool_variables_map_onto_the_engine_pool():
    opts = DatabaseSettings.from_env(dict(DB_VARS, DB_POOL_MIN="3", DB_POOL_MAX="12",
                                          DB_POOL_IDLE_TIMEOUT="45000")).engine_options()
    assert (opts["pool_size"], opts["max_overflow"], opts["pool_recycle"]) == (3, 9, 45)
    assert opts["pool_pre_ping"] is True


def test_pool_defaults_follow_the_seed():
    opts = DatabaseSettings.from_env(DB_VARS).engine_options()
    assert (opts["pool_size"], opts["max_overflow"], opts["pool_recycle"]) == (2, 8, 30)


@pytest.mark.parametrize("env", [
    dict(DB_VARS, DB_POOL_MIN="5", DB_POOL_MAX="2"),
    dict(DB_VARS, DB_POOL_MAX="lots"),
    dict(DB_VARS, DB_SCHEMA="bad schema;"),
    dict(DB_VARS, DB_PARALLEL_WORKERS="-1"),
    dict(DB_VARS, DB_PARALLEL_WORKERS="many"),
])
def test_bad_pool_or_schema_values_are_clear_errors(env):
    with pytest.raises(ConfigError):
        DatabaseSettings.from_env(env)


def test_pool_variables_reach_the_live_engine(database_url, tmp_path):
    application = create_app(env=test_env(database_url, tmp_path, DB_POOL_MIN=1, DB_POOL_MAX=4))
    with application.app_context():
        assert db.engine.pool.size() == 1
        assert db.engine.pool._max_overflow == 3
        db.engine.dispose()


def parallel_workers_of(database_url, tmp_path, **env) -> str:
    application = create_app(env=test_env(database_url, tmp_path, **env))
    with application.app_context():
        value = db.session.execute(text("SHOW max_parallel_workers_per_gather")).scalar()
        db.session.remove()
        db.engine.dispose()
    return value


def test_the_app_s_sessions_plan_no_parallel_workers_unless_told(database_url, tmp_path):
    import psycopg2
    from sqlalchemy.engine import make_url

    plain = psycopg2.connect(make_url(database_url).set(drivername="postgresql").render_as_string(False))
    with plain.cursor() as cur:
        cur.execute("SHOW max_parallel_workers_per_gather")
        server_default = cur.fetchone()[0]
    plain.close()
    assert parallel_workers_of(database_url, tmp_path) == "0"
    assert parallel_workers_of(database_url, tmp_path, DB_PARALLEL_WORKERS="1") == "1"
    assert parallel_workers_of(database_url, tmp_path, DB_PARALLEL_WORKERS="server") == server_default


def test_db_schema_puts_tables_and_migration_history_in_that_schema(scratch_database, tmp_path):
    url = scratch_database("schema")
    application = create_app(env=test_env(url, tmp_path, DB_SCHEMA="review"))
    with application.app_context():
        upgrade()
        with db.engine.connect() as conn:
            where = dict(conn.execute(text(
                "SELECT tablename, schemaname FROM pg_tables WHERE tablename IN ('orders', 'alembic_version')"
            )).all())
            assert where == {"orders": "review", "alembic_version": "review"}
        db.engine.dispose()


@pytest.mark.parametrize("app_env", ["production", "staging"])
def test_missing_secret_key_stops_start_up_outside_development(app_env):
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        build_config({"APP_ENV": app_env, "DATABASE_URL": "postgresql://u@h/d"})


def test_development_runs_without_a_secret_key():
    assert build_config({"DATABASE_URL": "postgresql://u@h/d"})["SECRET_KEY"]


def test_env_files_are_read_and_env_local_wins(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("DB_NAME=from_env\nDB_USER=env_user\n")
    (tmp_path / ".env.local").write_text("DB_NAME=from_env_local\n")
    monkeypatch.delenv("DB_NAME", raising=False)
    monkeypatch.delenv("DB_USER", raising=False)
    load_env_files(tmp_path)
    import os

    assert os.environ["DB_NAME"] == "from_env_local"
    assert os.environ["DB_USER"] == "env_user"
