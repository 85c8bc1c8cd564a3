"""Batch review scenario: the batch page of 12 cards against the bare route, and a 12-card batch submit against
12 single decisions. Prints figures; asserts nothing.

    .venv/bin/python bench/batch.py                    # 800 bulk orders in a fresh database, 3 rounds
    .venv/bin/python bench/batch.py --orders 400 --rounds 3

It builds a fresh bulk database (bench/run.py's pieces: ``flask db upgrade`` and ``flask seed --bulk``) on the
configured PostgreSQL server, drives the instrumented app (bench/instruments.py) in this process through
Flask's test client as a signed-in reviewer, one request at a time, and prints each step's latency and SQL
statements. One process, no gunicorn and no concurrency: the figures compare the routes with each other on
the same machine at the same moment, not the app's throughput under load (bench/run.py measures that).
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import (BENCH_EMAIL, BENCH_PASSWORD, CSRF_RE, DEFAULT_SERVER, Report, app_env, connect,  # noqa: E402
                       ensure_bench_user, prepare_database, with_database)
from bench.instruments import SQL_COUNT_HEADER, create_bench_app  # noqa: E402

CARDS = 12
FIELD_RE = re.compile(r'name="(card-\d+|fingerprint-\d+|stage)" value="([^"]*)"')


def fresh_database(server_url: str, name: str) -> None:
    conn = connect(server_url)
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


class Timed:
    """Latencies (ms) and SQL statement counts of one kind of step."""

    def __init__(self, name: str):
        self.name, self.ms, self.sql = name, [], []

    def add(self, started: float, response) -> None:
        self.ms.append((time.perf_counter() - started) * 1000)
        self.sql.append(int(response.headers.get(SQL_COUNT_HEADER, 0)))

    def add_total(self, ms: float, statements: int) -> None:
        self.ms.append(ms)
        self.sql.append(statements)

    def line(self, base: float | None = None) -> str:
        if not self.ms:
            return f"{self.name:<46} (no samples)"
        median = statistics.median(self.ms)
        ratio = f"{median / base:7.1f}x bare" if base else ""
        return (f"{self.name:<46} n={len(self.ms):<3} median {median:8.2f} ms  max {max(self.ms):8.2f} ms  "
                f"SQL {statistics.median(self.sql):5.0f}  {ratio}")


def csrf_of(html: str) -> str:
    return CSRF_RE.search(html).group(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=800, help="bulk orders in the fresh database (default 800)")
    parser.add_argument("--rounds", type=int, default=3, help="batches opened and submitted (default 3)")
    parser.add_argument("--bare", type=int, default=200, help="requests to the bare route (default 200)")
    parser.add_argument("--server-url", default=os.environ.get("BENCH_SERVER_URL") or (
        with_database(os.environ["DATABASE_URL"], "postgres") if os.environ.get("DATABASE_URL") else DEFAULT_SERVER))
    args = parser.parse_args()
    args.database = f"lhb_bench_batch_{args.orders}"

    out = Report()
    workdir = Path(tempfile.mkdtemp(prefix="lhb-bench-batch-"))
    db_url = with_database(args.server_url, args.database)
    env = app_env(db_url, workdir)
    fresh_database(args.server_url, args.database)
    prepare_database(args, out, env, db_url)
    ensure_bench_user(db_url)
    app = create_bench_app(env={k: v for k, v in env.items()})
    client = app.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"csrf_token": token, "email": BENCH_EMAIL, "password": BENCH_PASSWORD})
    token = csrf_of(client.get("/queue").get_data(as_text=True))

    conn = connect(db_url)
    with conn.cursor() as cur:
        cur.execute("SELECT id::text FROM orders LIMIT 50")
        keys = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT count(*) FROM review_stages WHERE stage_name = 'preBria' AND status IN ('pending', 'in_review')")
        waiting = cur.fetchone()[0]
    out(f"preBria stages waiting: {waiting}; {args.rounds} rounds of {CARDS} cards need {(2 * args.rounds + 1) * CARDS}")

    bare = Timed("bare route (one primary-key lookup)")
    for i in range(args.bare):
        started = time.perf_counter()
        bare.add(started, client.get(f"/_bench/orders/{keys[i % len(keys)]}"))

    opening, page, submit, singles, singles_with_page = (
        Timed("open a 12-card batch (12 claims, 303)"), Timed("batch page of 12 cards"),
        Timed("submit a 12-card batch (12 decisions)"), Timed("12 single decisions (POST approve x12)"),
        Timed("12 single decisions with their stage pages"))
    for _ in range(args.rounds):
        started = time.perf_counter()
        response = client.get(f"/queue/batch?stage=preBria&size={CARDS}")
        opening.add(started, response)
        location = response.headers["Location"]
        started = time.perf_counter()
        response = client.get(location)
        page.add(started, response)
        html = response.get_data(as_text=True)
        form = dict(FIELD_RE.findall(html))
        cards = [k for k in form if k.startswith("card-")]
        if len(cards) < CARDS:
            out(f"only {len(cards)} cards left: stopping")
            break
        form.update({name.replace("card-", "choice-"): "approve" for name in cards}, csrf_token=token)
        started = time.perf_counter()
        submit.add(started, client.post(location, data=form))
        client.post(f"{location}/release", data={"csrf_token": token, "beacon": "1"})  # the next batch's claims

        with conn.cursor() as cur:
            cur.execute("SELECT order_id FROM review_stages r WHERE stage_name = 'preBria' AND status = 'pending' "
                        "AND NOT EXISTS (SELECT 1 FROM stage_claims c WHERE c.order_id = r.order_id) "
                        "ORDER BY created_at LIMIT %s", (2 * CARDS,))
            order_ids = [r[0] for r in cur.fetchall()]
        if len(order_ids) < 2 * CARDS:
            out("not enough single stages left: stopping")
            break
        total_ms, statements = 0.0, 0
        for order_id in order_ids[:CARDS]:
            started = time.perf_counter()
            response = client.post(f"/orders/{order_id}/stages/preBria/approve", data={"csrf_token": token})
            total_ms += (time.perf_counter() - started) * 1000
            statements += int(response.headers.get(SQL_COUNT_HEADER, 0))
        singles.add_total(total_ms, statements)
        total_ms, statements = 0.0, 0
        for order_id in order_ids[CARDS:]:
            started = time.perf_counter()
            shown = client.get(f"/orders/{order_id}/stages/preBria")
            response = client.post(f"/orders/{order_id}/stages/preBria/approve", data={"csrf_token": token})
            total_ms += (time.perf_counter() - started) * 1000
            statements += int(shown.headers.get(SQL_COUNT_HEADER, 0)) + int(response.headers.get(SQL_COUNT_HEADER, 0))
        singles_with_page.add_total(total_ms, statements)
    conn.close()

    base = statistics.median(bare.ms)
    out()
    out(f"In one process, one request at a time, on {args.orders} bulk orders (median of the samples):")
    for timed in (bare, opening, page, submit, singles, singles_with_page):
        out(timed.line(base if timed is not bare else None))
    if submit.ms and singles.ms:
        out()
        out(f"a 12-card batch submit takes {statistics.median(submit.ms) / statistics.median(singles.ms):.2f}x "
            f"the time of 12 single decisions; opening and showing the batch takes "
            f"{(statistics.median(opening.ms) + statistics.median(page.ms)) / statistics.median(singles_with_page.ms):.2f}x "
            "the time of 12 stage pages with their decisions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
