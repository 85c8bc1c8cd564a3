"""Speed that can be checked without a stopwatch: statements per page do not grow with the data, and the
queue and search queries are answered from indexes.

Timings live in bench/run.py; nothing here asserts one.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
from flask_migrate import upgrade
from sqlalchemy import event, text
from werkzeug.exceptions import HTTPException

from lhb_review import create_app
from lhb_review.extensions import db
from bench.bulk import bulk_order_id, load_bulk
from tests.conftest import Browser, test_env
from tests.factories import PASSWORD, make_user

# Bulk order 3 has all three stages in the generated data at every size (orders 1..N are generated the
# same way whatever N is), so the pages below show the same order with 10 and with 1,000 orders.
SAMPLE = 3


def sample_stage() -> tuple[str, str]:
    row = db.session.execute(
        text(
            "SELECT order_id, stage_name FROM review_stages WHERE order_id = :o "
            "ORDER BY created_at DESC LIMIT 1"
        ),
        {"o": bulk_order_id(SAMPLE)},
    ).one()
    return row.order_id, row.stage_name


def api_headers() -> dict:
    """A bearer token for the pipeline API (created once per test; the tables are emptied afterwards)."""
    from lhb_review.pipeline import tokens
    from lhb_review.core.actors import Actor

    global _token
    if _token is None or not db.session.execute(text("SELECT count(*) FROM api_tokens")).scalar():
        _token = tokens.create(Actor(email="perf@localhost", kind="system"), "perf-test")[1]
    return {"Authorization": f"Bearer {_token}"}


_token = None

HTMX = {"HX-Request": "true"}

# Each page: (name, path, headers), the last two as functions called once the data is there.
# Add a page here and both tests below cover it.
def presence_path() -> str:
    return "/orders/{}/stages/{}/presence?seen=free".format(*sample_stage())


PAGES = [
    ("queue page", lambda: "/queue", dict),
    ("queue fragment", lambda: "/queue", lambda: HTMX),
    ("queue fragment, filtered", lambda: "/queue?stage=preBria&status=pending&platform=amazon", lambda: HTMX),
    ("search", lambda: "/queue?q=example.com", lambda: HTMX),
    ("order page", lambda: f"/orders/{bulk_order_id(SAMPLE)}", dict),
    ("stage review page", lambda: "/orders/{}/stages/{}".format(*sample_stage()), dict),
    ("API stage status", lambda: "/api/v1/orders/{}/stages/{}".format(*sample_stage()), api_headers),
    ("claim bar poll", presence_path, lambda: HTMX),
]

# What each page the benchmark measures costs in SQL statements, pinned: a change that adds one fails here,
# and a change that saves one lowers the pin (a count may only go down). The signed-in user is one of them.
PAGE_STATEMENTS = {
    "queue page": 3,        # the user, the page of rows, the at-a-glance counts
    "queue fragment": 2,    # the user, the page of rows
    "stage review page": 4,  # the user, the order with its stages, the stage's facts with its checks, its history
    "search": 3,            # the user, the matching orders (search_filter), the page of their stages
    "API stage status": 2,  # the token, the stage with its approval and its check run
    "claim bar poll": 2,    # the user, the stage's status with its claim and earlier stages
}


@contextmanager
def statements(engine):
    """Collect the SQL statements (parameters inlined) the engine runs inside the block."""
    seen: list[str] = []

    def collect(conn, cursor, statement, parameters, context, executemany):
        seen.append(cursor.mogrify(statement, parameters).decode())

    event.listen(engine, "before_cursor_execute", collect)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", collect)


def route_exists(application, path: str) -> bool:
    try:
        application.url_map.bind("localhost").match(path.split("?")[0], method="GET")
        return True
    except HTTPException:  # NotFound, MethodNotAllowed, or a redirect to another URL
        return False


def page_statement_counts(application, browser: Browser) -> dict[str, int]:
    counts = {}
    for name, path_of, headers_of in PAGES:
        path = path_of()
        if not route_exists(application, path):
            continue
        headers = headers_of()
        browser.get(path, headers=headers)  # once first, so once-a-while writes (a token's last use) are done
        with statements(db.engine) as seen:
            response = browser.get(path, headers=headers)
        assert response.status_code == 200, f"{name}: HTTP {response.status_code}"
        counts[name] = len(seen)
    return counts


def test_statements_per_page_do_not_grow_with_the_data(app, login_as):
    browser = login_as(make_user())
    db.session.remove()
    load_bulk(10, app.config["ASSET_DIR"])
    with_ten = page_statement_counts(app, browser)
    db.session.remove()
    load_bulk(1000, app.config["ASSET_DIR"])
    with_thousand = page_statement_counts(app, browser)

    assert db.session.scalar(text("SELECT count(*) FROM orders")) == 1000
    assert {"queue page", "queue fragment"} <= set(with_ten)
    assert with_thousand == with_ten


def test_each_measured_page_costs_its_pinned_number_of_statements(app, login_as):
    browser = login_as(make_user())
    db.session.remove()
    load_bulk(10, app.config["ASSET_DIR"])
    counts = page_statement_counts(app, browser)

    measured = {name: counts[name] for name in PAGE_STATEMENTS}
    assert measured == PAGE_STATEMENTS, (
        "statements per page changed: a page may not cost more than its pin; when it costs less, lower the "
        f"pin in PAGE_STATEMENTS: {measured}")


# ------------------------------------------------------------------ plans on a table big enough to matter

BIG = 30_000


@pytest.fixture(scope="module")
def big(scratch_database, tmp_path_factory):
    """An app on a database of its own holding BIG bulk orders (the per-test TRUNCATE does not reach it)."""
    url = scratch_database("perf")
    application = create_app({"TESTING": True}, env=test_env(url, tmp_path_factory.mktemp("perf")))
    with application.app_context():
        upgrade()
        load_bulk(BIG, application.config["ASSET_DIR"])
        user = make_user("perf.reviewer@example.com")
        browser = Browser(application.test_client())
        assert browser.login(user.email, PASSWORD).status_code == 302
        sample = db.session.execute(
            text(
                "SELECT order_id, customer_email, customer_first_name || ' ' || customer_last_name AS name, "
                "amazon_order_id FROM orders WHERE amazon_order_id IS NOT NULL "
                "ORDER BY order_id LIMIT 1 OFFSET 777"
            )
        ).one()
        db.session.remove()
    yield application, browser, sample
    with application.app_context():
        db.engine.dispose()


def page_queries(application, browser: Browser, path: str, table: str) -> list[str]:
    """The statements over `table` that a page issues, parameters inlined, exactly as sent."""
    with application.app_context():
        with statements(db.engine) as seen:
            response = browser.get(path, headers={"HX-Request": "true"})
        db.session.remove()
    assert response.status_code == 200, f"GET {path}: HTTP {response.status_code}"
    ours = [s for s in seen if re.search(rf"\b(FROM|JOIN)\s+{table}\b", s)]
    assert ours, f"GET {path} issued no statement over {table}"
    return ours


def explain(application, queries: list[str]) -> str:
    with application.app_context():
        raw = db.engine.raw_connection()
        try:
            with raw.cursor() as cur:
                plans = []
                for query in queries:
                    cur.execute("EXPLAIN " + query)
                    plans.append("\n".join(line for (line,) in cur.fetchall()))
            raw.rollback()
        finally:
            raw.close()
    return "\n\n".join(plans)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, path, indexes",
    [
        ("default queue", lambda s: "/queue", {"ix_review_stages_waiting_queue"}),
        (
            "queue of one stage",
            lambda s: "/queue?stage=postBria",
            {"ix_review_stages_waiting_stage_queue", "ix_review_stages_stage_status_queue"},
        ),
        (
            "queue of one status",
            lambda s: "/queue?status=rejected",
            {"ix_review_stages_status_queue", "ix_review_stages_stage_status_queue"},
        ),
    ],
)
def test_queue_queries_walk_an_index(big, name, path, indexes):
    application, browser, sample = big
    plan = explain(application, page_queries(application, browser, path(sample), "review_stages"))
    assert any(index in plan for index in indexes), f"{name}: none of {indexes} in\n{plan}"
    assert "Seq Scan on review_stages" not in plan, plan


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, query, index",
    [
        ("e-mail", lambda s: s.customer_email, "ix_orders_customer_email_trgm"),
        ("part of an e-mail", lambda s: s.customer_email.split("@")[0], "ix_orders_customer_email_trgm"),
        ("customer name", lambda s: s.name, "ix_orders_customer_name_trgm"),
        ("order id", lambda s: s.order_id, "order_id"),
        ("Amazon order id", lambda s: s.amazon_order_id, "ix_orders_amazon_order_id"),
    ],
)
def test_search_queries_use_the_search_indexes(big, name, query, index):
    application, browser, sample = big
    from urllib.parse import quote

    term = query(sample)
    queries = page_queries(application, browser, f"/queue?q={quote(term)}", "orders")
    if not any(term in q for q in queries):
        pytest.skip("the queue has no search yet")
    plan = explain(application, [q for q in queries if term in q])
    assert index in plan, f"search by {name}: {index} not in\n{plan}"
    assert "Seq Scan on orders" not in plan, plan


# ------------------------------------------------------------ the BENCH instruments stay out of production


def bench_app(database_url, tmp_path, **env):
    return create_app({"TESTING": True}, env=test_env(database_url, tmp_path, **env))


def instrumented_app(database_url, tmp_path, **env):
    from bench.instruments import create_bench_app

    return create_bench_app({"TESTING": True}, env=test_env(database_url, tmp_path, **env))


def test_without_bench_there_is_no_bare_route_and_no_sql_header(database_url, tmp_path):
    application = bench_app(database_url, tmp_path)
    assert not any(rule.rule.startswith("/_bench") for rule in application.url_map.iter_rules())
    response = application.test_client().get("/login")
    assert "X-SQL-Count" not in response.headers


def test_the_bench_instruments_add_a_bare_route_that_answers_one_lookup_and_count_statements(
        app, database_url, tmp_path):
    from tests.factories import make_order

    order = make_order()
    application = instrumented_app(database_url, tmp_path)
    client = application.test_client()
    response = client.get(f"/_bench/orders/{order.id}")
    assert response.status_code == 200
    assert response.get_json()["order_id"] == order.order_id
    assert response.headers["X-SQL-Count"] == "1"
    assert client.get("/_bench/orders/not-a-uuid").status_code == 404
    assert client.get("/login").headers["X-SQL-Count"] == "0"
    with application.app_context():
        db.engine.dispose()


def test_no_setting_turns_the_bench_instruments_on_in_the_app_package(database_url, tmp_path):
    application = bench_app(database_url, tmp_path, BENCH="true")
    assert not any(rule.rule.startswith("/_bench") for rule in application.url_map.iter_rules())
    assert "X-SQL-Count" not in application.test_client().get("/login").headers
    assert "BENCH" not in application.config


# ------------------------------------------------------------ a decision costs a fixed number of statements

# What an approve or a reject through the web costs, whatever the data, on an order with a callback URL,
# pinned as the pages are (a count may only go down): the signed-in user; the order's stages locked FOR
# UPDATE; one read of the claim, approval, fingerprint, check run, assets, webhooks and now(); the stage's
# UPDATE ... RETURNING; the approvals upsert, carrying the fingerprint's upsert, the history row and the end
# of the claim as CTEs; the delivery, carrying the audit row. The htmx panel is drawn from what the decision
# wrote, so it reads nothing more. It was 25 (approve, htmx) before decisions read each thing once, and 14
# before they were written as Core statements.
DECISION_STATEMENTS = {"approve (htmx)": 6, "approve": 6, "reject (htmx)": 6, "reject": 6}


def decide_statements(browser: Browser, action: str, order_id: str, stage: str, *, htmx: bool) -> list[str]:
    data = {"notes": "The hair colour is wrong."}
    if action == "reject":
        data["reasons"] = ["character_drift"]
    browser.refresh_csrf(f"/orders/{order_id}/stages/{stage}")
    with statements(db.engine) as seen:
        response = browser.post(f"/orders/{order_id}/stages/{stage}/{action}", data, htmx=htmx)
    assert response.status_code == (200 if htmx else 303), response.get_data(as_text=True)[:500]
    return seen


def decision_statement_counts(browser: Browser, orders: list) -> dict[str, int]:
    """Statements of each kind of decision, on fresh orders with webhooks (so the outbox writes too)."""
    counts = {}
    cases = [("approve", True), ("approve", False), ("reject", True), ("reject", False)]
    for (action, htmx), order in zip(cases, orders):
        seen = decide_statements(browser, action, order.order_id, "postBria", htmx=htmx)
        counts[f"{action}{' (htmx)' if htmx else ''}"] = len(seen)
    return counts


def test_a_decision_issues_a_fixed_number_of_statements_whatever_the_data(app, login_as):
    from lhb_review.models import AuditLog, StageDecision, WebhookDelivery
    from tests.factories import make_order_with_stages

    browser = login_as(make_user())

    def fresh_orders():
        return [make_order_with_stages("approved", "pending", webhooks=["https://hooks.example.com/lhb"])
                for _ in range(4)]

    with_few = decision_statement_counts(browser, fresh_orders())
    db.session.remove()
    load_bulk(1000, app.config["ASSET_DIR"])
    with_thousand = decision_statement_counts(browser, fresh_orders())

    assert with_thousand == with_few
    assert with_few == DECISION_STATEMENTS, (
        f"statements per decision changed: lower the pin in DECISION_STATEMENTS when it went down: {with_few}")
    # Everything still commits together: eight decisions, each with its history row, audit row and delivery.
    assert db.session.scalar(db.select(db.func.count()).select_from(StageDecision)) == 8
    assert db.session.scalar(db.select(db.func.count()).select_from(WebhookDelivery)) == 8
    assert db.session.scalar(db.select(db.func.count()).select_from(AuditLog).where(
        AuditLog.action.in_(["stage_approved", "stage_rejected"]), AuditLog.order_id.not_like("LHB-B-%"))) == 8
