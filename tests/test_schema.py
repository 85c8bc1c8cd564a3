"""The migrated schema reproduces the customer's schema (database-setup.md, Step 2) property for property."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from lhb_review.extensions import db
from tests.factories import make_order, make_stage

SEED_SQL = Path(__file__).parent / "data" / "seed_schema.sql"
SEED_TABLES = ("orders", "review_stages", "approvals", "audit_logs", "error_logs")

COLUMNS = """
SELECT table_name, column_name, ordinal_position, data_type, character_maximum_length, is_nullable,
       column_default
FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = ANY(:tables)
ORDER BY table_name, ordinal_position
"""
CONSTRAINTS = """
SELECT rel.relname, con.conname, con.contype, pg_get_constraintdef(con.oid)
FROM pg_constraint con JOIN pg_class rel ON rel.oid = con.conrelid
WHERE rel.relname = ANY(:tables) AND rel.relnamespace = current_schema()::regnamespace
"""
INDEXES = """
SELECT tablename, indexname, indexdef FROM pg_indexes
WHERE schemaname = current_schema() AND tablename = ANY(:tables)
"""
TRIGGERS = """
SELECT event_object_table, trigger_name, action_timing, event_manipulation, action_orientation, action_statement
FROM information_schema.triggers WHERE trigger_schema = current_schema() AND event_object_table = ANY(:tables)
"""
FUNCTION = "SELECT regexp_replace(prosrc, '\\s+', ' ', 'g') FROM pg_proc WHERE proname = 'update_updated_at_column'"


def catalog(conn) -> dict[str, set]:
    params = {"tables": list(SEED_TABLES)}
    return {
        "columns": set(map(tuple, conn.execute(text(COLUMNS), params))),
        "constraints": set(map(tuple, conn.execute(text(CONSTRAINTS), params))),
        "indexes": set(map(tuple, conn.execute(text(INDEXES), params))),
        "triggers": set(map(tuple, conn.execute(text(TRIGGERS), params))),
        "function": set(map(tuple, conn.execute(text(FUNCTION)))),
    }


@pytest.fixture(scope="module")
def seed_catalog(scratch_database):
    """The catalog of a database built from the customer's own SQL."""
    engine = create_engine(scratch_database("seedsql"))
    with engine.begin() as conn:
        conn.exec_driver_sql(SEED_SQL.read_text())
    with engine.connect() as conn:
        result = catalog(conn)
    engine.dispose()
    return result


@pytest.fixture
def migrated_catalog(app):
    with db.engine.connect() as conn:
        return catalog(conn)


def test_columns_match_the_seed_exactly(seed_catalog, migrated_catalog):
    assert migrated_catalog["columns"] == seed_catalog["columns"]


@pytest.mark.parametrize("kind", ["constraints", "indexes", "triggers", "function"])
def test_every_seed_object_exists_unchanged(seed_catalog, migrated_catalog, kind):
    missing = seed_catalog[kind] - migrated_catalog[kind]
    assert not missing, f"{kind} of the seed missing or different after migration: {sorted(missing)}"


def test_all_eighteen_seed_indexes_are_present(migrated_catalog):
    names = {name for _, name, _ in migrated_catalog["indexes"] if name.startswith("idx_")}
    seed_names = {line.split()[2] for line in SEED_SQL.read_text().splitlines() if line.startswith("CREATE INDEX")}
    assert len(seed_names) == 18
    assert seed_names <= names


def test_review_stages_cascade_when_the_order_is_deleted(app):
    order_id = make_order().order_id
    make_stage(order_id, "preBria")
    db.session.execute(text("DELETE FROM orders WHERE order_id = :o"), {"o": order_id})
    db.session.commit()
    left = db.session.execute(text("SELECT count(*) FROM review_stages WHERE order_id = :o"), {"o": order_id})
    assert left.scalar() == 0


@pytest.mark.parametrize("table, key_column, set_clause", [
    ("orders", "order_id", "status = 'shipped'"),
    ("review_stages", "order_id", "status = 'approved'"),
    ("approvals", "order_id", "status = 'approved'"),
])
def test_update_triggers_move_updated_at(app, table, key_column, set_clause):
    order = make_order()
    make_stage(order, "preBria")
    db.session.execute(text(
        "INSERT INTO approvals (order_id, stage, reviewer_email) VALUES (:o, 'preBria', 'r@example.com')"
    ), {"o": order.order_id})
    db.session.execute(text(f"UPDATE {table} SET updated_at = now() - interval '1 day' WHERE {key_column} = :o"),
                       {"o": order.order_id})
    db.session.commit()
    before = db.session.execute(text(f"SELECT updated_at FROM {table} WHERE {key_column} = :o"),
                                {"o": order.order_id}).scalar()
    db.session.execute(text(f"UPDATE {table} SET {set_clause} WHERE {key_column} = :o"), {"o": order.order_id})
    db.session.commit()
    after = db.session.execute(text(f"SELECT updated_at FROM {table} WHERE {key_column} = :o"),
                               {"o": order.order_id}).scalar()
    assert after > before


def test_uuid_defaults_need_no_extension(app):
    extensions = db.session.execute(text("SELECT extname FROM pg_extension")).scalars().all()
    assert "uuid-ossp" not in extensions
    order = make_order()
    assert order.id is not None
