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


def test_the_stage_order_migration_lists_orders_that_break_the_order_and_changes_nothing(scratch_database, tmp_path,
                                                                                        capfd):
    import pytest

    url = scratch_database("stageorder")
    application = create_app({"TESTING": True}, env=test_env(url, tmp_path))
    with application.app_context():
        upgrade(revision="0007_user_session_token")
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO orders (order_id, platform, project, customer_first_name, customer_last_name, "
                "customer_email, order_date, status) VALUES ('ORD-OUT', 'shopify', 'bedtime-hero', 'A', 'B', "
                "'a@example.com', now(), 'in_review')"))
            conn.execute(text(
                "INSERT INTO review_stages (order_id, stage_name, status) VALUES "
                "('ORD-OUT', 'preBria', 'pending'), ('ORD-OUT', 'postBria', 'approved')"))
        with pytest.raises(SystemExit):  # Flask-Migrate logs the migration's error and exits non-zero
            upgrade()
        assert "order ORD-OUT: postBria is approved while preBria is not" in capfd.readouterr().err
        with db.engine.connect() as conn:
            statuses = dict(conn.execute(text(
                "SELECT stage_name, status FROM review_stages WHERE order_id = 'ORD-OUT'")).all())
            head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        assert statuses == {"preBria": "pending", "postBria": "approved"}
        assert head == "0007_user_session_token"
        db.engine.dispose()


def test_the_counts_migration_seeds_one_summed_row_per_combination_and_downgrade_removes_it(scratch_database,
                                                                                           tmp_path):
    url = scratch_database("counts")
    application = create_app({"TESTING": True}, env=test_env(url, tmp_path))
    with application.app_context():
        upgrade(revision="0012_check_runs")
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO orders (order_id, platform, project, customer_first_name, customer_last_name, "
                "customer_email, order_date, status) SELECT 'ORD-' || n, CASE WHEN n % 3 = 0 THEN 'amazon' "
                "ELSE 'shopify' END, 'bedtime-hero', 'A', 'B', 'a@example.com', now(), 'in_review' "
                "FROM generate_series(1, 30) n"))
            conn.execute(text(
                "INSERT INTO review_stages (order_id, stage_name, status) SELECT 'ORD-' || n, 'preBria', "
                "CASE WHEN n % 2 = 0 THEN 'approved' ELSE 'pending' END FROM generate_series(1, 30) n"))
            conn.execute(text(
                "INSERT INTO review_stages (order_id, stage_name, status) SELECT 'ORD-' || n, 'postBria', "
                "'in_review' FROM generate_series(2, 30, 2) n"))
        upgrade()
        with db.engine.connect() as conn:
            seeded = sorted(map(tuple, conn.execute(text(
                "SELECT stage_name, status, platform, project, n FROM stage_count_deltas"))))
        assert seeded == [
            ("postBria", "in_review", "amazon", "bedtime-hero", 5),
            ("postBria", "in_review", "shopify", "bedtime-hero", 10),
            ("preBria", "approved", "amazon", "bedtime-hero", 5),
            ("preBria", "approved", "shopify", "bedtime-hero", 10),
            ("preBria", "pending", "amazon", "bedtime-hero", 5),
            ("preBria", "pending", "shopify", "bedtime-hero", 10),
        ]

        downgrade(revision="0012_check_runs")
        assert "stage_count_deltas" not in tables(url)
        with db.engine.begin() as conn:
            left = conn.execute(text(
                "SELECT (SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%counts%'), "
                "(SELECT count(*) FROM pg_proc WHERE proname LIKE 'stage_counts%')")).one()
            assert tuple(left) == (0, 0)
            conn.execute(text("UPDATE review_stages SET status = 'pending' WHERE stage_name = 'postBria'"))
            conn.execute(text("UPDATE orders SET platform = 'etsy'"))
            conn.execute(text("DELETE FROM orders WHERE order_id = 'ORD-1'"))
        db.engine.dispose()
