"""Where a request's time goes: the benchmark's scenarios profiled in-process, on the same bulk database.

    .venv/bin/python bench/hotspots.py                   # 1,000,000 orders (database lhb_bench, built by run.py)
    .venv/bin/python bench/hotspots.py --orders 50000    # the database of `bench/run.py --orders 50000`

For each scenario it signs in as the bench reviewer, warms up, measures the app's CPU per request without
a profiler (time.process_time over the requests), then runs the same requests under cProfile and splits
the profiled time into parts: waiting on PostgreSQL (psycopg2's execute, which includes the server's time),
SQLAlchemy, templates (Jinja and MarkupSafe), Flask and Werkzeug with their extensions, lhb-review's own
code, and the rest (a built-in counts where it was called from); with the functions that take most time
of their own. The profiler slows Python down
more than it slows the database, so the parts are shares of a profiled request, not milliseconds of a real
one. Requests go through Flask's test client: no HTTP parsing and no gunicorn, which the bare route of
bench/run.py pays too. The output goes to stdout and to bench/results/<date>[-N]-hotspots.txt.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import sysconfig
import time
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STDLIB = sysconfig.get_paths()["stdlib"]
sys.path.insert(0, str(ROOT))

from bench import run as bench  # noqa: E402  (after the path is set, like run.py)

PARTS = (
    ("PostgreSQL (psycopg2 execute, round trip and server time)", ("psycopg2",)),
    ("SQLAlchemy", ("/sqlalchemy/",)),
    ("templates (Jinja, MarkupSafe)", ("/jinja2/", "/markupsafe/", "/templates/")),
    ("Flask, Werkzeug and extensions", ("/flask/", "/werkzeug/", "/flask_login/", "/flask_wtf/",
                                        "/flask_limiter/", "/flask_sqlalchemy/", "/limits/", "/itsdangerous/")),
    ("pydantic", ("/pydantic",)),
    ("lhb-review", ("/lhb_review/",)),
)


def part_of(filename: str, name: str) -> str:
    where = f"{filename} {name}"
    for label, needles in PARTS:
        if any(needle in where for needle in needles):
            return label
    return "other (standard library, redis, prometheus-client, ...)"


class Client:
    """The bench reviewer signed in through the app's own login form."""

    def __init__(self, application):
        self.client = application.test_client()
        page = self.client.get("/login").get_data(as_text=True)
        token = bench.CSRF_RE.search(page).group(1)
        response = self.client.post("/login", data={"email": bench.BENCH_EMAIL, "password": bench.BENCH_PASSWORD,
                                                     "csrf_token": token})
        if response.status_code != 302:
            raise SystemExit(f"signing in as {bench.BENCH_EMAIL} failed: HTTP {response.status_code}")
        self.csrf = ""

    def refresh_csrf(self, path: str) -> None:
        found = bench.CSRF_RE.search(self.client.get(path).get_data(as_text=True))
        self.csrf = found.group(1) if found else ""


def scenarios(fx: bench.Fixtures, token: str | None, client: Client, count: int) -> list[tuple]:
    """(name, method, paths, headers, body) as bench/run.py measures them."""
    htmx = {"HX-Request": "true"}
    stage = fx.stages[0]
    presence = bench.presence_path(stage)
    etag = client.client.get(presence, headers=htmx).headers.get("ETag", "")
    post = {"HX-Request": "true", "X-CSRFToken": client.csrf}
    found = [
        ("queue page", "GET", ["/queue"], {}, None),
        ("queue fragment, first page", "GET", ["/queue"], htmx, None),
        ("stage review page", "GET", [f"/orders/{o}/stages/{s}" for o, s in fx.stages], {}, None),
        ("approve (htmx)", "POST", [f"/orders/{o}/stages/{s}/approve" for o, s in fx.approve], post,
         {"notes": ""}),
        ("reject (htmx)", "POST", [f"/orders/{o}/stages/{s}/reject" for o, s in fx.reject], post,
         {"notes": "Hair colour drifts between views.", "reasons": "character_drift"}),
        ("claim bar poll, unchanged (304)", "GET", [presence], {**htmx, "If-None-Match": etag}, None),
    ]
    if token:
        found.append(("API stage-status poll", "GET", [f"/api/v1/orders/{o}/stages/{s}" for o, s in fx.stages],
                      {"Authorization": f"Bearer {token}"}, None))
    return found


def requests_of(paths: list[str], count: int, reuse: bool):
    if reuse:
        return [paths[i % len(paths)] for i in range(count)]
    return paths[:count]


def profile_one(out: bench.Report, client: Client, name: str, method: str, paths: list[str], headers: dict,
                body: dict | None, count: int) -> None:
    reuse = method == "GET"
    if not reuse:  # each decision needs a stage nobody decided yet: as many as the database still has
        count = min(count, (len(paths) - 20) // 2)
        if count < 20:
            out(f"{name}: not enough undecided stages left to decide ({len(paths)})")
            return
    send = (lambda p: client.client.get(p, headers=headers)) if method == "GET" else \
        (lambda p: client.client.post(p, data=body, headers=headers))
    warm, timed, profiled = (paths[:20], paths[20:20 + count], paths[20 + count:20 + 2 * count]) if not reuse \
        else (requests_of(paths, 20, True), requests_of(paths, count, True), requests_of(paths, count, True))
    statuses = {send(p).status_code for p in warm}
    started = time.process_time()
    for p in timed:
        send(p)
    cpu_ms = (time.process_time() - started) * 1000 / len(timed)
    profiler = cProfile.Profile()
    profiler.enable()
    for p in profiled:
        send(p)
    profiler.disable()
    stats = pstats.Stats(profiler)
    parts: dict[str, float] = {}
    total = 0.0
    rows = []
    for (filename, line, function), (_, calls, own, _cumulative, callers) in stats.stats.items():
        total += own
        rows.append((own, calls, f"{short(filename)}:{line}({function})"))
        label = part_of(filename, function)
        if not label.startswith("other") or not callers:
            parts[label] = parts.get(label, 0.0) + own
            continue
        # A built-in or standard-library function counts where it was called from (escape's hasattr is
        # template time), split by the time each caller spent in it.
        spent = sum(c[2] for c in callers.values()) or 1.0
        for (c_file, _, c_function), c_stats in callers.items():
            c_label = part_of(c_file, c_function)
            parts[c_label] = parts.get(c_label, 0.0) + own * c_stats[2] / spent
    out(f"== {name}: {len(timed)} requests, HTTP {', '.join(map(str, sorted(statuses)))}, "
        f"app CPU {cpu_ms:.2f} ms per request without the profiler")
    for label, seconds in sorted(parts.items(), key=lambda kv: -kv[1]):
        out(f"   {100 * seconds / total:5.1f}%  {label}")
    out("   functions with the most time of their own (per request, profiled):")
    for own, calls, where in sorted(rows, reverse=True)[:12]:
        out(f"   {1000 * own / len(profiled):7.3f} ms  {calls / len(profiled):7.1f} calls  {where}")
    out()


def short(filename: str) -> str:
    """A file's name as the report shows it: from the package (or the project, or the standard library) on."""
    for marker, prefix in (("site-packages/", ""), (str(ROOT) + "/", ""), (STDLIB + "/", "stdlib/")):
        if marker in filename:
            return prefix + filename.split(marker, 1)[1]
    return filename


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1_000_000, help="the bulk database's size (default 1,000,000)")
    parser.add_argument("--database", help="database name (default as bench/run.py names it)")
    parser.add_argument("--server-url", default=None, help="PostgreSQL server (default as bench/run.py)")
    parser.add_argument("--requests", type=int, default=300, help="requests per scenario and pass (default 300)")
    parser.add_argument("--no-save", action="store_true", help="print only; do not write bench/results/")
    args = parser.parse_args()
    server = args.server_url or bench.DEFAULT_SERVER
    name = args.database or ("lhb_bench" if args.orders == 1_000_000 else f"lhb_bench_{args.orders}")
    db_url = bench.with_database(server, name)
    out = bench.Report()
    stamp = datetime.now(timezone.utc)
    out(f"lhb-review profile, {stamp:%Y-%m-%d %H:%M} UTC, database {name}")
    out(f"Machine: {bench.platform_line()}")
    workdir = ROOT / "instance" / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    env = bench.app_env(db_url, workdir)
    if bench.ensure_database(server, name):
        raise SystemExit(f"database {name} did not exist: build it with bench/run.py --orders {args.orders} first")
    bench.flask_cli(env, "db", "upgrade")
    bench.ensure_bench_user(db_url)
    bench.flask_cli(env, "counts", "compact")  # as the deployment's workers keep them (and as run.py does)
    token = bench.api_token(env)
    fx = bench.load_fixtures(db_url, decisions=3 * args.requests)
    out(f"Requests: {args.requests} timed, then {args.requests} profiled, per scenario, after 20 to warm up")
    out()

    from bench.instruments import create_bench_app

    application = create_bench_app({"TESTING": False}, env=env)
    client = Client(application)
    client.refresh_csrf(f"/orders/{urllib.parse.quote(fx.stages[0][0])}/stages/{fx.stages[0][1]}")
    for scenario in scenarios(fx, token, client, args.requests):
        profile_one(out, client, *scenario, count=args.requests)
    if not args.no_save:
        suffix = "" if args.orders == 1_000_000 else f"-{args.orders}"
        path = ROOT / "bench" / "results" / f"{stamp:%Y-%m-%d}{suffix}-hotspots.txt"
        out.save(path)
        print(f"Written to {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
