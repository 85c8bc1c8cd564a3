"""Read-side report of reject reasons: how often each reason is given, per stage, over a period."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from lhb_review.extensions import db
from lhb_review.models import StageDecision
from lhb_review.review.reasons import REASON_CODES, label
from lhb_review.core.stages import STAGE_ORDER
from lhb_review.core.clock import db_now

PERIODS: dict[str, int | None] = {"7": 7, "30": 30, "90": 90, "all": None}


@dataclass
class RejectReport:
    since: datetime | None
    counts: dict[tuple[str, str], int] = field(default_factory=dict)  # (stage, reason) -> rejects
    rejects: dict[str, int] = field(default_factory=dict)  # stage -> rejects (a reject may give several reasons)
    decisions: dict[str, int] = field(default_factory=dict)  # stage -> approvals and rejects

    @property
    def reasons(self) -> list[tuple[str, str]]:
        known = [(code, label(code)) for code in REASON_CODES]
        extra = sorted({r for _, r in self.counts} - set(REASON_CODES))
        return known + [(code, label(code)) for code in extra]

    @property
    def stages(self) -> list[str]:
        return [s.value for s in STAGE_ORDER]

    def count(self, stage: str, reason: str) -> int:
        return self.counts.get((stage, reason), 0)

    def total(self, reason: str) -> int:
        return sum(n for (_, r), n in self.counts.items() if r == reason)

    @property
    def max_count(self) -> int:
        return max(self.counts.values(), default=0)


def parse_period(value: str | None) -> str:
    return value if value in PERIODS else "30"


def reject_report(period: str = "30") -> RejectReport:
    """Rejects per stage and reason in the last ``period`` days (``all`` for ever); undone decisions
    are left out, voided ones stay (the reject was real)."""
    days = PERIODS[parse_period(period)]
    since = db_now() - timedelta(days=days) if days else None
    kept = [StageDecision.undone_at.is_(None)]
    if since is not None:
        kept.append(StageDecision.decided_at >= since)
    reason = func.jsonb_array_elements_text(StageDecision.reasons).table_valued("value").alias("reason")
    report = RejectReport(since=since)
    rows = db.session.execute(
        select(StageDecision.stage, reason.c.value, func.count())
        .select_from(StageDecision).join(reason, db.true())
        .where(StageDecision.outcome == "rejected", *kept)
        .group_by(StageDecision.stage, reason.c.value)
    ).all()
    report.counts = {(stage, code): n for stage, code, n in rows}
    for stage, outcome, n in db.session.execute(
        select(StageDecision.stage, StageDecision.outcome, func.count()).where(*kept)
        .group_by(StageDecision.stage, StageDecision.outcome)
    ).all():
        report.decisions[stage] = report.decisions.get(stage, 0) + n
        if outcome == "rejected":
            report.rejects[stage] = n
    return report
