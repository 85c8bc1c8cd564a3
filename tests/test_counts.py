"""The counts at a glance are exact: after every kind of change (the review actions, the pipeline's own SQL, a
platform change, an order deleted), after compaction while decisions go on, and after a rebuild."""
from __future__ import annotations

import os
import threading
import time

import psycopg2
import pytest
from psycopg2 import sql
from sqlalchemy import text
from sqlalchemy.engine import make_url

from lhb_review import review
from lhb_review.core.actors import Actor
from lhb_review.core.storage import get_storage
from lhb_review.extensions import db
from lhb_review.models import StageCountDelta
from lhb_review.review import counts
from tests.check_files import asset, png
from tests.conftest import plain_dsn
from tests.factories import make_order, make_order_with_stages
from tests.test_stage_order import run_approve_stage

ANA = Actor(email="ana@example.com", ip="192.0.2.20", user_agent="pytest")
BEN = Actor(email="ben@example.com", ip="192.0.2.21", user_agent="pytest")
ADMIN = Actor(email="admin@example.com", ip="192.0.2.22", user_agent="pytest", is_admin=True)
PIPELINE = Actor(email="pipeline-prod", kind="token")

KEPT = """SELECT stage_name, status, platform, project, sum(n) FROM stage_count_deltas
          GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0"""
TRUE = """SELECT s.stage_name, s.status, o.platform, o.project, count(*) FROM review_stages s
          JOIN orders o ON o.order_id = s.order_id GROUP BY 1, 2, 3, 4"""


def rows(sql: str) -> dict[tuple, int]:
    return {tuple(r[:4]): int(r[4]) for r in db.session.execute(text(sql))}


def assert_exact() -> dict[tuple, int]:
    """The kept counts equal a COUNT(*) over the stages, and the glance reads the same numbers."""
    db.session.rollback()  # a fresh snapshot: what is committed now
    kept, true = rows(KEPT), rows(TRUE)
    assert kept == true
    assert all(n > 0 for n in kept.values())
    shown = {(c.stage, status): n for c in counts.stage_counts() for status, n in c.by_status.items() if n}
    by_stage_status: dict[tuple, int] = {}
    for (stage, status, _, _), n in true.items():
        by_stage_status[(stage, status)] = by_stage_status.get((stage, status), 0) + n
    assert shown == by_stage_status
    return kept


def count_of(stage: str, status: str, platform: str = "shopify", project: str = "my-first-adventure") -> int:
    return assert_exact().get((stage, status, platform, project), 0)


def connect(app):
    conn = psycopg2.connect(plain_dsn(app.config["SQLALCHEMY_DATABASE_URI"]))
    return conn


# --- every review action ---------------------------------------------------------------------------------

def test_claim_approve_reject_reopen_and_undo_keep_the_counts_exact(app):
    order = make_order_with_stages("pending", "pending", "pending")
    other = make_order_with_stages("pending")
    assert count_of("preBria", "pending") == 2

    review.claim(ANA, order.order_id, "preBria")
    assert (count_of("preBria", "in_review"), count_of("preBria", "pending")) == (1, 1)
    review.approve(ANA, order.order_id, "preBria")
    assert (count_of("preBria", "approved"), count_of("preBria", "in_review")) == (1, 0)
    review.reject(BEN, other.order_id, "preBria", "wrong colours", ["print_quality"])
    assert count_of("preBria", "rejected") == 1
    review.undo(BEN, other.order_id, "preBria")
    assert (count_of("preBria", "rejected"), count_of("preBria", "pending")) == (0, 1)
    review.reopen(ADMIN, order.order_id, "preBria", "look again")
    assert (count_of("preBria", "approved"), count_of("preBria", "pending")) == (0, 2)
    review.claim(BEN, order.order_id, "preBria")
    review.release(BEN, order.order_id, "preBria")
    assert count_of("preBria", "pending") == 2


def stored(order_id: str, stage: str, name: str, size: int) -> dict:
    key, data = f"orders/{order_id}/{stage}/{name}", png(size, size)
    get_storage().put(key, data, "image/png")
    return asset(key, data, "image/png")


def test_a_resubmission_that_voids_later_approvals_keeps_the_counts_exact(app):
    order = make_order(r2_assets={})
    for stage in ("preBria", "postBria", "postPdf"):
        review.submit(PIPELINE, order.order_id, stage, [stored(order.order_id, stage, "a.png", 1200)])
    for stage in ("preBria", "postBria", "postPdf"):
        review.approve(ANA, order.order_id, stage)
    assert count_of("postPdf", "approved") == 1

    review.submit(PIPELINE, order.order_id, "preBria", [stored(order.order_id, "preBria", "b.png", 1300)])

    kept = assert_exact()
    assert {k[:2]: n for k, n in kept.items()} == {("preBria", "pending"): 1, ("postBria", "pending"): 1,
                                                  ("postPdf", "pending"): 1}


def test_the_pipelines_approve_stage_sql_keeps_the_counts_exact(app):
    order = make_order_with_stages("pending", "pending")
    run_approve_stage(app.config["SQLALCHEMY_DATABASE_URI"], order.order_id, "preBria", "bot@littleherolabs.com")
    assert (count_of("preBria", "approved"), count_of("preBria", "pending")) == (1, 0)
    # Out of order: stored as pending, the stage stays pending, nothing moves.
    run_approve_stage(app.config["SQLALCHEMY_DATABASE_URI"], order.order_id, "postPdf", "bot@littleherolabs.com")
    assert count_of("postBria", "pending") == 1


def test_a_role_with_no_grant_on_the_counts_can_still_change_stages_and_orders(app, database_url):
    """The pipeline's own database role may know nothing of lhb-review's counts table: the triggers write it
    with their owner's rights."""
    order = make_order_with_stages("pending")
    role = f"lhb_nocounts_{os.getpid()}"
    admin = psycopg2.connect(plain_dsn(database_url))
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pw'").format(sql.Identifier(role)))
            cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(role)))
            cur.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}")
                        .format(sql.Identifier(role)))
            cur.execute(sql.SQL("REVOKE ALL ON stage_count_deltas FROM {}").format(sql.Identifier(role)))
        url = make_url(database_url).set(username=role, password="pw").render_as_string(hide_password=False)
        run_approve_stage(url, order.order_id, "preBria", "bot@littleherolabs.com")
        conn = psycopg2.connect(plain_dsn(url))
        try:
            with conn.cursor() as cur:
                cur.execute("UPDATE orders SET platform = 'amazon' WHERE order_id = %s", (order.order_id,))
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute("SELECT count(*) FROM stage_count_deltas")
            conn.rollback()
            with conn.cursor() as cur:
                cur.execute("UPDATE orders SET platform = 'amazon' WHERE order_id = %s", (order.order_id,))
            conn.commit()
        finally:
            conn.close()
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            cur.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
        admin.close()
    assert count_of("preBria", "approved", platform="amazon") == 1


def test_writes_straight_to_the_tables_keep_the_counts_exact(app):
    order = make_order_with_stages("pending", "pending", "pending")
    make_order_with_stages("pending", order_id="ORD-STAYS")
    conn = connect(app)
    try:
        with conn.cursor() as cur:  # one statement changing several rows, then a stage moved and one deleted
            cur.execute("UPDATE review_stages SET status = 'approved' WHERE order_id = %s", (order.order_id,))
            cur.execute("UPDATE review_stages SET stage_name = 'postBria', status = 'rejected' "
                        "WHERE order_id = 'ORD-STAYS'")
            cur.execute("DELETE FROM review_stages WHERE order_id = %s AND stage_name = 'postPdf'",
                        (order.order_id,))
        conn.commit()
    finally:
        conn.close()
    kept = assert_exact()
    assert {k[:2]: n for k, n in kept.items()} == {("preBria", "approved"): 1, ("postBria", "approved"): 1,
                                                  ("postBria", "rejected"): 1}


# --- orders: platform and project, deletion ----------------------------------------------------------------

def test_a_change_of_platform_or_project_moves_the_orders_stages(app):
    order = make_order_with_stages("approved", "pending", platform="shopify", project="bedtime-hero")
    make_order_with_stages("pending", platform="shopify", project="bedtime-hero")
    db.session.execute(text("UPDATE orders SET platform = 'amazon' WHERE order_id = :o"), {"o": order.order_id})
    db.session.commit()
    kept = assert_exact()
    assert kept[("postBria", "pending", "amazon", "bedtime-hero")] == 1
    assert kept[("preBria", "pending", "shopify", "bedtime-hero")] == 1

    db.session.execute(text("UPDATE orders SET project = 'space-hero', status = 'x' WHERE order_id = :o"),
                       {"o": order.order_id})
    db.session.execute(text("UPDATE orders SET platform = platform"))  # no change: nothing moves
    db.session.commit()
    assert assert_exact()[("preBria", "approved", "amazon", "space-hero")] == 1
    assert [c.by_status["pending"] for c in counts.stage_counts(platform="amazon")] == [0, 1, 0]
    assert [c.waiting for c in counts.stage_counts(platform="shopify", project="bedtime-hero")] == [1, 0, 0]


def test_an_order_deleted_with_its_stages_leaves_the_counts(app):
    order = make_order_with_stages("approved", "pending")
    make_order_with_stages("pending")
    db.session.execute(text("DELETE FROM orders WHERE order_id = :o"), {"o": order.order_id})
    db.session.commit()
    assert assert_exact() == {("preBria", "pending", "shopify", "my-first-adventure"): 1}


def test_truncating_the_stages_empties_the_counts(app):
    make_order_with_stages("approved", "pending")
    db.session.execute(text("TRUNCATE review_stages CASCADE"))
    db.session.commit()
    assert assert_exact() == {}
    assert db.session.query(StageCountDelta).count() == 0


# Two transactions on the same order, the first holding its change open while the second tries its own: the
# second waits (so it sees the first's platform, or the first sees its stage), and the counts end exact.
RACES = {
    "platform, then a new stage": (
        "UPDATE orders SET platform = 'amazon' WHERE order_id = 'ORD-RACE'",
        "INSERT INTO review_stages (order_id, stage_name, status) VALUES ('ORD-RACE', 'postBria', 'pending')"),
    "a new stage, then platform": (
        "INSERT INTO review_stages (order_id, stage_name, status) VALUES ('ORD-RACE', 'postBria', 'pending')",
        "UPDATE orders SET platform = 'amazon' WHERE order_id = 'ORD-RACE'"),
    "platform, then a status": (
        "UPDATE orders SET platform = 'amazon' WHERE order_id = 'ORD-RACE'",
        "UPDATE review_stages SET status = 'approved' WHERE order_id = 'ORD-RACE'"),
    "a status, then platform": (
        "UPDATE review_stages SET status = 'approved' WHERE order_id = 'ORD-RACE'",
        "UPDATE orders SET platform = 'amazon' WHERE order_id = 'ORD-RACE'"),
    "a status, then the order deleted": (
        "UPDATE review_stages SET status = 'approved' WHERE order_id = 'ORD-RACE'",
        "DELETE FROM orders WHERE order_id = 'ORD-RACE'"),
}


@pytest.mark.parametrize("race", RACES)
def test_a_platform_change_racing_a_stage_change_keeps_the_counts_exact(app, race):
    make_order_with_stages("pending", order_id="ORD-RACE", platform="shopify")
    first_sql, second_sql = RACES[race]
    first, second = connect(app), connect(app)
    failed: list[BaseException] = []

    def then():
        try:
            second.cursor().execute(second_sql)
            second.commit()
        except BaseException as exc:  # reported below
            failed.append(exc)

    try:
        first.cursor().execute(first_sql)
        worker = threading.Thread(target=then)
        worker.start()
        worker.join(0.5)
        with first.cursor() as cur:
            cur.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (second.get_backend_pid(),))
            assert cur.fetchone()[0] == "Lock", "the second change should wait for the first"
        first.commit()
        worker.join(10)
        assert not worker.is_alive() and not failed, failed
    finally:
        first.close()
        second.close()
    assert_exact()


def test_a_status_change_does_not_wait_for_an_orders_other_columns(app):
    make_order_with_stages("pending", order_id="ORD-FREE")
    first, second = connect(app), connect(app)
    try:
        first.cursor().execute("UPDATE orders SET status = 'printing' WHERE order_id = 'ORD-FREE'")
        with second.cursor() as cur:
            cur.execute("SET lock_timeout = '2s'")
            cur.execute("UPDATE review_stages SET status = 'in_review' WHERE order_id = 'ORD-FREE'")
        second.commit()
        first.commit()
    finally:
        first.close()
        second.close()
    assert count_of("preBria", "in_review") == 1


# --- compaction and rebuild --------------------------------------------------------------------------------

def test_compaction_leaves_one_row_per_combination_and_the_same_counts(app):
    orders = [make_order_with_stages("pending", "pending") for _ in range(3)]
    for order in orders:
        review.approve(ANA, order.order_id, "preBria")
    review.reopen(ADMIN, orders[0].order_id, "preBria")
    before = assert_exact()

    done = counts.compact()

    assert done is not None and done.removed > done.kept
    assert assert_exact() == before
    combos = db.session.execute(text(
        "SELECT count(*), count(DISTINCT (stage_name, status, platform, project)) FROM stage_count_deltas")).one()
    assert combos[0] == combos[1] == len(before)
    assert counts.compact().removed == len(before)  # again: nothing left to sum


def test_a_compaction_while_another_holds_the_lock_does_nothing(app):
    make_order_with_stages("pending")
    holder = connect(app)
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (counts.COMPACT_LOCK,))
        assert counts.compact() is None
    finally:
        holder.rollback()
        holder.close()
    assert counts.compact() is not None


def test_compaction_while_decisions_go_on_keeps_the_counts_exact(app):
    orders = [make_order_with_stages("pending", "pending").order_id for _ in range(24)]
    errors: list[BaseException] = []
    deciding = threading.Event()

    def decide(mine: list[str], actor: Actor):
        try:
            with app.app_context():
                for order_id in mine:
                    review.claim(actor, order_id, "preBria")
                    review.approve(actor, order_id, "preBria")
                    review.reject(actor, order_id, "postBria", "wrong colours", ["print_quality"])
                    deciding.set()
                db.session.remove()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=decide, args=(orders[i::3], actor))
               for i, actor in enumerate((ANA, BEN, ADMIN))]
    for t in threads:
        t.start()
    deciding.wait(10)
    compactions = 0
    while any(t.is_alive() for t in threads):
        if counts.compact() is not None:
            compactions += 1
        time.sleep(0.01)
    for t in threads:
        t.join()
    assert not errors, errors
    assert compactions >= 2
    kept = assert_exact()
    assert {k[:2]: n for k, n in kept.items()} == {("preBria", "approved"): 24, ("postBria", "rejected"): 24}
    counts.compact()
    assert assert_exact() == kept


def test_rebuild_recounts_what_bypassed_the_triggers(app):
    make_order_with_stages("approved", "pending")
    db.session.execute(text("SET LOCAL session_replication_role = replica"))  # triggers off, as a raw load
    db.session.execute(text("UPDATE review_stages SET status = 'rejected' WHERE stage_name = 'postBria'"))
    db.session.commit()
    db.session.rollback()
    assert rows(KEPT) != rows(TRUE)

    assert counts.rebuild() == 2
    assert_exact()


def test_flask_counts_compact_and_rebuild(runner, app):
    order = make_order_with_stages("pending")
    review.approve(ANA, order.order_id, "preBria")
    compacted = runner.invoke(args=["counts", "compact"])
    assert compacted.exit_code == 0, compacted.output
    assert "Compacted 3 count rows into 1." in compacted.output
    rebuilt = runner.invoke(args=["counts", "rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "Counts rebuilt: 1 rows." in rebuilt.output
    assert_exact()


def test_a_worker_compacts_at_most_once_a_minute(app):
    make_order_with_stages("pending")
    clock = [100.0]
    compactor = counts.Compactor(clock=lambda: clock[0])
    assert compactor.maybe() is not None
    clock[0] += 30
    assert compactor.maybe() is None
    clock[0] += 31
    assert compactor.maybe() is not None


def test_open_stage_pages_heartbeats_compact_the_counts_once_a_minute(app, login_as, monkeypatch):
    from lhb_review.views import stage as stage_views
    from tests.factories import make_user

    orders = [make_order_with_stages("pending") for _ in range(3)]
    browser = login_as(make_user())
    clock = [1000.0]
    monkeypatch.setattr(stage_views, "COMPACTOR", counts.Compactor(clock=lambda: clock[0]))

    def claim(order) -> tuple[int, int]:
        """(combinations with a count before the claim, count rows after it)."""
        combinations = len(assert_exact())
        browser.refresh_csrf(f"/orders/{order.order_id}/stages/preBria")
        assert browser.post(f"/orders/{order.order_id}/stages/preBria/renew", {}, htmx=True).status_code == 200
        return combinations, db.session.scalar(text("SELECT count(*) FROM stage_count_deltas"))

    # Each heartbeat here claims its stage again (pending to in review): two rows (-1, +1) after any compaction.
    combinations, first = claim(orders[0])
    assert first == combinations + 2  # compacted first (one row per combination), then the claim's two
    clock[0] += 30
    _, second = claim(orders[1])
    assert second == first + 2  # within the minute: nothing compacted
    clock[0] += 31
    combinations, third = claim(orders[2])
    assert third == combinations + 2
    assert_exact()


# --- demo data ---------------------------------------------------------------------------------------------

def test_the_demo_seed_leaves_exact_counts(runner, app):
    seeded = runner.invoke(args=["seed", "--orders", "12"])
    assert seeded.exit_code == 0, seeded.output
    kept = assert_exact()
    assert sum(kept.values()) == db.session.scalar(text("SELECT count(*) FROM review_stages")) > 12
