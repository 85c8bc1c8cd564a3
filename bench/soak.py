"""A bounded soak: mixed reviewer traffic and pipeline polling against gunicorn on loopback, then checks.

    python bench/soak.py --server-url postgresql://postgres@127.0.0.1:5432/postgres [--seconds 120]

It creates a database of its own on that server (dropped afterwards unless --keep), migrates it, loads
orders whose three stages wait for review, starts gunicorn (2 workers) on a free loopback port, and runs
reviewer processes (browse the queue, open stages, claim when the app has claims, approve or reject) and
one pipeline process (polls the JSON API with a bearer token when the app has one) for the given time.
It prints requests, errors and latency percentiles per kind of request, then checks that:
  - the connection pool went back to idle (pg_stat_activity for the app's application_name),
  - every decided stage has exactly one decision audit row, and approvals agree with the stage,
  - the decisions the clients saw succeed equal the decisions and audit rows in the database.
Exit status 0 only when there were no errors (5xx, dropped connections) and every check passed.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import psycopg2
import requests
from psycopg2 import sql
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

APPLICATION_NAME = "lhb-review"
PASSWORD = "soak-password-123"
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
DECISION_ACTIONS = ("stage_approved", "stage_rejected")
STAGES = ("preBria", "postBria", "postPdf")


# --- database set-up -----------------------------------------------------------------------------------------

def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(server_url: str) -> tuple[str, str]:
    name = f"lhb_soak_{os.getpid()}_{secrets.token_hex(3)}"
    conn = psycopg2.connect(libpq(server_url))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conn.close()
    return name, make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    conn = psycopg2.connect(libpq(server_url))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    conn.close()


def app_env(database_url: str, instance: Path) -> dict:
    return {
        "APP_ENV": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(instance),
        "ASSET_DIR": str(instance / "assets"),
        "LOG_LEVEL": "WARNING",
        "DB_POOL_MIN": "2",
        "DB_POOL_MAX": "6",
        # Every simulated reviewer signs in from 127.0.0.1; the soak is not about the sign-in limits.
        "LOGIN_LIMIT_PER_IP": "100000 per minute",
    }


def prepare(database_url: str, instance: Path, orders: int, reviewers: int) -> dict:
    """Migrate, load orders and users, make a pipeline token when the app has tokens; returns what it made."""
    from flask_migrate import upgrade

    from lhb_review import create_app
    from lhb_review.ops.users import hash_password

    app = create_app({}, env=app_env(database_url, instance))
    with app.app_context():
        upgrade()
        routes = {rule.rule for rule in app.url_map.iter_rules()}
        token = make_pipeline_token(app)
        from lhb_review.extensions import db

        db.engine.dispose()
    conn = psycopg2.connect(libpq(database_url))
    with conn, conn.cursor() as cur:
        password_hash = hash_password(PASSWORD)
        emails = [f"soak-reviewer-{n}@example.com" for n in range(reviewers)]
        for email in emails:
            cur.execute("INSERT INTO users (email, password_hash, role) VALUES (%s, %s, 'reviewer')",
                        (email, password_hash))
        for n in range(orders):
            order_id = f"SOAK-{n:06d}"
            assets = {stage: [{"key": f"soak/{order_id}/{stage}.png", "label": stage, "content_type": "image/png",
                               "sha256": secrets.token_hex(32)}] for stage in STAGES}
            cur.execute(
                "INSERT INTO orders (order_id, platform, project, customer_first_name, customer_last_name, "
                "customer_email, order_date, status, character_specs, book_specs, r2_assets) VALUES "
                "(%s, 'shopify', 'soak', 'Soak', %s, %s, now() - interval '1 day', 'in_review', %s, %s, %s)",
                (order_id, f"Customer {n}", f"soak{n}@example.com", json.dumps({"name": "Maya"}),
                 json.dumps({"title": "Soak"}), json.dumps(assets)))
            for stage in STAGES:
                cur.execute("INSERT INTO review_stages (order_id, stage_name, status) VALUES (%s, %s, 'pending')",
                            (order_id, stage))
    conn.close()
    return {"emails": emails, "token": token, "routes": routes}


def make_pipeline_token(app) -> str | None:
    """A bearer token for the pipeline process, through the app's own token service when it has one."""
    try:
        from lhb_review.pipeline import tokens
    except ImportError:
        return None
    from lhb_review.core.actors import Actor

    for name in ("create_token", "create", "issue"):
        create = getattr(tokens, name, None)
        if create is None:
            continue
        result = create(Actor(email="soak@localhost", kind="system"), "soak-pipeline")
        if isinstance(result, tuple):
            result = next((part for part in result if isinstance(part, str)), None)
        return getattr(result, "token", result) if not isinstance(result, str) else result
    return None


# --- gunicorn ------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(env: dict, port: int, workers: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
               "--graceful-timeout", "10", "--timeout", "60", "wsgi:app"]
    proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited: {proc.stderr.read()[-2000:]}")
        try:
            if requests.get(base + "/login", timeout=2).status_code == 200:
                return proc
        except requests.RequestException:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("gunicorn did not answer within 60 s")


def stop_gunicorn(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- traffic -------------------------------------------------------------------------------------------------

class Recorder:
    def __init__(self):
        self.samples: list[tuple[str, int, float]] = []
        self.decided: list[tuple[str, str, str]] = []

    def call(self, kind: str, method, url: str, **kwargs):
        started = time.perf_counter()
        try:
            response = method(url, timeout=30, allow_redirects=False, **kwargs)
        except requests.RequestException:
            self.samples.append((kind, 0, time.perf_counter() - started))
            return None
        self.samples.append((kind, response.status_code, time.perf_counter() - started))
        return response


def next_waiting_stage(cur) -> tuple[str, str] | None:
    """A waiting stage whose earlier stages are approved, at random: what a reviewer would pick next."""
    cur.execute(
        """
        SELECT s.order_id, s.stage_name FROM review_stages s
        WHERE s.status IN ('pending', 'in_review')
          AND NOT EXISTS (
            SELECT 1 FROM review_stages e WHERE e.order_id = s.order_id AND e.status <> 'approved'
              AND array_position(ARRAY['preBria','postBria','postPdf']::text[], e.stage_name::text)
                < array_position(ARRAY['preBria','postBria','postPdf']::text[], s.stage_name::text))
        ORDER BY random() LIMIT 1
        """
    )
    return cur.fetchone()


def reviewer(base: str, email: str, database_url: str, seconds: float, routes: set[str], seed: int, out):
    rnd = random.Random(seed)
    rec = Recorder()
    http = requests.Session()
    page = rec.call("login", http.get, base + "/login")
    token = CSRF_RE.search(page.text).group(1) if page is not None and page.status_code == 200 else ""
    signed = rec.call("login", http.post, base + "/login", data={"email": email, "password": PASSWORD,
                                                                 "csrf_token": token})
    if signed is None or signed.status_code != 302:
        out.put((rec.samples, rec.decided))
        return
    conn = psycopg2.connect(libpq(database_url))
    conn.autocommit = True
    has_stage_page = "/orders/<order_id>/stages/<stage>" in routes
    has_claim = "/orders/<order_id>/stages/<stage>/claim" in routes
    has_decisions = "/orders/<order_id>/stages/<stage>/<action>" in routes or \
        "/orders/<order_id>/stages/<stage>/approve" in routes
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        roll = rnd.random()
        if roll < 0.35 or not has_decisions:
            stage = rnd.choice(STAGES + ("",))
            rec.call("queue", http.get, base + "/queue" + (f"?stage={stage}" if stage else ""))
            continue
        with conn.cursor() as cur:
            target = next_waiting_stage(cur)
        if target is None:
            rec.call("queue", http.get, base + "/queue")
            continue
        order_id, stage = target
        path = f"/orders/{order_id}/stages/{stage}"
        if has_stage_page:
            page = rec.call("stage page", http.get, base + path)
            if page is not None and page.status_code == 200:
                match = CSRF_RE.search(page.text)
                token = match.group(1) if match else token
        if has_claim:
            rec.call("claim", http.post, base + path + "/claim", data={"csrf_token": token})
        action = "approve" if rnd.random() < 0.8 else "reject"
        data = {"csrf_token": token, "notes": "soak: looks right" if action == "approve" else "soak: colours off"}
        if action == "reject":
            data["reasons"] = "print_quality"
        response = rec.call(action, http.post, base + path + "/" + action, data=data)
        if response is not None and response.status_code in (200, 302, 303):
            rec.decided.append((order_id, stage, action))
    conn.close()
    out.put((rec.samples, rec.decided))


def pipeline(base: str, token: str | None, seconds: float, routes: set[str], out):
    rec = Recorder()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    end = time.monotonic() + seconds
    has_list = "/api/v1/stages" in routes
    has_status = "/api/v1/orders/<order_id>/stages/<stage>" in routes
    seen: list[tuple[str, str]] = []
    while time.monotonic() < end:
        if token and has_list:
            response = rec.call("api list", requests.get, base + "/api/v1/stages?status=pending", headers=headers)
            if response is not None and response.status_code == 200:
                body = response.json()
                items = body.get("items") or body.get("stages") or body.get("data") or []
                seen = [(i.get("order_id"), i.get("stage") or i.get("stage_name")) for i in items
                        if isinstance(i, dict)][:50] or seen
        if token and has_status and seen:
            order_id, stage = random.choice(seen)
            rec.call("api status", requests.get, f"{base}/api/v1/orders/{order_id}/stages/{stage}", headers=headers)
        if not (token and (has_list or has_status)):
            rec.call("login page", requests.get, base + "/login")
            time.sleep(0.05)
    out.put((rec.samples, rec.decided))


# --- checks --------------------------------------------------------------------------------------------------

def busy_connections(database_url: str, database: str) -> list[tuple]:
    conn = psycopg2.connect(libpq(database_url))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT pid, state, left(query, 80) FROM pg_stat_activity WHERE datname = %s "
                    "AND application_name = %s AND state <> 'idle'", (database, APPLICATION_NAME))
        rows = cur.fetchall()
    conn.close()
    return rows


def wait_for_idle_pool(database_url: str, database: str, timeout: float = 15.0) -> list[tuple]:
    deadline = time.monotonic() + timeout
    while True:
        busy = busy_connections(database_url, database)
        if not busy or time.monotonic() > deadline:
            return busy
        time.sleep(0.2)


def check_database(database_url: str, client_decisions: list[tuple[str, str, str]] | None = None) -> list[str]:
    """Every decision has exactly one audit row and approvals agree; returns what is wrong (empty: all good)."""
    problems = []
    conn = psycopg2.connect(libpq(database_url))
    with conn, conn.cursor() as cur:
        cur.execute("SELECT order_id, stage_name, status, reviewer_email FROM review_stages "
                    "WHERE status IN ('approved', 'rejected')")
        decided = {(o, s): (st, r) for o, s, st, r in cur.fetchall()}
        cur.execute("SELECT order_id, stage, action, count(*) FROM audit_logs WHERE action = ANY(%s) "
                    "GROUP BY 1, 2, 3", (list(DECISION_ACTIONS),))
        audits = defaultdict(dict)
        for o, s, action, n in cur.fetchall():
            audits[(o, s)][action] = n
        cur.execute("SELECT order_id, stage, status, reviewer_email FROM approvals")
        approvals = {(o, s): (st, r) for o, s, st, r in cur.fetchall()}
    conn.close()
    for key, (status, reviewer_email) in decided.items():
        expected = "stage_approved" if status == "approved" else "stage_rejected"
        rows = audits.get(key, {})
        if rows.get(expected, 0) != 1 or sum(rows.values()) != 1:
            problems.append(f"{key}: {status} but decision audit rows {rows}")
        wanted = "approved" if status == "approved" else "pending"
        if approvals.get(key, (None, None))[0] != wanted or approvals[key][1] != reviewer_email:
            problems.append(f"{key}: {status} by {reviewer_email} but approvals says {approvals.get(key)}")
    for key, rows in audits.items():
        if key not in decided:
            problems.append(f"{key}: decision audit rows {rows} for a stage that is not decided")
    if client_decisions is not None:
        seen = {(o, s) for o, s, _ in client_decisions}
        if len(seen) != len(client_decisions):
            problems.append(f"clients saw {len(client_decisions) - len(seen)} stages decided twice")
        if seen != set(decided):
            problems.append(f"clients saw {len(seen)} decisions succeed, the database holds {len(decided)} "
                            f"(missing {sorted(set(decided) - seen)[:5]}, extra {sorted(seen - set(decided))[:5]})")
    return problems


# --- report --------------------------------------------------------------------------------------------------

def percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def report(samples: list[tuple[str, int, float]], seconds: float) -> int:
    by_kind = defaultdict(list)
    for kind, status, latency in samples:
        by_kind[kind].append((status, latency))
    errors = 0
    print(f"{'request':<12} {'count':>7} {'req/s':>7} {'errors':>7} {'409':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for kind in sorted(by_kind):
        rows = by_kind[kind]
        latencies = sorted(l * 1000 for _, l in rows)
        bad = sum(1 for status, _ in rows if status == 0 or status >= 500)
        conflicts = sum(1 for status, _ in rows if status == 409)
        errors += bad
        print(f"{kind:<12} {len(rows):>7} {len(rows) / seconds:>7.1f} {bad:>7} {conflicts:>5} "
              f"{percentile(latencies, 50):>8.1f} {percentile(latencies, 95):>8.1f} {percentile(latencies, 99):>8.1f}")
    total = len(samples)
    statuses = defaultdict(int)
    for _, status, _ in samples:
        statuses[status] += 1
    print(f"total: {total} requests, {total / seconds:.1f} req/s, {errors} errors; statuses {dict(sorted(statuses.items()))}")
    return errors


def run(server_url: str, seconds: float, orders: int, reviewers: int, workers: int, keep: bool) -> int:
    name, database_url = create_database(server_url)
    instance = Path(tempfile.mkdtemp(prefix="lhb-soak-"))
    proc = None
    try:
        made = prepare(database_url, instance, orders, reviewers)
        port = free_port()
        proc = start_gunicorn(app_env(database_url, instance), port, workers)
        base = f"http://127.0.0.1:{port}"
        print(f"soak: {seconds:.0f} s, {reviewers} reviewers + 1 pipeline poller, gunicorn {workers} workers, "
              f"{orders} orders, database {name}")
        if made["token"] is None:
            print("soak: the app has no API tokens; the pipeline process polls /login instead")
        out = multiprocessing.Queue()
        procs = [multiprocessing.Process(target=reviewer, args=(base, email, database_url, seconds, made["routes"],
                                                                 n, out)) for n, email in enumerate(made["emails"])]
        procs.append(multiprocessing.Process(target=pipeline, args=(base, made["token"], seconds, made["routes"], out)))
        for p in procs:
            p.start()
        samples, decided = [], []
        for _ in procs:
            s, d = out.get(timeout=seconds + 120)
            samples += s
            decided += d
        for p in procs:
            p.join(timeout=30)
        errors = report(samples, seconds)
        busy = wait_for_idle_pool(database_url, name)
        problems = check_database(database_url, decided)
        print(f"decisions seen by clients: {len(decided)}")
        print(f"pool back to idle: {'yes' if not busy else f'NO, busy: {busy}'}")
        for problem in problems:
            print(f"CHECK FAILED: {problem}")
        ok = errors == 0 and not busy and not problems and len(samples) > 0
        print("soak: all checks passed" if ok else "soak: FAILED")
        return 0 if ok else 1
    finally:
        if proc is not None:
            stop_gunicorn(proc)
        if not keep:
            drop_database(server_url, name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-url", default=os.environ.get("SOAK_SERVER_URL") or os.environ.get("TEST_DATABASE_URL"),
                        help="a PostgreSQL server URL (superuser); a database of its own is created there")
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--reviewers", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the soak database afterwards")
    args = parser.parse_args(argv)
    if not args.server_url:
        parser.error("--server-url (or SOAK_SERVER_URL / TEST_DATABASE_URL) is required")
    from lhb_review.config import normalise_url

    return run(normalise_url(args.server_url), args.seconds, args.orders, args.reviewers, args.workers, args.keep)


if __name__ == "__main__":
    sys.exit(main())
