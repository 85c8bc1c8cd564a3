"""The queue's counts at a glance, kept by the database in the same transaction as every change.

``stage_count_deltas`` holds insert-only rows (stage_name, status, platform, project, n); a combination's
count is the sum of its rows. Decisions never update a shared row, so they never queue behind each other
on one: each change only inserts. Compaction (lhb_review.review.counts) sums the rows into one per
combination now and then.

- ``review_stages_counts``: AFTER INSERT, UPDATE OF status, stage_name, order_id, and DELETE of a stage row:
  a -1 row for what it was and a +1 row for what it is, with the platform and project of its order. A
  stage deleted with its order (ON DELETE CASCADE) finds the order gone: ``orders_counts_delete`` has taken
  the order's stages off already.
- ``review_stages_counts_truncate``: TRUNCATE of review_stages empties the counts.
- ``orders_counts_lock`` and ``orders_counts_move``: a change of an order's platform or project moves its
  stages from the old combination to the new one. The BEFORE trigger locks the order row FOR UPDATE, so
  a transaction adding a stage to the order (its foreign key check holds FOR KEY SHARE) finishes first or
  waits; the AFTER trigger reads the stages FOR SHARE, so a transaction changing one finishes first or
  waits. Either way each stage is counted under the platform it ends up with.
- ``orders_counts_delete``: BEFORE DELETE of an order takes its stages off the counts.

The trigger functions are SECURITY DEFINER (with a fixed search_path): whoever changes a stage, the
pipeline's role included, needs no privilege on stage_count_deltas. They can only run as triggers.

The upgrade seeds the table with one summed row per combination of the existing rows.

Revision ID: 0014_stage_counts
Revises: 0012_check_runs
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = "0014_stage_counts"
down_revision = "0012_check_runs"
branch_labels = None
depends_on = None

FUNCTIONS = ("stage_counts_follow_stage()", "stage_counts_truncate()", "stage_counts_lock_order()",
             "stage_counts_move_order()", "stage_counts_drop_order()")

FOLLOW_STAGE = """
CREATE FUNCTION stage_counts_follow_stage() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO stage_count_deltas (stage_name, status, platform, project, n)
        SELECT OLD.stage_name, OLD.status, o.platform, o.project, -1 FROM orders o WHERE o.order_id = OLD.order_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO stage_count_deltas (stage_name, status, platform, project, n)
        SELECT NEW.stage_name, NEW.status, o.platform, o.project, 1 FROM orders o WHERE o.order_id = NEW.order_id;
    END IF;
    RETURN NULL;
END;
$$
"""

TRUNCATE = """
CREATE FUNCTION stage_counts_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    DELETE FROM stage_count_deltas;
    RETURN NULL;
END;
$$
"""

LOCK_ORDER = """
CREATE FUNCTION stage_counts_lock_order() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    PERFORM 1 FROM orders WHERE order_id = OLD.order_id FOR UPDATE;
    RETURN NEW;
END;
$$
"""

MOVE_ORDER = """
CREATE FUNCTION stage_counts_move_order() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    INSERT INTO stage_count_deltas (stage_name, status, platform, project, n)
    SELECT s.stage_name, s.status, m.platform, m.project, m.n * count(*)
      FROM (SELECT stage_name, status FROM review_stages WHERE order_id = OLD.order_id FOR SHARE) AS s
     CROSS JOIN (VALUES (OLD.platform, OLD.project, -1), (NEW.platform, NEW.project, 1)) AS m(platform, project, n)
     GROUP BY s.stage_name, s.status, m.platform, m.project, m.n;
    RETURN NULL;
END;
$$
"""

DROP_ORDER = """
CREATE FUNCTION stage_counts_drop_order() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    INSERT INTO stage_count_deltas (stage_name, status, platform, project, n)
    SELECT s.stage_name, s.status, OLD.platform, OLD.project, -count(*)
      FROM (SELECT stage_name, status FROM review_stages WHERE order_id = OLD.order_id FOR SHARE) AS s
     GROUP BY s.stage_name, s.status;
    RETURN OLD;
END;
$$
"""

PLATFORM_CHANGED = "OLD.platform IS DISTINCT FROM NEW.platform OR OLD.project IS DISTINCT FROM NEW.project"

SEED = """
INSERT INTO stage_count_deltas (stage_name, status, platform, project, n)
SELECT s.stage_name, s.status, o.platform, o.project, count(*)
  FROM review_stages s JOIN orders o ON o.order_id = s.order_id
 GROUP BY s.stage_name, s.status, o.platform, o.project
"""


def upgrade():
    op.create_table(
        "stage_count_deltas",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("stage_name", sa.String(50), nullable=False),
        sa.Column("status", sa.String(50), nullable=False),
        sa.Column("platform", sa.String(50), nullable=False),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stage_count_deltas")),
    )
    for function in (FOLLOW_STAGE, TRUNCATE, LOCK_ORDER, MOVE_ORDER, DROP_ORDER):
        op.execute(function)
    # Definer's rights with the search path fixed to this schema (temporary objects last, never first).
    op.execute(
        "DO $$ DECLARE f text; BEGIN FOREACH f IN ARRAY ARRAY['" + "', '".join(FUNCTIONS) + "'] LOOP "
        "EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', f, current_schema()); "
        "END LOOP; END $$"
    )
    # Stages and orders are locked while the counts are seeded, so no change slips between seed and trigger.
    op.execute("LOCK TABLE orders, review_stages IN SHARE MODE")
    op.execute(
        "CREATE TRIGGER review_stages_counts AFTER INSERT OR UPDATE OF status, stage_name, order_id OR DELETE "
        "ON review_stages FOR EACH ROW EXECUTE FUNCTION stage_counts_follow_stage()"
    )
    op.execute(
        "CREATE TRIGGER review_stages_counts_truncate AFTER TRUNCATE ON review_stages "
        "FOR EACH STATEMENT EXECUTE FUNCTION stage_counts_truncate()"
    )
    op.execute(
        "CREATE TRIGGER orders_counts_lock BEFORE UPDATE OF platform, project ON orders FOR EACH ROW "
        f"WHEN ({PLATFORM_CHANGED}) EXECUTE FUNCTION stage_counts_lock_order()"
    )
    op.execute(
        "CREATE TRIGGER orders_counts_move AFTER UPDATE OF platform, project ON orders FOR EACH ROW "
        f"WHEN ({PLATFORM_CHANGED}) EXECUTE FUNCTION stage_counts_move_order()"
    )
    op.execute(
        "CREATE TRIGGER orders_counts_delete BEFORE DELETE ON orders FOR EACH ROW "
        "EXECUTE FUNCTION stage_counts_drop_order()"
    )
    op.execute(SEED)


def downgrade():
    op.execute("DROP TRIGGER orders_counts_delete ON orders")
    op.execute("DROP TRIGGER orders_counts_move ON orders")
    op.execute("DROP TRIGGER orders_counts_lock ON orders")
    op.execute("DROP TRIGGER review_stages_counts_truncate ON review_stages")
    op.execute("DROP TRIGGER review_stages_counts ON review_stages")
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION {function}")
    op.drop_table("stage_count_deltas")
