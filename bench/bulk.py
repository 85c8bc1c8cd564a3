"""Bulk benchmark data: N orders with stages, approvals and audit history, streamed in through COPY.

Orders get ids of their own namespace (``LHB-B-0000001``), so bulk data never collides with demo
orders or real ones. The load is one transaction: it is there completely or not at all, which is
also what lets a second run continue after the highest bulk order already present.

When the load at least doubles the orders table, the indexes, unique constraints and the foreign key
of the four tables are dropped inside that transaction and rebuilt at its end (one sorted build per
index instead of millions of random inserts). The queue's counts trigger is off during the COPY too, and
the counts are recounted in one GROUP BY before the commit. The tables are locked for the duration, so
this is for benchmark and staging databases, not a server reviewers are using.
"""

from __future__ import annotations

import io
import json
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from lhb_review.ops.demo_assets import make_order_assets
from lhb_review.extensions import db
from lhb_review.review.counts import recount
from lhb_review.ops.seed import CHILD, FIRST, LAST, PIPELINE, PROJECTS, THEMES, ascii_slug

PREFIX = "LHB-B-"
TABLES = ("orders", "review_stages", "approvals", "audit_logs")
HISTORY_DAYS = 548  # about 18 months of orders
SAMPLE_SETS = 2  # drawn asset sets per project, shared by every bulk order of that project

ORDER_COLUMNS = (
    "order_id, platform, amazon_order_id, project, customer_first_name, customer_last_name, customer_email, "
    "order_date, status, ai_generation_started_at, character_hash, character_path, template_path, "
    "character_specs, book_specs, order_details, asset_prefix, r2_assets, created_at, updated_at"
)
STAGE_COLUMNS = (
    "order_id, stage_name, status, reviewed_at, reviewer_email, reviewer_notes, created_at, updated_at"
)
APPROVAL_COLUMNS = (
    "order_id, stage, status, approved_at, reviewer_email, reviewer_notes, created_at, updated_at"
)
AUDIT_COLUMNS = "order_id, action, stage, reviewer_email, details, ip_address, user_agent, created_at"

STAGE_NAMES = ("preBria", "postBria", "postPdf")
# How far along an order is (statuses of preBria, postBria, postPdf) and how often: about 2.5 stages
# per order, and half of the orders with a stage waiting for a reviewer (a large backlog on purpose:
# the queue is the page that has to stay fast).
SHAPES = (
    (("approved", "approved", "approved"), 35),
    (("approved", "approved", "pending"), 20),
    (("approved", "approved", "in_review"), 5),
    (("approved", "approved", "rejected"), 5),
    (("approved", "pending"), 12),
    (("approved", "in_review"), 3),
    (("approved", "rejected"), 4),
    (("pending",), 10),
    (("in_review",), 2),
    (("rejected",), 4),
)
REVIEWERS = tuple(
    f"{name}.reviewer@littleherobooks.com"
    for name in ("sam", "alex", "jo", "kim", "ola", "ren", "tess", "yusuf", "mina", "dario", "lou", "ines")
)
REJECT_NOTES = {
    "preBria": (
        "Hair colour drifts between the two views.",
        "Skin tone does not match the order.",
        "Glasses missing although ordered.",
    ),
    "postBria": (
        "Name is misspelled on page 2.",
        "Extra finger on the left hand, page 3.",
        "Character looks older than the ordered age.",
    ),
    "postPdf": (
        "Colours too dark for print on pages 1-3.",
        "Dedication text cut off at the margin.",
        "Wrong trim size in the PDF.",
    ),
}
USER_AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
)


def bulk_order_id(n: int) -> str:
    return f"{PREFIX}{n:07d}"


@dataclass
class BulkResult:
    requested: int
    existing: int
    created: int = 0
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    deferred_indexes: bool = False
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


def _text(value: str | None) -> str:
    """A value in COPY's text format: backslash, tab and newlines escaped; None is NULL."""
    if value is None:
        return "\\N"
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def _json(value) -> str:
    return _text(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S+00")


class Generator:
    """Rows of COPY text for orders n..m, deterministic for a given first order and clock."""

    def __init__(self, asset_sets: dict[str, list[dict]], now: datetime):
        self.now = now
        self.shapes = [shape for shape, _ in SHAPES]
        self.weights = [weight for _, weight in SHAPES]
        # JSON that many orders share is encoded once: assets per (project, set, stages submitted),
        # book specs per (child, project, cover).
        self.assets_json = {
            (project, k, depth): _json({name: sets[k][name] for name in STAGE_NAMES[:depth]})
            for project, sets in asset_sets.items()
            for k in range(len(sets))
            for depth in (1, 2, 3)
        }
        self.book_json = {
            (child, project, cover): _json(
                {
                    "title": f"{child} and the {THEMES[project].title()}",
                    "theme": THEMES[project],
                    "pages": 24,
                    "trim_size": "8.5 x 8.5 in",
                    "cover": cover,
                    "dedication": f"For {child}, with love.",
                    "language": "en",
                }
            )
            for child in CHILD
            for project in PROJECTS
            for cover in ("hardcover", "softcover")
        }
        self.slugs = {name: ascii_slug(name) for name in FIRST + LAST}

    def chunk(self, first: int, last: int) -> dict[str, bytes]:
        rnd = random.Random(first)
        orders, stages, approvals, audits = [], [], [], []
        shapes = rnd.choices(self.shapes, self.weights, k=last - first + 1)
        base = self.now - timedelta(days=HISTORY_DAYS)
        span = HISTORY_DAYS * 86400 - 4 * 86400  # the newest orders still have days to move along
        for n, shape in zip(range(first, last + 1), shapes):
            order_id = bulk_order_id(n)
            project = PROJECTS[n % len(PROJECTS)]
            platform = "amazon" if rnd.random() < 0.4 else "shopify"
            first_name, last_name, child = rnd.choice(FIRST), rnd.choice(LAST), rnd.choice(CHILD)
            email = f"{self.slugs[first_name]}.{self.slugs[last_name]}{n}@example.com"
            ordered = base + timedelta(seconds=rnd.randrange(span))
            specs = {
                "name": child,
                "age": rnd.randint(2, 9),
                "pronouns": rnd.choice(("she/her", "he/him", "they/them")),
                "skin_tone": rnd.choice(("light", "medium", "tan", "deep")),
                "hair": {
                    "color": rnd.choice(("black", "brown", "blonde", "red", "auburn")),
                    "style": rnd.choice(("curly", "straight", "braids", "short", "ponytail")),
                },
                "eyes": rnd.choice(("brown", "blue", "green", "hazel")),
                "glasses": rnd.random() < 0.25,
                "outfit": rnd.choice(("explorer", "astronaut", "knight", "pirate", "fairy")),
            }
            if "rejected" in shape:
                status = "needs_changes"
            elif shape == ("approved", "approved", "approved"):
                status = "approved"
            else:
                status = "in_review"
            order_ts = _ts(ordered)
            orders.append(
                "\t".join(
                    (
                        order_id,
                        platform,
                        f"{111 + n % 9}-{n * 7919 % 10_000_000:07d}-{n:07d}"
                        if platform == "amazon"
                        else "\\N",
                        project,
                        first_name,
                        last_name,
                        email,
                        order_ts,
                        status,
                        _ts(ordered + timedelta(minutes=5)),
                        f"chr_{n:08x}{rnd.getrandbits(32):08x}",
                        f"characters/{order_id}/character.json",
                        f"templates/{project}/v3",
                        _json(specs),
                        self.book_json[(child, project, "hardcover" if n % 3 else "softcover")],
                        '{"quantity":%d,"shipping":"%s","gift_wrap":%s,"currency":"USD","total":%s}'
                        % (
                            1 if n % 4 else 2,
                            "express" if n % 5 == 0 else "standard",
                            "true" if n % 7 == 0 else "false",
                            "34.99" if n % 4 else "69.98",
                        ),
                        f"orders/{order_id}",
                        self.assets_json[(project, n % SAMPLE_SETS, len(shape))],
                        order_ts,
                        order_ts,
                    )
                )
            )
            audits.append(
                f"{order_id}\torder_received\t\\N\t{PIPELINE}\t"
                f'{{"platform":"{platform}","project":"{project}"}}\t\\N\t\\N\t{order_ts}'
            )
            submitted = ordered + timedelta(minutes=rnd.randint(15, 90))
            for stage, stage_status in zip(STAGE_NAMES, shape):
                sub_ts = _ts(submitted)
                audits.append(
                    f'{order_id}\tstage_submitted\t{stage}\t{PIPELINE}\t{{"assets":'
                    f"{1 if stage == 'postPdf' else 2 + (stage == 'postBria')}}}\t\\N\t\\N\t{sub_ts}"
                )
                reviewer = REVIEWERS[rnd.randrange(len(REVIEWERS))]
                ip = f"10.20.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
                agent = USER_AGENTS[rnd.randrange(len(USER_AGENTS))]
                decided = submitted + timedelta(seconds=rnd.randint(600, 3 * 86400))
                if decided > self.now:
                    decided = self.now - timedelta(seconds=rnd.randint(1, 600))
                if stage_status in ("pending", "in_review"):
                    claimed_by = reviewer if stage_status == "in_review" else "\\N"
                    stages.append(
                        f"{order_id}\t{stage}\t{stage_status}\t\\N\t{claimed_by}\t\\N\t{sub_ts}\t{sub_ts}"
                    )
                    if stage_status == "in_review":
                        claim_ts = _ts(submitted + timedelta(seconds=rnd.randint(60, 3600)))
                        audits.append(
                            f"{order_id}\tstage_claimed\t{stage}\t{reviewer}\t{{}}\t{ip}\t{agent}\t{claim_ts}"
                        )
                    break
                dec_ts = _ts(decided)
                notes = rnd.choice(REJECT_NOTES[stage]) if stage_status == "rejected" else None
                notes_text = _text(notes)
                stages.append(
                    f"{order_id}\t{stage}\t{stage_status}\t{dec_ts}\t{reviewer}\t{notes_text}\t"
                    f"{sub_ts}\t{dec_ts}"
                )
                approved = stage_status == "approved"
                approvals.append(
                    f"{order_id}\t{stage}\t{'approved' if approved else 'pending'}\t"
                    f"{dec_ts if approved else chr(92) + 'N'}\t{reviewer}\t{notes_text}\t"
                    f"{dec_ts}\t{dec_ts}"
                )
                details = _json({"status_before": "pending", "status_after": stage_status, "notes": notes})
                audits.append(
                    f"{order_id}\tstage_{stage_status}\t{stage}\t{reviewer}\t{details}\t{ip}\t"
                    f"{agent}\t{dec_ts}"
                )
                submitted = decided + timedelta(minutes=rnd.randint(30, 360))
        return {
            "orders": ("\n".join(orders) + "\n").encode(),
            "review_stages": ("\n".join(stages) + "\n").encode() if stages else b"",
            "approvals": ("\n".join(approvals) + "\n").encode() if approvals else b"",
            "audit_logs": ("\n".join(audits) + "\n").encode(),
        }, {
            "orders": len(orders),
            "review_stages": len(stages),
            "approvals": len(approvals),
            "audit_logs": len(audits),
        }


COLUMNS = {
    "orders": ORDER_COLUMNS,
    "review_stages": STAGE_COLUMNS,
    "approvals": APPROVAL_COLUMNS,
    "audit_logs": AUDIT_COLUMNS,
}

SECONDARY_OBJECTS = """
SELECT c.relname, con.conname, con.contype, pg_get_constraintdef(con.oid), NULL
FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
WHERE c.relnamespace = current_schema()::regnamespace
  AND ((c.relname = ANY(%(tables)s) AND con.contype IN ('p', 'u', 'f'))
       -- foreign keys of other tables that reference these ones depend on their keys
       OR (con.contype = 'f' AND con.confrelid IN (
             SELECT oid FROM pg_class
             WHERE relname = ANY(%(tables)s) AND relnamespace = current_schema()::regnamespace)))
UNION
SELECT c.relname, i.relname, 'i', NULL, pg_get_indexdef(i.oid)
FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
WHERE c.relname = ANY(%(tables)s) AND c.relnamespace = current_schema()::regnamespace
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con
                  WHERE con.conindid = x.indexrelid AND con.contype IN ('p', 'u'))
"""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _drop_secondary(cur) -> list[tuple[str, str, str, str | None, str | None]]:
    """Drop the four tables' indexes and constraints (foreign keys first); return what rebuilds them."""
    cur.execute(SECONDARY_OBJECTS, {"tables": list(TABLES)})
    objects = cur.fetchall()
    for table, name, kind, _, _ in sorted(objects, key=lambda o: o[2] != "f"):
        if kind == "i":
            cur.execute(f"DROP INDEX {_quote(name)}")
        else:
            cur.execute(f"ALTER TABLE {_quote(table)} DROP CONSTRAINT {_quote(name)}")
    return objects


def _rebuild_secondary(cur, objects, progress: Callable[[str], None]) -> None:
    order = {"p": 0, "u": 1, "i": 2, "f": 3}  # a foreign key needs the unique key it references
    for table, name, kind, definition, indexdef in sorted(objects, key=lambda o: order[o[2]]):
        started = time.monotonic()
        if kind == "i":
            cur.execute(indexdef)
        else:
            cur.execute(f"ALTER TABLE {_quote(table)} ADD CONSTRAINT {_quote(name)} {definition}")
        progress(f"  rebuilt {name} in {time.monotonic() - started:.1f}s")


_drawn: dict[Path, dict[str, list[dict]]] = {}


def sample_assets(asset_root: Path) -> dict[str, list[dict]]:
    """A few real drawn asset sets per project, shared by the bulk orders, so their pages show pictures."""
    drawn = _drawn.get(asset_root)
    if drawn and all(
        (asset_root / a["key"]).exists()
        for sets in drawn.values()
        for stages in sets
        for items in stages.values()
        for a in items
    ):
        return drawn
    sets: dict[str, list[dict]] = {}
    for p, project in enumerate(PROJECTS):
        sets[project] = []
        for k in range(SAMPLE_SETS):
            child = CHILD[(p * SAMPLE_SETS + k) % len(CHILD)]
            specs = {
                "name": child,
                "skin_tone": ("light", "medium", "tan", "deep")[(p + k) % 4],
                "hair": {"color": ("brown", "black", "red", "blonde")[(p + 2 * k) % 4]},
                "outfit": ("explorer", "astronaut", "knight", "pirate", "fairy")[(p + k) % 5],
            }
            book = {"theme": THEMES[project]}
            sets[project].append(
                make_order_assets(asset_root, f"{PREFIX}SAMPLE-{p}{k}", project, specs, book)
            )
    _drawn[asset_root] = sets
    return sets


def existing_bulk_orders(cur) -> int:
    """The highest bulk order number present (bulk loads are contiguous from 1)."""
    cur.execute(
        "SELECT max(order_id) FROM orders WHERE order_id LIKE %s AND order_id NOT LIKE %s",
        (PREFIX + "%", PREFIX + "SAMPLE%"),
    )
    highest = cur.fetchone()[0]
    return int(highest[len(PREFIX) :]) if highest else 0


def load_bulk(
    count: int,
    asset_root: Path,
    *,
    chunk_size: int = 20_000,
    now: datetime | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> BulkResult:
    """Make sure bulk orders 1..count exist: create the missing ones (with stages, approvals, audit).

    Writes only rows for new bulk order ids, in one transaction, then ANALYZEs the tables.
    """
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    started = time.monotonic()
    generator = Generator(sample_assets(asset_root), now)
    raw = db.engine.raw_connection()
    try:
        conn = raw.driver_connection
        cur = conn.cursor()
        # No statement timeout for the load; a bounded wait for the table locks (others' transactions).
        cur.execute("SET statement_timeout = 0; SET lock_timeout = '30s'; SET maintenance_work_mem = '256MB'")
        existing = existing_bulk_orders(cur)
        result = BulkResult(requested=count, existing=existing)
        if existing >= count:
            conn.rollback()
            return result
        cur.execute("SELECT count(*) FROM orders")
        total_orders = cur.fetchone()[0]
        result.seconds["prepare"] = time.monotonic() - started

        mark = time.monotonic()
        cur.execute("LOCK TABLE orders, review_stages, approvals, audit_logs IN SHARE ROW EXCLUSIVE MODE")
        to_load = count - existing
        objects = []
        if to_load >= total_orders:
            result.deferred_indexes = True
            objects = _drop_secondary(cur)
            progress(f"Deferred {len(objects)} indexes and constraints until the rows are in.")
        # The stage-order triggers would check each of millions of rows one at a time; the generated stages
        # are in order by construction, and one check over the table below proves it before the commit. The counts
        # trigger would insert a row per stage: the counts are recounted in one GROUP BY at the end instead.
        cur.execute("ALTER TABLE review_stages DISABLE TRIGGER review_stages_stage_order; "
                    "ALTER TABLE review_stages DISABLE TRIGGER review_stages_counts; "
                    "ALTER TABLE approvals DISABLE TRIGGER approvals_follow_review")
        _copy_all(cur, generator, existing + 1, count, chunk_size, result, progress)
        cur.execute("ALTER TABLE review_stages ENABLE TRIGGER review_stages_stage_order; "
                    "ALTER TABLE review_stages ENABLE TRIGGER review_stages_counts; "
                    "ALTER TABLE approvals ENABLE TRIGGER approvals_follow_review")
        result.seconds["copy"] = time.monotonic() - mark

        if objects:
            mark = time.monotonic()
            _rebuild_secondary(cur, objects, progress)
            result.seconds["indexes"] = time.monotonic() - mark
        # After the indexes are back and the planner knows the table's new size: the check looks up each
        # approved later stage's earlier stages, which without the order_id index (or with the statistics
        # of the empty table, which make a scan look cheaper) is a scan of the table per row: hours at a
        # million orders.
        mark = time.monotonic()
        cur.execute("ANALYZE review_stages")
        cur.execute("SELECT order_id, stage_name, waiting_for FROM review_stage_order_violations() LIMIT 1")
        broken = cur.fetchone()
        if broken:
            raise RuntimeError(f"bulk data breaks the stage order: order {broken[0]}: {broken[1]} is approved "
                               f"while {broken[2]} is not")
        result.seconds["stage order"] = time.monotonic() - mark
        mark = time.monotonic()
        recount(cur.execute)  # the queue's counts, exact again before the commit
        result.seconds["counts"] = time.monotonic() - mark
        mark = time.monotonic()
        conn.commit()
        result.seconds["commit"] = time.monotonic() - mark

        mark = time.monotonic()
        conn.autocommit = True
        cur.execute("ANALYZE orders, review_stages, approvals, audit_logs, stage_count_deltas")
        result.seconds["analyze"] = time.monotonic() - mark
        result.created = to_load
        return result
    except BaseException:
        raw.driver_connection.rollback()
        raise
    finally:
        conn = raw.driver_connection
        if not conn.closed:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("RESET statement_timeout; RESET lock_timeout; RESET maintenance_work_mem")
            conn.autocommit = False
        raw.close()


def _copy_all(
    cur,
    generator: Generator,
    first: int,
    last: int,
    chunk_size: int,
    result: BulkResult,
    progress: Callable[[str], None],
) -> None:
    """COPY chunk after chunk while a thread generates the next one (the server works meanwhile)."""
    ready: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def produce():
        try:
            for start in range(first, last + 1, chunk_size):
                if stop.is_set():
                    return
                ready.put(generator.chunk(start, min(start + chunk_size - 1, last)))
            ready.put(None)
        except BaseException as exc:  # handed to the consumer, which raises it
            ready.put(exc)

    producer = threading.Thread(target=produce, name="bulk-generator", daemon=True)
    producer.start()
    done = 0
    began = time.monotonic()
    try:
        while True:
            item = ready.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            data, counts = item
            for table in TABLES:
                if data[table]:
                    cur.copy_expert(
                        f"COPY {table} ({COLUMNS[table]}) FROM STDIN", io.BytesIO(data[table]), size=1 << 20
                    )
                result.rows[table] += counts[table]
            done += counts["orders"]
            if done % (chunk_size * 10) == 0 or first + done > last:
                rate = done / max(time.monotonic() - began, 1e-6)
                progress(f"  {done:,} of {last - first + 1:,} orders copied ({rate:,.0f} orders/s)")
    finally:
        stop.set()
        while producer.is_alive():
            try:
                ready.get_nowait()
            except queue.Empty:
                producer.join(timeout=0.1)
