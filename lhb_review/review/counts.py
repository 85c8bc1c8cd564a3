"""How many stages are in each stage and status: exact, and one small read whatever the size of the queue.

The database keeps the numbers (migration 0014_stage_counts): every insert, status change or delete of a
review_stages row, and every change of an order's platform or project, inserts -1 and +1 rows into
stage_count_deltas in the same transaction. Nothing ever updates a shared row, so decisions do not queue
behind one another. A count is the sum of its combination's rows.

``compact`` sums the rows into one per combination (run it every minute or so: the checks worker and the
webhook worker do it as they go, ``flask counts compact`` from cron otherwise). ``rebuild`` recounts from
review_stages and orders, for after a load that bypassed the triggers. Reads never write.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select, text

from lhb_review.core.stages import STAGE_NAMES, WAITING, StageStatus
from lhb_review.core.tx import transaction
from lhb_review.extensions import db
from lhb_review.models import StageCountDelta

# pg_try_advisory_xact_lock key of compaction (and rebuild): "LHBCNT" in ASCII.
COMPACT_LOCK = 0x4C4842434E54
COMPACT_EVERY_SECONDS = 60.0

COMPACT_SQL = text("""
WITH gone AS (
    DELETE FROM stage_count_deltas RETURNING stage_name, status, platform, project, n
), kept AS (
    INSERT INTO stage_count_deltas (stage_name, status, platform, project, n)
    SELECT stage_name, status, platform, project, sum(n) FROM gone
     GROUP BY stage_name, status, platform, project HAVING sum(n) <> 0
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS removed, (SELECT count(*) FROM kept) AS kept
""")

# Writers of stages and orders wait (SHARE), so nothing changes between the delete and the recount; compaction
# waits too (EXCLUSIVE on the deltas); readers go on reading the old rows until the commit.
RECOUNT = (
    "LOCK TABLE orders, review_stages IN SHARE MODE",
    "LOCK TABLE stage_count_deltas IN EXCLUSIVE MODE",
    "DELETE FROM stage_count_deltas",
    "INSERT INTO stage_count_deltas (stage_name, status, platform, project, n) "
    "SELECT s.stage_name, s.status, o.platform, o.project, count(*) "
    "FROM review_stages s JOIN orders o ON o.order_id = s.order_id "
    "GROUP BY s.stage_name, s.status, o.platform, o.project",
)


@dataclass
class StageCounts:
    """One stage's counts per status (every status present, 0 when none)."""

    stage: str
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def waiting(self) -> int:
        return sum(self.by_status[s.value] for s in WAITING)


def stage_counts(platform: str | None = None, project: str | None = None) -> list[StageCounts]:
    """Exact counts per stage and status, of one platform and/or project when given, in one statement."""
    stmt = (select(StageCountDelta.stage_name, StageCountDelta.status, func.sum(StageCountDelta.n))
            .group_by(StageCountDelta.stage_name, StageCountDelta.status))
    if platform:
        stmt = stmt.where(StageCountDelta.platform == platform)
    if project:
        stmt = stmt.where(StageCountDelta.project == project)
    found = {(stage, status): int(n) for stage, status, n in db.session.execute(stmt).all()}
    return [StageCounts(stage, {st.value: found.get((stage, st.value), 0) for st in StageStatus})
            for stage in STAGE_NAMES]


@dataclass(frozen=True)
class Compaction:
    removed: int  # delta rows summed away
    kept: int     # rows left, one per combination whose count is not 0


def compact() -> Compaction | None:
    """Replace the delta rows with one row per combination, in one statement; None when another compaction
    or a rebuild holds the lock. Safe while decisions insert rows: the statement deletes only the rows its
    snapshot sees and inserts their sums in the same transaction, so rows committed meanwhile stay as they
    are and every reader sees either the rows before or their sums."""
    with transaction():
        if not db.session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": COMPACT_LOCK}):
            return None
        removed, kept = db.session.execute(COMPACT_SQL).one()
    return Compaction(removed, kept)


def rebuild() -> int:
    """Recount from review_stages and orders (after a bulk load that disabled the triggers, or to repair).
    Stage and order changes wait for it (the tables are locked in SHARE mode); readers do not. Returns the
    number of combinations."""
    with transaction():
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": COMPACT_LOCK})
        recount(lambda sql: db.session.execute(text(sql)))
        return db.session.scalar(select(func.count()).select_from(StageCountDelta))


def recount(execute: Callable[[str], object]) -> None:
    """The rebuild itself, inside the caller's transaction: ``execute`` runs one SQL string (a session's, or
    a DB-API cursor's, as in the bulk loader). The counts are deleted and recounted in one GROUP BY."""
    for sql in RECOUNT:
        execute(sql)


class Compactor:
    """For a worker loop: ``maybe()`` compacts when ``every`` seconds have passed since the last time."""

    def __init__(self, every: float = COMPACT_EVERY_SECONDS, clock=time.monotonic):
        self.every, self.clock = every, clock
        self.last: float | None = None

    def maybe(self) -> Compaction | None:
        now = self.clock()
        if self.last is not None and now - self.last < self.every:
            return None
        self.last = now
        return compact()
