"""The customer's approval store (Step 7): approve_stage upserts, get_stage_status answers."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from lhb_review.extensions import db
from lhb_review.models import Approval
from lhb_review.review.approvals import approve_stage, get_stage_status
from lhb_review.core.stages import STAGE_NAMES, UnknownStage


def test_stage_names_are_the_pipeline_order():
    assert STAGE_NAMES == ("preBria", "postBria", "postPdf")


def test_first_approval_inserts_a_row_for_the_system_reviewer(app):
    row = approve_stage("ORD-1", "preBria")
    assert (row.order_id, row.stage, row.status) == ("ORD-1", "preBria", "approved")
    assert row.reviewer_email == "system@littleherolabs.com"
    assert row.approved_at is not None
    assert db.session.scalar(select(func.count()).select_from(Approval)) == 1


def test_second_approval_updates_reviewer_and_time(app):
    first = approve_stage("ORD-1", "postBria", "first@example.com")
    db.session.execute(update(Approval).values(approved_at=func.now() - func.make_interval(0, 0, 0, 1)))
    db.session.commit()
    earlier = db.session.scalar(select(Approval.approved_at))
    second = approve_stage("ORD-1", "postBria", "second@example.com")
    assert second.id == first.id
    assert second.reviewer_email == "second@example.com"
    assert second.approved_at > earlier
    assert db.session.scalar(select(func.count()).select_from(Approval)) == 1


def test_unknown_pair_is_pending(app):
    assert get_stage_status("NEVER-SEEN", "postPdf") == "pending"


def test_approved_pair_is_approved(app):
    approve_stage("ORD-2", "postPdf")
    assert get_stage_status("ORD-2", "postPdf") == "approved"
    assert get_stage_status("ORD-2", "preBria") == "pending"


@pytest.mark.parametrize("bad", ["prebria", "final", "", None, "preBria; DROP TABLE approvals"])
def test_bad_stage_is_refused_and_writes_nothing(app, bad):
    with pytest.raises(UnknownStage):
        approve_stage("ORD-3", bad)
    with pytest.raises(UnknownStage):
        get_stage_status("ORD-3", bad)
    assert db.session.scalar(select(func.count()).select_from(Approval)) == 0
