"""flask seed --bulk: COPY-loaded orders with consistent stages, approvals and audit rows, idempotent."""

from __future__ import annotations

from sqlalchemy import text

from lhb_review.extensions import db
from bench.bulk import load_bulk
from tests.factories import make_order_with_stages


def scalar(sql: str, **params):
    return db.session.execute(text(sql), params).scalar()


def test_bulk_load_creates_orders_with_stages_approvals_and_audit(app):
    result = load_bulk(300, app.config["ASSET_DIR"])

    assert result.created == 300
    assert scalar("SELECT count(*) FROM orders WHERE order_id LIKE 'LHB-B-%'") == 300
    assert scalar("SELECT min(order_id) FROM orders") == "LHB-B-0000001"
    assert scalar("SELECT max(order_id) FROM orders") == "LHB-B-0000300"
    stages = scalar("SELECT count(*) FROM review_stages")
    assert 2.0 <= stages / 300 <= 3.0
    audits = scalar("SELECT count(*) FROM audit_logs")
    assert 4.5 <= audits / 300 <= 6.5
    assert result.rows == {
        "orders": 300,
        "review_stages": stages,
        "approvals": scalar("SELECT count(*) FROM approvals"),
        "audit_logs": audits,
    }


def test_bulk_data_covers_every_status_platform_and_project(app):
    load_bulk(400, app.config["ASSET_DIR"])

    statuses = set(db.session.execute(text("SELECT DISTINCT status FROM review_stages")).scalars())
    assert statuses == {"pending", "in_review", "approved", "rejected"}
    assert set(db.session.execute(text("SELECT DISTINCT platform FROM orders")).scalars()) == {
        "shopify",
        "amazon",
    }
    assert scalar("SELECT count(DISTINCT project) FROM orders") == 4
    assert scalar("SELECT count(*) FROM orders WHERE platform = 'amazon' AND amazon_order_id IS NULL") == 0
    assert (
        scalar("SELECT count(*) FROM orders WHERE platform = 'shopify' AND amazon_order_id IS NOT NULL") == 0
    )
    months = scalar("SELECT count(DISTINCT date_trunc('month', order_date)) FROM orders")
    assert months >= 15


def test_bulk_approvals_and_audit_agree_with_the_stages(app):
    load_bulk(300, app.config["ASSET_DIR"])

    # Every decided stage has its approvals row (approved -> approved, rejected -> pending) and its audit row;
    # a waiting stage has neither.
    assert (
        scalar("""
        SELECT count(*) FROM review_stages s
        LEFT JOIN approvals a ON a.order_id = s.order_id AND a.stage = s.stage_name
        WHERE (s.status = 'approved' AND a.status IS DISTINCT FROM 'approved')
           OR (s.status = 'rejected' AND a.status IS DISTINCT FROM 'pending')
           OR (s.status IN ('pending', 'in_review') AND a.id IS NOT NULL)
    """)
        == 0
    )
    assert (
        scalar("""
        SELECT count(*) FROM review_stages s
        WHERE s.status IN ('approved', 'rejected') AND NOT EXISTS (
            SELECT 1 FROM audit_logs l WHERE l.order_id = s.order_id AND l.stage = s.stage_name
              AND l.action = 'stage_' || s.status AND l.reviewer_email = s.reviewer_email)
    """)
        == 0
    )
    # A later stage exists only after the earlier one was approved, as the pipeline submits them.
    assert (
        scalar("""
        SELECT count(*) FROM review_stages later
        JOIN review_stages earlier ON earlier.order_id = later.order_id
        WHERE (later.stage_name, earlier.stage_name) IN (('postBria', 'preBria'), ('postPdf', 'postBria'))
          AND earlier.status <> 'approved'
    """)
        == 0
    )
    assert (
        scalar("SELECT count(*) FROM review_stages WHERE status = 'rejected' AND reviewer_notes IS NULL") == 0
    )


def test_bulk_orders_carry_assets_that_exist_for_each_submitted_stage(app):
    load_bulk(50, app.config["ASSET_DIR"])

    rows = db.session.execute(
        text(
            "SELECT o.r2_assets, array_agg(s.stage_name) FROM orders o JOIN review_stages s USING (order_id) "
            "GROUP BY o.order_id, o.r2_assets"
        )
    ).all()
    for assets, stages in rows:
        assert set(assets) == set(stages)
        for stage in stages:
            assert assets[stage], stage
            for asset in assets[stage]:
                assert (app.config["ASSET_DIR"] / asset["key"]).is_file()


def test_a_second_bulk_load_creates_only_the_missing_orders(app):
    load_bulk(100, app.config["ASSET_DIR"])
    first = db.session.execute(text("SELECT order_id, customer_email FROM orders ORDER BY order_id")).all()
    db.session.remove()

    again = load_bulk(100, app.config["ASSET_DIR"])
    more = load_bulk(150, app.config["ASSET_DIR"])

    assert (again.created, again.existing) == (0, 100)
    assert (more.created, more.existing) == (50, 100)
    rows = db.session.execute(text("SELECT order_id, customer_email FROM orders ORDER BY order_id")).all()
    assert rows[:100] == first
    assert len(rows) == 150 == len({r.order_id for r in rows})


def test_bulk_load_leaves_other_orders_alone_and_keeps_every_index(app):
    make_order_with_stages("pending", order_id="ORD-KEEP")
    indexes_before = set(
        db.session.execute(
            text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
        ).scalars()
    )
    constraints_before = set(
        db.session.execute(
            text("SELECT conname FROM pg_constraint WHERE connamespace = current_schema()::regnamespace")
        ).scalars()
    )
    db.session.remove()

    load_bulk(200, app.config["ASSET_DIR"])

    assert scalar("SELECT count(*) FROM review_stages WHERE order_id = 'ORD-KEEP'") == 1
    assert (
        set(
            db.session.execute(
                text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
            ).scalars()
        )
        == indexes_before
    )
    assert (
        set(
            db.session.execute(
                text("SELECT conname FROM pg_constraint WHERE connamespace = current_schema()::regnamespace")
            ).scalars()
        )
        == constraints_before
    )
    assert scalar("SELECT count(*) FROM pg_index WHERE NOT indisvalid") == 0


def test_flask_seed_bulk_reports_what_it_did(runner):
    result = runner.invoke(args=["seed", "--bulk", "40"])
    assert result.exit_code == 0, result.output
    assert "40 orders created" in result.output
    again = runner.invoke(args=["seed", "--bulk", "40"])
    assert again.exit_code == 0, again.output
    assert "nothing to do" in again.output
    assert scalar("SELECT count(*) FROM orders") == 40


def test_bulk_load_leaves_exact_counts_and_the_counts_trigger_on(app):
    make_order_with_stages("approved", "pending", order_id="ORD-BEFORE")
    db.session.remove()

    load_bulk(120, app.config["ASSET_DIR"])
    load_bulk(180, app.config["ASSET_DIR"])  # a second load on top of the first

    kept_sql = ("SELECT stage_name, status, platform, project, sum(n) FROM stage_count_deltas "
                "GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0")
    true_sql = ("SELECT s.stage_name, s.status, o.platform, o.project, count(*) FROM review_stages s "
                "JOIN orders o USING (order_id) GROUP BY 1, 2, 3, 4")

    def counted(sql):
        return {tuple(r[:4]): r[4] for r in db.session.execute(text(sql))}

    assert counted(kept_sql) == counted(true_sql)
    assert sum(counted(kept_sql).values()) == scalar("SELECT count(*) FROM review_stages") > 360
    assert scalar("SELECT count(*) FROM stage_count_deltas") == len(counted(true_sql))  # recounted, one per combination
    assert scalar("SELECT count(*) FROM pg_trigger WHERE tgname = 'review_stages_counts' AND tgenabled = 'O'") == 1
    db.session.execute(text("UPDATE review_stages SET status = 'rejected' WHERE order_id = 'ORD-BEFORE' "
                            "AND stage_name = 'postBria'"))
    db.session.commit()
    assert counted(kept_sql) == counted(true_sql)
