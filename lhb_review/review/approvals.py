"""The approval store of the customer's design (Step 7): approve_stage and get_stage_status."""
from __future__ import annotations

from sqlalchemy import func, select, tuple_
from sqlalchemy.dialects.postgresql import insert

from lhb_review.extensions import db
from lhb_review.models import Approval, ApprovalFingerprint, Order
from lhb_review.models.core import asset_entries, stage_assets
from lhb_review.core.stages import Stage, parse_stage
from lhb_review.review import fingerprints
from lhb_review.core.actors import SYSTEM_EMAIL


def upsert_approval(order_id: str, stage: Stage, *, status: str, reviewer: str, notes: str | None = None,
                    assets: list | None = None, approved_at=None, record_assets: bool = True, along=()):
    """Insert or update the (order, stage) approvals row inside the caller's transaction, in one statement
    (``INSERT ... ON CONFLICT ... RETURNING``); returns the row as written.

    An approval also records the fingerprint of the stage's assets as they are now: the approval
    covers those assets and no others (see get_stage_status). ``assets``: the stage's assets when the
    caller has already read them in this transaction (else they are read here); ``approved_at``: when,
    if not now (an imported approval keeps its own time); ``record_assets=False`` records no fingerprint;
    ``along``: the caller's own writes as CTEs, sent in the same statement.
    """
    approved = status == "approved"
    values = dict(
        order_id=order_id,
        stage=stage.value,
        status=status,
        approved_at=(approved_at or func.now()) if approved else None,
        reviewer_email=reviewer,
        reviewer_notes=notes,
    )
    table = Approval.__table__
    stmt = insert(table).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.order_id, table.c.stage],
        set_={
            "status": stmt.excluded.status,
            "approved_at": stmt.excluded.approved_at,
            "reviewer_email": stmt.excluded.reviewer_email,
            "reviewer_notes": stmt.excluded.reviewer_notes,
            "updated_at": func.now(),
        },
    ).returning(*table.c)
    if approved and record_assets:  # the fingerprint's upsert travels in the same statement, as a data-modifying CTE
        recorded = fingerprints.record_approval_statement(order_id, stage, assets)
        stmt = stmt.add_cte(recorded.returning(ApprovalFingerprint.order_id).cte("recorded_fingerprint"))
    for cte in along:  # the caller's writes that go with it (a decision's history row), in the same statement
        stmt = stmt.add_cte(cte)
    return db.session.execute(stmt).one()


def approve_stage(order_id: str, stage: str, reviewer: str = SYSTEM_EMAIL):
    """The seed's approveStage: record (order, stage) as approved by ``reviewer`` and return the row.

    Inserts the row, or updates status, approved_at, reviewer_email and updated_at of the existing one.
    An unknown stage name raises UnknownStage and writes nothing. This is the bare store; reviewer
    decisions go through services.decisions, which also checks the review rules and audits.
    """
    parsed = parse_stage(stage)
    if not order_id or not str(order_id).strip():
        raise ValueError("order_id is required")
    try:
        row = upsert_approval(str(order_id), parsed, status="approved", reviewer=reviewer)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return row


def get_stage_status(order_id: str, stage: str) -> str:
    """The seed's getStageStatus: "approved" or "pending" ("pending" for a pair never seen).

    "approved" only while the stage's assets are the ones the approval saw (see stage_statuses).
    """
    parsed = parse_stage(stage)
    return stage_statuses([(str(order_id), parsed.value)])[(str(order_id), parsed.value)]


def stage_statuses(keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """getStageStatus for many (order_id, stage) pairs in one query.

    When the fingerprint recorded with an approval differs from the fingerprint of the stage's assets
    now, the answer is "pending", even before anything has voided the approval: an approval never
    covers assets nobody approved. An approval with no recorded fingerprint (written straight into the
    table by an older tool) is taken as it is.
    """
    answers = {key: "pending" for key in keys}
    if not keys:
        return answers
    rows = db.session.execute(
        select(Approval.order_id, Approval.stage, Approval.status, ApprovalFingerprint.fingerprint, Order.r2_assets)
        .select_from(Approval)
        .outerjoin(ApprovalFingerprint, (ApprovalFingerprint.order_id == Approval.order_id)
                   & (ApprovalFingerprint.stage == Approval.stage))
        .outerjoin(Order, Order.order_id == Approval.order_id)
        .where(tuple_(Approval.order_id, Approval.stage).in_(list(answers)))
    ).all()
    for row in rows:
        answers[(row.order_id, row.stage)] = status_answer(row.status, row.fingerprint,
                                                           stage_assets(row.r2_assets, row.stage))
    return answers


def status_answer(approval_status: str | None, approved_fingerprint: str | None, assets) -> str:
    """getStageStatus from an approvals row's status, the fingerprint its approval recorded and the stage's
    assets now: "approved" only while they are the assets that were approved."""
    if approval_status != "approved":
        return "pending"
    if approved_fingerprint is None or fingerprints.fingerprint(asset_entries(assets)) == approved_fingerprint:
        return "approved"
    return "pending"
