"""The soak in its short form: gunicorn with two workers, reviewers and a pipeline poller for a few seconds,
then the pool, decision and audit checks. The checks themselves are shown to fail on broken data."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import psycopg2
import pytest

from lhb_review import review
from lhb_review.core.actors import Actor
from tests.conftest import ROOT, plain_dsn
from tests.factories import make_order_with_stages

REVIEWER = Actor(email="reviewer@example.com")


def load_soak():
    spec = importlib.util.spec_from_file_location("soak", ROOT / "bench" / "soak.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_short_soak_passes_its_checks(server_url):
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "soak.py"), "--server-url", server_url, "--seconds", "15",
         "--orders", "80", "--reviewers", "3"],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    output = done.stdout + done.stderr[-3000:]
    assert done.returncode == 0, output
    assert "soak: all checks passed" in done.stdout, output
    assert "pool back to idle: yes" in done.stdout
    assert " 0 errors" in done.stdout


def test_the_checks_accept_consistent_decisions(app, database_url):
    soak = load_soak()
    for _ in range(3):
        order = make_order_with_stages("pending", "pending")
        review.approve(REVIEWER, order.order_id, "preBria")
        review.reject(REVIEWER, order.order_id, "postBria", "colours", ["print_quality"])
    client_view = [(o, s, "x") for o, s in _decided(database_url)]
    assert soak.check_database(database_url, client_view) == []


def _decided(database_url):
    conn = psycopg2.connect(plain_dsn(database_url))
    with conn, conn.cursor() as cur:
        cur.execute("SELECT order_id, stage_name FROM review_stages WHERE status IN ('approved', 'rejected')")
        rows = cur.fetchall()
    conn.close()
    return rows


def superuser_execute(database_url, statement, params=()):
    conn = psycopg2.connect(plain_dsn(database_url))
    with conn, conn.cursor() as cur:
        cur.execute(statement, params)
    conn.close()


@pytest.mark.parametrize("damage", ["doubled audit row", "missing audit row", "approvals disagree",
                                    "client saw more", "stray audit row"])
def test_the_checks_catch_broken_decisions(app, database_url, damage):
    soak = load_soak()
    order = make_order_with_stages("pending")
    review.approve(REVIEWER, order.order_id, "preBria")
    client_view = [(order.order_id, "preBria", "approve")]
    if damage == "doubled audit row":
        superuser_execute(database_url, "INSERT INTO audit_logs (order_id, stage, action) VALUES (%s, 'preBria', "
                          "'stage_approved')", (order.order_id,))
    elif damage == "missing audit row":
        superuser_execute(database_url, "SET session_replication_role = replica; DELETE FROM audit_logs")
    elif damage == "approvals disagree":
        superuser_execute(database_url, "UPDATE approvals SET status = 'pending'")
    elif damage == "client saw more":
        client_view.append(("ORD-NOPE", "preBria", "approve"))
    elif damage == "stray audit row":
        superuser_execute(database_url, "INSERT INTO audit_logs (order_id, stage, action) VALUES ('ORD-X', "
                          "'postPdf', 'stage_rejected')")
    assert soak.check_database(database_url, client_view) != []
