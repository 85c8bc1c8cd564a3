"""Migrations go up and down cleanly, and the models agree with them."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, text

from lhb_review import create_app
from lhb_review.extensions import db
from tests.conftest import test_env


def tables(url: str, schema: str = "public") -> set[str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        names = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": schema}).scalars()
        result = set(names)
    engine.dispose()
    return result


def test_autogenerate_finds_no_difference_between_models_and_migrations(app):
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == []


def test_upgrade_creates_everything_and_downgrade_base_removes_it(scratch_database, tmp_path):
    url = scratch_database("updown")
    application = create_app({"TESTING": True}, env=test_env(url, tmp_path))
    with application.app_context():
        upgrade()
        assert {"orders", "review_stages", "approvals", "audit_logs", "error_logs", "users"} <= tables(url)
        downgrade(revision="base")
        assert tables(url) <= {"alembic_version"}
        with db.engine.connect() as conn:
            functions = conn.execute(text(
                "SELECT count(*) FROM pg_proc WHERE proname = 'update_updated_at_column'")).scalar()
        assert functions == 0
        upgrade()
        assert "orders" in tables(url)
        db.engine.dispose()
