"""The decision history of a stage: what each approve or reject saw, why, and what it replaced.

The state machine calls ``before_decision`` once the stage rows are locked: it checks the claim and the
assets the reviewer saw, and snapshots the state an undo returns to.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from datetime import datetime
from typing import Any

from sqlalchemy import select, text

from lhb_review.extensions import db
from lhb_review.models import StageDecision
from lhb_review.review.reasons import UnknownReason, parse_reasons
from lhb_review.models.core import stage_assets
from lhb_review.review import claims, fingerprints
from lhb_review.review.checks.jobs import summary as checks_summary
from lhb_review.core.actors import Actor
from lhb_review.core.errors import Conflict, Invalid


class AssetsChanged(Conflict):
    """The assets changed between the reviewer's look and their decision."""

    code = "assets_changed"


@dataclass
class Seen:
    """What a decision is about to replace and the assets it is made on."""

    now: datetime
    assets: list[dict[str, Any]]
    fingerprint: str
    previous: dict[str, Any]
    claimed: bool = True  # whether the stage has a claim (live or lapsed) for the decision to end
    webhooks: Any = None  # the order's callback URLs as stored, for the outbox
    checks: Any = None  # the stage's current machine-check run (state, results, failing), or None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# Everything a decision checks and snapshots, read in one statement once the stage row is locked. It is
# a statement of its own (not part of the locking one) on purpose: under READ COMMITTED a statement that
# waited for the lock still reads other tables as they were when it started, while this one sees what the
# previous holder of the lock committed (a claim taken over, assets replaced).
DECISION_FACTS_SQL = text("""
    SELECT now() AS now, o.r2_assets, o.webhooks,
           c.order_id IS NOT NULL AS has_claim, c.claimed_by, c.claimed_at, c.renewed_at, c.expires_at,
           a.order_id IS NOT NULL AS has_approval, a.status AS approval_status, a.approved_at,
           a.reviewer_email AS approval_reviewer, a.reviewer_notes AS approval_notes,
           f.order_id IS NOT NULL AS has_fingerprint, f.fingerprint, f.assets AS fingerprint_assets, f.recorded_at,
           r.order_id IS NOT NULL AS has_checks, r.state AS check_state, r.results AS check_results,
           r.failing AS check_failing
      FROM (SELECT 1) AS one
      LEFT JOIN orders o ON o.order_id = :order_id
      LEFT JOIN stage_claims c ON c.order_id = :order_id AND c.stage = :stage
      LEFT JOIN approvals a ON a.order_id = :order_id AND a.stage = :stage
      LEFT JOIN approval_fingerprints f ON f.order_id = :order_id AND f.stage = :stage
      LEFT JOIN check_runs r ON r.order_id = :order_id AND r.stage = :stage AND r.stale_at IS NULL
""")


@dataclass(frozen=True)
class CheckRunSeen:
    """The stage's current check run as the decision read it (what checks.jobs.summary takes)."""

    state: str
    results: Any
    failing: Any


def before_decision(actor: Actor, row, *, expected_fingerprint: str | None = None) -> Seen:
    """Checks shared by approve and reject, on the locked stage row; raises before anything is written.

    ClaimedByOther when someone else holds a live claim; AssetsChanged when the reviewer's page showed
    other assets (``expected_fingerprint``) than the stage has now.
    """
    facts = db.session.execute(DECISION_FACTS_SQL, {"order_id": row.order_id, "stage": row.stage_name}).one()
    now = facts.now
    if facts.has_claim:
        claims.refuse_claim_of_other(actor, facts.claimed_by, facts.expires_at, now)
    assets = stage_assets(facts.r2_assets, row.stage_name)
    current = fingerprints.fingerprint(assets)
    if expected_fingerprint and expected_fingerprint != current:
        raise AssetsChanged(
            "The assets of this stage changed while you were looking at them. Look at the new ones, then decide.",
            expected=expected_fingerprint,
            current=current,
        )
    previous = {
        "stage": {"status": row.status, "reviewed_at": _iso(row.reviewed_at), "reviewer_email": row.reviewer_email,
                  "reviewer_notes": row.reviewer_notes},
        "approval": None if not facts.has_approval else {
            "status": facts.approval_status, "approved_at": _iso(facts.approved_at),
            "reviewer_email": facts.approval_reviewer, "reviewer_notes": facts.approval_notes},
        "claim": None if not facts.has_claim else {
            "claimed_by": facts.claimed_by, "claimed_at": _iso(facts.claimed_at),
            "renewed_at": _iso(facts.renewed_at), "expires_at": _iso(facts.expires_at)},
        "fingerprint": None if not facts.has_fingerprint else {
            "fingerprint": facts.fingerprint, "assets": facts.fingerprint_assets,
            "recorded_at": _iso(facts.recorded_at)},
    }
    checks = CheckRunSeen(facts.check_state, facts.check_results, facts.check_failing) if facts.has_checks else None
    return Seen(now=now, assets=assets, fingerprint=current, previous=previous, claimed=facts.has_claim,
                webhooks=facts.webhooks, checks=checks)


def clean_reasons(values, asset_keys, assets: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Reject reasons (one or more known codes) and the asset keys they point at (keys of this stage)."""
    try:
        reasons = parse_reasons(values)
    except UnknownReason as exc:
        raise Invalid(str(exc), {"reasons": "Pick reasons from the list."}) from None
    if not reasons:
        raise Invalid("Say why: pick at least one reason to reject.", {"reasons": "Pick at least one reason."})
    known = [a["key"] for a in assets]
    given = [str(k) for k in (asset_keys or []) if str(k).strip()]
    unknown = [k for k in given if k not in known]
    if unknown:
        raise Invalid(f"These assets are not part of this stage: {', '.join(unknown)}.",
                      {"asset_keys": "Point only at assets of this stage."})
    return reasons, [k for k in known if k in given]


def audit_details(decision: dict[str, Any]) -> dict[str, Any]:
    """What a decision's audit row says of it (``decision``: the stage_decisions row as written)."""
    details: dict[str, Any] = {"decision_id": str(decision["id"]), "fingerprint": decision["fingerprint"]}
    if decision["outcome"] == "rejected":
        details["reasons"] = list(decision["reasons"])
        details["reason_assets"] = list(decision["reason_assets"])
    return details


def decisions_for(order_id: str, stage: str | None = None, limit: int = 50) -> list[StageDecision]:
    """The stage's (or order's) decisions, newest first, for history panels."""
    query = select(StageDecision).where(StageDecision.order_id == order_id)
    if stage is not None:
        query = query.where(StageDecision.stage == stage)
    return list(db.session.scalars(query.order_by(StageDecision.decided_at.desc()).limit(limit)))


def latest_decision(order_id: str, stage: str) -> StageDecision | None:
    return db.session.scalar(
        select(StageDecision)
        .where(StageDecision.order_id == order_id, StageDecision.stage == stage, StageDecision.undone_at.is_(None))
        .order_by(StageDecision.decided_at.desc())
        .limit(1)
    )


@dataclass(frozen=True)
class StageFacts:
    """What the review page shows about a stage beyond its row, read in one statement."""

    now: datetime
    claim: claims.ClaimView | None  # live claims only
    decision: dict[str, Any] | None  # the latest decision not undone, as JSON
    last_event: dict[str, Any] | None  # the latest approve, reject or void audit row, as JSON
    checks: dict[str, Any] | None = None  # the machine checks, as checks.jobs.summary gives them


FACTS_SQL = text("""
    SELECT now() AS now,
      (SELECT to_jsonb(c) FROM stage_claims c
        WHERE c.order_id = :order_id AND c.stage = :stage AND c.expires_at > now()) AS claim,
      (SELECT to_jsonb(d) - 'previous' FROM stage_decisions d
        WHERE d.order_id = :order_id AND d.stage = :stage AND d.undone_at IS NULL
        ORDER BY d.decided_at DESC LIMIT 1) AS decision,
      (SELECT jsonb_build_object('action', a.action, 'reviewer_email', a.reviewer_email,
                                 'created_at', a.created_at, 'details', a.details)
         FROM audit_logs a
        WHERE a.order_id = :order_id AND a.stage = :stage
          AND a.action IN ('stage_approved', 'stage_rejected', 'stage_undone', 'approval_voided', 'stage_voided',
                         'stage_reopened')
        ORDER BY a.created_at DESC LIMIT 1) AS last_event,
      (SELECT jsonb_build_object('state', r.state, 'results', r.results) FROM check_runs r
        WHERE r.order_id = :order_id AND r.stage = :stage AND r.stale_at IS NULL) AS check_run
""")


def stage_facts(order_id: str, stage: str) -> StageFacts:
    row = db.session.execute(FACTS_SQL, {"order_id": order_id, "stage": stage}).one()
    claim = None
    if row.claim:
        claim = claims.ClaimView(order_id, stage, row.claim["claimed_by"],
                                 datetime.fromisoformat(row.claim["claimed_at"]),
                                 datetime.fromisoformat(row.claim["expires_at"]))
    event = dict(row.last_event) if row.last_event else None
    if event:
        event["created_at"] = datetime.fromisoformat(event["created_at"])
    run = SimpleNamespace(**row.check_run) if row.check_run else None
    return StageFacts(row.now, claim, row.decision, event, checks_summary(run))
