"""Reviewer statistics: decisions, approval rate, turnaround and backlog, charted as server-side SVG."""
from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import login_required

from lhb_review.ops import opsstats
from lhb_review.review import reports

bp = Blueprint("stats", __name__)
PERIODS = (7, 30, 90, 365)
LABEL_WIDTH = 190
BAR_WIDTH = 300
ROW_HEIGHT = 26


def _scale(value: float, largest: float) -> float:
    return round(BAR_WIDTH * value / largest, 1) if largest else 0.0


def chart_label(reviewer: str, limit: int = 22) -> str:
    """A reviewer's e-mail short enough for the chart's label column: the part before the @, cut with an
    ellipsis (the full address is in the bar's tooltip and in the table below)."""
    name = reviewer.split("@", 1)[0] if "@" in reviewer else reviewer
    return name if len(name) <= limit else name[: limit - 1] + "…"


def reviewer_chart(stats: opsstats.ReviewStats) -> dict:
    """Stacked horizontal bars: approved then rejected, one row per reviewer."""
    largest = max((r.total for r in stats.reviewers), default=0)
    rows = []
    for i, r in enumerate(stats.reviewers):
        approved_w = _scale(r.approved, largest)
        rows.append({
            "y": i * ROW_HEIGHT, "label": chart_label(r.reviewer), "name": r.reviewer, "approved": r.approved, "rejected": r.rejected,
            "approved_w": approved_w, "rejected_w": _scale(r.rejected, largest),
            "rate": r.approval_rate,
        })
    return {"rows": rows, "height": max(len(rows), 1) * ROW_HEIGHT + 10}


def turnaround_chart(stats: opsstats.ReviewStats) -> dict:
    """Two bars per stage: median and 90th percentile time from submission to decision."""
    largest = max((t.p90_seconds or 0 for t in stats.turnaround), default=0)
    rows = []
    for i, t in enumerate(stats.turnaround):
        rows.append({
            "y": i * ROW_HEIGHT * 2, "label": t.stage, "decisions": t.decisions,
            "median_w": _scale(t.median_seconds or 0, largest), "p90_w": _scale(t.p90_seconds or 0, largest),
            "median": opsstats.format_duration(t.median_seconds), "p90": opsstats.format_duration(t.p90_seconds),
        })
    return {"rows": rows, "height": max(len(rows), 1) * ROW_HEIGHT * 2 + 10}


def backlog_chart(stats: opsstats.ReviewStats) -> dict:
    largest = max((b["total"] for b in stats.backlog), default=0)
    rows = [{"y": i * ROW_HEIGHT, "label": b["label"], "total": b["total"], "w": _scale(b["total"], largest)}
            for i, b in enumerate(stats.backlog)]
    return {"rows": rows, "height": len(rows) * ROW_HEIGHT + 10}


@bp.get("/stats")
@login_required
def index():
    try:
        days = int(request.args.get("days", 30))
    except ValueError:
        days = 30
    if days not in PERIODS:
        days = 30
    stats = opsstats.review_stats(days)
    return render_template(
        "stats/index.html", stats=stats, periods=PERIODS, stages=opsstats.STAGES,
        reviewers=reviewer_chart(stats), turnaround=turnaround_chart(stats), backlog=backlog_chart(stats),
        label_width=LABEL_WIDTH, bar_width=BAR_WIDTH, row_height=ROW_HEIGHT,
        duration=opsstats.format_duration,
    )


@bp.get("/reports/rejects")
@login_required
def reject_report():
    period = reports.parse_period(request.args.get("period"))
    return render_template("reports/rejects.html", report=reports.reject_report(period), period=period,
                           periods=reports.PERIODS)
