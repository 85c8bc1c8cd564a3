"""The scaled-out run: two app servers reading from a streaming replica, beside one app server on the primary.

    .venv/bin/python bench/scaled.py --orders 20000

It starts a private primary and a streaming standby on loopback ports (bench/cluster.py), loads the bulk
orders on the primary and waits for the standby to replay them, then drives the same bounded load twice:

  one server              one gunicorn (2 workers) on the primary alone, as bench/run.py serves it;
  two servers             two gunicorns (1 worker each, the same total) on the primary alone;
  two servers, replica    the same two with DATABASE_REPLICA_URLS naming the standby.

The client alternates its requests between the servers, as a round-robin proxy would, and the reviewer's
session cookie works on both (the app servers keep no state).

Scenarios: the queue fragment, the API's stage-status poll, and a decision followed at once by the queue as
the same reviewer (read-your-writes). For each it prints requests per second and p50/p95 latency, and, from
each server's /metrics, which server answered the reads and how many fell back to the primary.

On a 2-core machine every server, the standby and the load share the same two cores: the figures show the
routing and what it costs, not added capacity.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cluster import ReplicatedServers, pg_bin_dir
from bench.run import (
    BENCH_EMAIL,
    BENCH_PASSWORD,
    CSRF_RE,
    Gunicorn,
    Report,
    api_token,
    app_env,
    ensure_bench_user,
    load_fixtures,
    machine_memory,
    platform_line,
    prepare_database,
    with_database,
)

METRIC_RE = re.compile(r'^(lhb_db_read_requests_total|lhb_db_replica_fallbacks_total)\{(\w+)="([^"]*)"\} ([0-9.e+]+)$',
                       re.MULTILINE)


class Client:
    """One keep-alive connection per server; requests go round robin over the servers, with one cookie."""

    def __init__(self, ports: list[int], cookie: str = "", csrf: str = ""):
        self.ports = ports
        self.cookie, self.csrf = cookie, csrf
        self.conns = {port: http.client.HTTPConnection("127.0.0.1", port, timeout=30) for port in ports}
        self.turn = itertools.cycle(ports)

    def request(self, method: str, path: str, body: str | None = None, headers: dict | None = None,
                port: int | None = None):
        port = port or next(self.turn)
        headers = dict(headers or {})
        if self.cookie:
            headers["Cookie"] = self.cookie
        if body is not None:
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        conn = self.conns[port]
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
        except (http.client.HTTPException, OSError):
            conn.close()
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
        data = response.read().decode("utf-8", "replace")
        for value in response.headers.get_all("Set-Cookie") or []:
            pair = value.split(";", 1)[0]
            if pair.startswith("session="):
                self.cookie = pair
        return response.status, data

    def login(self) -> None:
        port = self.ports[0]
        _, page = self.request("GET", "/login", port=port)
        form = urllib.parse.urlencode({"csrf_token": CSRF_RE.search(page).group(1), "email": BENCH_EMAIL,
                                       "password": BENCH_PASSWORD})
        status, _ = self.request("POST", "/login", form, port=port)
        if status != 302:
            raise RuntimeError(f"bench login failed with HTTP {status}")
        _, page = self.request("GET", "/queue", port=port)
        match = CSRF_RE.search(page) or re.search(r'"X-CSRFToken"\s*:\s*"([^"]+)"', page)
        self.csrf = match.group(1) if match else ""


def metrics(ports: list[int]) -> dict[tuple[str, str], float]:
    """The read counters summed over the servers: {(metric, label value): count}."""
    totals: dict[tuple[str, str], float] = {}
    for port in ports:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        for name, _label, value, number in METRIC_RE.findall(text):
            key = (name.removeprefix("lhb_db_").removesuffix("_total"), value)
            totals[key] = totals.get(key, 0.0) + float(number)
    return totals


def drive(ports, cookie, csrf, work, *, concurrency: int, seconds: float, limit: int):
    """Run ``work(client, i)`` from ``concurrency`` threads for ``seconds`` or ``limit`` calls; latencies in ms."""
    latencies: list[float] = []
    errors = [0]
    counter = itertools.count()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop():
        client = Client(ports, cookie, csrf)
        while time.monotonic() < deadline:
            i = next(counter)
            if i >= limit:
                return
            started = time.perf_counter()
            ok = work(client, i)
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                errors[0] += 0 if ok else 1

    began = time.monotonic()
    threads = [threading.Thread(target=loop) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors[0], time.monotonic() - began


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) >= 2 else (values[0] if values else 0.0)


def run_configuration(label, servers, fx, token, args, out, decisions):
    ports = [server.port for server in servers]
    lead = Client(ports)
    lead.login()
    stages = itertools.cycle(fx.stages)
    htmx = {"HX-Request": "true"}

    def queue(client, i):
        status, _ = client.request("GET", "/queue", headers=htmx)
        return status == 200

    def poll(client, i):
        order_id, stage = next(stages)
        status, _ = client.request("GET", f"/api/v1/orders/{order_id}/stages/{stage}",
                                   headers={"Authorization": f"Bearer {token}"})
        return status == 200

    def decide_then_read(client, i):
        if i >= len(decisions):
            return False
        order_id, stage = decisions[i]
        body = urllib.parse.urlencode({"csrf_token": client.csrf, "notes": "bench"})
        status, _ = client.request("POST", f"/orders/{order_id}/stages/{stage}/approve", body)
        read, _ = client.request("GET", "/queue?status=approved", headers=htmx)
        return status in (302, 303) and read == 200

    scenarios = [("queue fragment", queue, args.requests), ("stage-status poll (API)", poll, args.requests),
                 ("decision, then the queue at once", decide_then_read, len(decisions))]
    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    out(f"{label}: {len(servers)} app server(s), ports {', '.join(map(str, ports))}; machine load {load}")
    for name, work, limit in scenarios:
        drive(ports, lead.cookie, lead.csrf, work, concurrency=args.concurrency, seconds=args.warmup,
              limit=0 if work is decide_then_read else limit)
        before = metrics(ports)
        latencies, errors, elapsed = drive(ports, lead.cookie, lead.csrf, work, concurrency=args.concurrency,
                                           seconds=args.seconds, limit=limit)
        after = metrics(ports)
        moved = {key: after.get(key, 0) - before.get(key, 0) for key in after if after.get(key, 0) != before.get(key, 0)}
        reads = ", ".join(f"{value}={int(n)}" for (kind, value), n in sorted(moved.items()) if kind == "read_requests")
        falls = ", ".join(f"{value}={int(n)}" for (kind, value), n in sorted(moved.items()) if kind == "replica_fallbacks")
        out(f"  {name:34} {len(latencies) / elapsed:7.1f} req/s  p50 {pct(latencies, 50):6.1f} ms  "
            f"p95 {pct(latencies, 95):6.1f} ms  ({len(latencies)} requests, {errors} errors)")
        if reads or falls:
            out(f"  {'':34} reads: {reads or '-'}; fallbacks to the primary: {falls or '-'}")
    out()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=20_000, help="bulk orders (default 20,000)")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per scenario (default 8)")
    parser.add_argument("--requests", type=int, default=3000, help="most requests per scenario (default 3000)")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads (default 4)")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds of warm-up per scenario (default 1.5)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the two configurations this many times, alternating (default 1): the spread "
                             "between rounds is the noise of a shared machine")
    parser.add_argument("--max-lag-ms", type=int, default=1000, help="REPLICA_MAX_LAG_MS (default 1000)")
    parser.add_argument("--no-save", action="store_true", help="print only; do not write bench/results/")
    args = parser.parse_args()

    bin_dir = pg_bin_dir()
    if bin_dir is None:
        raise SystemExit("PostgreSQL server binaries (pg_basebackup) are not installed")
    out = Report()
    stamp = datetime.now(timezone.utc)
    out(f"lhb-review scaled-out run, {stamp:%Y-%m-%d %H:%M} UTC")
    out(f"Machine: {os.cpu_count()} cores, {machine_memory()}; {platform_line()}")
    out("Everything below shares these cores: primary, standby, app servers and the load. It shows routing "
        "and its cost, not capacity.")
    workdir = Path(tempfile.mkdtemp(prefix="lhb-scaled-"))
    cluster = ReplicatedServers(bin_dir)
    started = []
    try:
        primary_url = cluster.primary.url().replace("postgresql+psycopg2://", "postgresql://", 1)
        db_url = primary_url
        env = app_env(db_url, workdir)
        args.server_url, args.database = with_database(primary_url, "postgres"), "lhb_replicas"
        prepare_database(args, out, env, db_url)
        ensure_bench_user(db_url)
        token = api_token(env)
        cluster.wait_for_replay(timeout=600)
        fx = load_fixtures(db_url, decisions=3 * args.requests)
        out(f"Data: {args.orders:,} bulk orders, {fx.waiting:,} stages waiting; standby caught up")
        out(f"Load: {args.concurrency} keep-alive client threads, {args.warmup:g}s warm-up, then at most "
            f"{args.requests:,} requests or {args.seconds:g}s per scenario")
        out()
        share = len(fx.approve) // (3 * args.rounds)
        batches = iter([fx.approve[i * share:(i + 1) * share] for i in range(3 * args.rounds)])
        replica_env = app_env(db_url, workdir, DATABASE_REPLICA_URLS=cluster.standby.url(),
                              REPLICA_MAX_LAG_MS=str(args.max_lag_ms),
                              REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
                              RATELIMIT_KEY_PREFIX=f"lhb-bench-{int(time.time())}")
        configurations = [("One server, primary only", 1, 2, env),
                          ("Two servers, primary only", 2, 1, env),
                          ("Two servers, reads from the standby", 2, 1, replica_env)]
        for round_number in range(1, args.rounds + 1):
            suffix = f" (round {round_number})" if args.rounds > 1 else ""
            for label, count, workers, server_env in configurations:
                servers = []
                for n in range(1, count + 1):
                    metrics_dir = Path(tempfile.mkdtemp(prefix="metrics-", dir=workdir))
                    servers.append(Gunicorn(dict(server_env, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)), workdir,
                                            workers=workers, log_name=f"gunicorn-{n}.log"))
                    started.append(servers[-1])
                run_configuration(label + suffix, servers, fx, token, args, out, next(batches))
                for server in servers:
                    server.stop()
                    started.remove(server)
    finally:
        for server in started:
            server.stop()
        cluster.close()
    if not args.no_save:
        path = ROOT / "bench" / "results" / f"{stamp:%Y-%m-%d}-scaled-{args.orders}.txt"
        out.save(path)
        print(f"saved {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
