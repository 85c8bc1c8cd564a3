"""Read-only figures for operators and reviewers: the seed's useful queries and the review statistics."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import text

from lhb_review.extensions import db

DECIDED = ("stage_approved", "stage_rejected")
# Events after which a stage waits for a (new) decision; the latest one before a decision starts its clock.
SUBMITTED = ("stage_submitted", "stage_reopened", "stage_resubmitted", "approval_voided")
BACKLOG_BUCKETS = (
    ("< 1 hour", timedelta(hours=1)),
    ("1–4 hours", timedelta(hours=4)),
    ("4–24 hours", timedelta(hours=24)),
    ("1–3 days", timedelta(days=3)),
    ("3–7 days", timedelta(days=7)),
    ("> 7 days", None),
)
STAGES = ("preBria", "postBria", "postPdf")


def active_connections(conn) -> list[dict]:
    return [dict(r._mapping) for r in conn.execute(text(
        "SELECT pid, usename AS user, application_name AS application, client_addr, state, "
        "date_trunc('second', now() - backend_start) AS connected_for, "
        "left(regexp_replace(query, '\\s+', ' ', 'g'), 60) AS last_query "
        "FROM pg_stat_activity WHERE datname = current_database() ORDER BY backend_start"
    ))]


def table_sizes(conn) -> list[dict]:
    return [dict(r._mapping) for r in conn.execute(text(
        "SELECT t.schemaname AS schema, t.tablename AS table, "
        "pg_size_pretty(pg_total_relation_size(format('%I.%I', t.schemaname, t.tablename))) AS size, "
        "coalesce(s.n_live_tup, 0) AS approx_rows "
        "FROM pg_tables t LEFT JOIN pg_stat_user_tables s ON s.schemaname = t.schemaname AND s.relname = t.tablename "
        "WHERE t.schemaname = current_schema() "
        "ORDER BY pg_total_relation_size(format('%I.%I', t.schemaname, t.tablename)) DESC, t.tablename"
    ))]


def recent_errors(conn, limit: int = 10) -> list[dict]:
    return [dict(r._mapping) for r in conn.execute(text(
        "SELECT date_trunc('second', created_at) AS created_at, error_id, severity, error_type, "
        "left(message, 60) AS message, resolved, request_id "
        "FROM error_logs ORDER BY created_at DESC LIMIT :limit"
    ), {"limit": limit})]


def recent_approvals(conn, limit: int = 10) -> list[dict]:
    # The seed orders by approved_at DESC; NULLS LAST keeps never-approved rows from filling the list.
    return [dict(r._mapping) for r in conn.execute(text(
        "SELECT order_id, stage, status, date_trunc('second', approved_at) AS approved_at, reviewer_email "
        "FROM approvals ORDER BY approved_at DESC NULLS LAST LIMIT :limit"
    ), {"limit": limit})]


@dataclass
class ReviewerFigures:
    reviewer: str
    by_stage: dict[str, dict[str, int]] = field(default_factory=dict)
    in_batches: int = 0  # decisions made in a batch (audit details.batch); the rest were made one at a time

    @property
    def approved(self) -> int:
        return sum(v["approved"] for v in self.by_stage.values())

    @property
    def rejected(self) -> int:
        return sum(v["rejected"] for v in self.by_stage.values())

    @property
    def total(self) -> int:
        return self.approved + self.rejected

    @property
    def approval_rate(self) -> float | None:
        return self.approved / self.total if self.total else None

    @property
    def single(self) -> int:
        return self.total - self.in_batches


@dataclass
class Turnaround:
    stage: str  # "all" for every stage together
    decisions: int
    median_seconds: float | None
    p90_seconds: float | None


@dataclass
class ReviewStats:
    since: datetime
    days: int
    reviewers: list[ReviewerFigures]
    stage_totals: dict[str, dict[str, int]]
    turnaround: list[Turnaround]
    backlog: list[dict]  # {"label", "counts": {stage: n}, "total"}

    @property
    def approved(self) -> int:
        return sum(v["approved"] for v in self.stage_totals.values())

    @property
    def rejected(self) -> int:
        return sum(v["rejected"] for v in self.stage_totals.values())

    @property
    def approval_rate(self) -> float | None:
        total = self.approved + self.rejected
        return self.approved / total if total else None

    @property
    def in_batches(self) -> int:
        return sum(r.in_batches for r in self.reviewers)

    @property
    def single(self) -> int:
        return self.approved + self.rejected - self.in_batches


def review_stats(days: int = 30, now: datetime | None = None) -> ReviewStats:
    now = now or datetime.now(timezone.utc)
    since = now - timedelta(days=days)
    conn = db.session.connection()
    reviewers: dict[str, ReviewerFigures] = {}
    stage_totals = {stage: {"approved": 0, "rejected": 0} for stage in STAGES}
    for reviewer, stage, approved, rejected, in_batches in conn.execute(text(
        "SELECT coalesce(reviewer_email, '(unknown)'), coalesce(stage, '(none)'), "
        "count(*) FILTER (WHERE action = 'stage_approved'), count(*) FILTER (WHERE action = 'stage_rejected'), "
        "count(*) FILTER (WHERE details ? 'batch') "
        "FROM audit_logs WHERE action IN ('stage_approved', 'stage_rejected') AND created_at >= :since "
        "GROUP BY 1, 2 ORDER BY 1, 2"
    ), {"since": since}):
        figures = reviewers.setdefault(reviewer, ReviewerFigures(reviewer))
        figures.by_stage[stage] = {"approved": approved, "rejected": rejected}
        figures.in_batches += in_batches
        totals = stage_totals.setdefault(stage, {"approved": 0, "rejected": 0})
        totals["approved"] += approved
        totals["rejected"] += rejected

    turnaround = []
    for stage, count, median, p90 in conn.execute(text(
        "WITH decided AS ("
        "  SELECT a.stage, a.created_at AS decided_at, coalesce(("
        "    SELECT max(s.created_at) FROM audit_logs s WHERE s.order_id = a.order_id AND s.stage = a.stage "
        "    AND s.action = ANY(:submitted) AND s.created_at < a.created_at), rs.created_at) AS submitted_at "
        "  FROM audit_logs a JOIN review_stages rs ON rs.order_id = a.order_id AND rs.stage_name = a.stage "
        "  WHERE a.action IN ('stage_approved', 'stage_rejected') AND a.created_at >= :since) "
        "SELECT coalesce(stage, 'all'), count(*), "
        "  percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM decided_at - submitted_at)), "
        "  percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM decided_at - submitted_at)) "
        "FROM decided WHERE submitted_at <= decided_at GROUP BY GROUPING SETS ((stage), ()) "
        "ORDER BY stage NULLS LAST"
    ), {"since": since, "submitted": list(SUBMITTED)}):
        turnaround.append(Turnaround(stage, count, _float(median), _float(p90)))
    order = {name: i for i, name in enumerate(STAGES + ("all",))}
    turnaround.sort(key=lambda t: order.get(t.stage, len(order)))

    return ReviewStats(
        since=since, days=days,
        reviewers=sorted(reviewers.values(), key=lambda r: (-r.total, r.reviewer)),
        stage_totals=stage_totals, turnaround=turnaround, backlog=backlog_by_age(conn, now),
    )


def backlog_by_age(conn, now: datetime) -> list[dict]:
    """Stages waiting (pending or in review), counted per age bucket and stage, by time since created."""
    rows = conn.execute(text(
        "SELECT stage_name, width_bucket(extract(epoch FROM (:now - created_at)), :bounds) AS bucket, count(*) "
        "FROM review_stages WHERE status IN ('pending', 'in_review') GROUP BY 1, 2"
    ), {"now": now, "bounds": [limit.total_seconds() for _, limit in BACKLOG_BUCKETS if limit is not None]})
    buckets = [{"label": label, "counts": {stage: 0 for stage in STAGES}, "total": 0} for label, _ in BACKLOG_BUCKETS]
    for stage, bucket, count in rows:
        entry = buckets[min(int(bucket), len(buckets) - 1)]
        entry["counts"][stage] = entry["counts"].get(stage, 0) + count
        entry["total"] += count
    return buckets


def _float(value) -> float | None:
    return None if value is None else float(value)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
