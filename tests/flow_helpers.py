"""Helpers shared by the review-flow tests: read back what the services wrote, move time in the database."""
from __future__ import annotations

from sqlalchemy import select, text

from lhb_review.extensions import db
from lhb_review.models import Approval, ApprovalFingerprint, AuditLog, ReviewStage, StageClaim, StageDecision
from lhb_review.core.actors import Actor

ANA = Actor(email="ana@example.com", ip="192.0.2.20", user_agent="pytest")
BEN = Actor(email="ben@example.com", ip="192.0.2.21", user_agent="pytest")
ADMIN = Actor(email="admin@example.com", ip="192.0.2.22", user_agent="pytest", is_admin=True)


def stage_row(order_id: str, stage: str = "preBria") -> ReviewStage:
    db.session.expire_all()
    return db.session.scalar(select(ReviewStage).where(ReviewStage.order_id == order_id,
                                                        ReviewStage.stage_name == stage))


def approval_row(order_id: str, stage: str = "preBria") -> Approval | None:
    db.session.expire_all()
    return db.session.scalar(select(Approval).where(Approval.order_id == order_id, Approval.stage == stage))


def claim_row(order_id: str, stage: str = "preBria") -> StageClaim | None:
    db.session.expire_all()
    return db.session.scalar(select(StageClaim).where(StageClaim.order_id == order_id, StageClaim.stage == stage))


def fingerprint_row(order_id: str, stage: str = "preBria") -> ApprovalFingerprint | None:
    db.session.expire_all()
    return db.session.scalar(select(ApprovalFingerprint).where(ApprovalFingerprint.order_id == order_id,
                                                               ApprovalFingerprint.stage == stage))


def decision_rows(order_id: str, stage: str = "preBria") -> list[StageDecision]:
    db.session.expire_all()
    return list(db.session.scalars(select(StageDecision).where(StageDecision.order_id == order_id,
                                                               StageDecision.stage == stage)
                                   .order_by(StageDecision.decided_at)))


def audit_actions(order_id: str) -> list[str]:
    return [a.action for a in audit_rows(order_id)]


def audit_rows(order_id: str) -> list[AuditLog]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditLog).where(AuditLog.order_id == order_id)
                                   .order_by(AuditLog.created_at, AuditLog.action)))


def expire_claim(order_id: str, stage: str = "preBria", seconds_ago: int = 1) -> None:
    """Make the stage's claim lapse, as if its time had run out (no sleeping in tests)."""
    db.session.execute(text("UPDATE stage_claims SET expires_at = now() - make_interval(secs => :s) "
                            "WHERE order_id = :o AND stage = :st"), {"s": seconds_ago, "o": order_id, "st": stage})
    db.session.commit()


def age_decisions(order_id: str, seconds: int, stage: str = "preBria") -> None:
    """Move the stage's decisions ``seconds`` into the past (the undo window is measured from them)."""
    db.session.execute(text("UPDATE stage_decisions SET decided_at = decided_at - make_interval(secs => :s) "
                            "WHERE order_id = :o AND stage = :st"), {"s": seconds, "o": order_id, "st": stage})
    db.session.commit()
