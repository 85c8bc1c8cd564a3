"""The stage order holds on every path: when an earlier stage stops being approved, every later approved or
in-review stage returns to pending in the same transaction; the database refuses any commit that breaks the
order; and the pipeline's own approveStage SQL, run straight against the database, shows truthfully."""
from __future__ import annotations

import psycopg2
import pytest
from sqlalchemy import select

from lhb_review import review
from lhb_review.core.actors import Actor
from lhb_review.core.errors import Conflict, Forbidden, StageOutOfOrder
from lhb_review.extensions import db
from lhb_review.models import Approval, AuditLog, WebhookDelivery
from lhb_review.review.approvals import get_stage_status
from lhb_review.review.machine import ALLOWED, NEW, Action, Who
from tests.conftest import plain_dsn
from tests.upload_files import image_bytes
from tests.factories import make_order_with_stages, make_user
from tests.flow_helpers import claim_row, stage_row
from tests.pipeline_helpers import Api, asset, make_token, order_body

ANA = Actor(email="ana@example.com", ip="192.0.2.20", user_agent="pytest")
BEN = Actor(email="ben@example.com", ip="192.0.2.21", user_agent="pytest")
ADMIN = Actor(email="admin@example.com", ip="192.0.2.22", user_agent="pytest", is_admin=True)
HOOK = "https://pipeline.example/hooks"

# The customer's approveStage, verbatim from the database setup guide (its $1..$3 as psycopg2 parameters).
APPROVE_STAGE_SQL = """
    INSERT INTO approvals (order_id, stage, status, approved_at, reviewer_email)
    VALUES (%(p1)s, %(p2)s, 'approved', NOW(), %(p3)s)
    ON CONFLICT (order_id, stage) 
    DO UPDATE SET 
      status = 'approved',
      approved_at = NOW(),
      reviewer_email = %(p3)s,
      updated_at = NOW()
    RETURNING *
"""


def approved_order(*later: str, **fields):
    """An order whose preBria is approved by Ana, with postBria and postPdf decided as ``later`` says."""
    order = make_order_with_stages("pending", "pending", "pending", webhooks=[HOOK], **fields)
    review.approve(ANA, order.order_id, "preBria")
    for stage, status in zip(("postBria", "postPdf"), later):
        if status == "approved":
            review.approve(BEN, order.order_id, stage)
        elif status == "rejected":
            review.reject(BEN, order.order_id, stage, "wrong colours", ["print_quality"])
        elif status == "in_review":
            review.claim(BEN, order.order_id, stage)
    return order


def voided_audits(order_id: str) -> list[AuditLog]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditLog).where(AuditLog.order_id == order_id,
                                                          AuditLog.action == "stage_voided")
                                   .order_by(AuditLog.stage)))


def deliveries(order_id: str, event: str) -> list[WebhookDelivery]:
    return list(db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.order_id == order_id,
                                                                 WebhookDelivery.event == event)))


def assert_later_stages_withdrawn(order_id: str, cause: str, actor_email: str) -> None:
    for stage in ("postBria", "postPdf"):
        row = stage_row(order_id, stage)
        assert (row.status, row.reviewer_email, row.reviewed_at) == ("pending", None, None)
        assert get_stage_status(order_id, stage) == "pending"
    audits = voided_audits(order_id)
    assert [a.stage for a in audits] == ["postBria", "postPdf"]
    for row in audits:
        assert row.details["cause"] == cause and row.details["cause_stage"] == "preBria"
        assert row.details["status_before"] == "approved" and row.details["status_after"] == "pending"
        assert row.details["previous_decision"]["reviewer"] == BEN.email
        assert row.reviewer_email == actor_email
    sent = deliveries(order_id, "stage_voided")
    assert sorted(d.stage for d in sent) == ["postBria", "postPdf"]
    assert all(d.payload["status"] == "pending" and d.payload["details"]["cause"] == cause for d in sent)


@pytest.fixture
def api(app, live_server):
    return Api(live_server.url, make_token("pipeline-prod"))


# --- every path that takes an earlier stage out of approved ------------------------------------------------

def test_an_api_resubmission_with_new_assets_withdraws_every_later_approval(app, api):
    api.put("/orders/ORD-SO-1", order_body(webhooks=[HOOK]))
    for stage in ("preBria", "postBria", "postPdf"):
        assert api.put(f"/orders/ORD-SO-1/stages/{stage}", {"assets": [asset(stage)]}).status_code == 201
    review.approve(ANA, "ORD-SO-1", "preBria")
    review.approve(BEN, "ORD-SO-1", "postBria")
    review.approve(BEN, "ORD-SO-1", "postPdf")
    assert api.get("/orders/ORD-SO-1/stages/postPdf").json()["status"] == "approved"

    response = api.put("/orders/ORD-SO-1/stages/preBria", {"assets": [asset("preBria", "v2")]})

    assert response.status_code == 200 and response.json()["stage"]["status"] == "pending"
    assert_later_stages_withdrawn("ORD-SO-1", "preBria changed", "pipeline-prod")
    assert api.get("/orders/ORD-SO-1/stages/postPdf").json()["status"] == "pending"
    assert api.get("/orders/ORD-SO-1/stages/postBria").json()["review_status"] == "pending"


def test_replacing_an_asset_of_an_approved_stage_withdraws_every_later_approval(app):
    order = approved_order("approved", "approved")
    key = order.r2_assets["preBria"][0]["key"]
    result = review.replace_asset(ANA, order.order_id, "preBria", key, image_bytes())
    assert result.voided
    assert_later_stages_withdrawn(order.order_id, "preBria changed", ANA.email)


def test_an_admin_reopening_an_approved_stage_withdraws_every_later_approval(app):
    order = approved_order("approved", "approved")
    review.reopen(ADMIN, order.order_id, "preBria", "the hair colour is wrong after all")
    assert stage_row(order.order_id, "preBria").status == "pending"
    assert_later_stages_withdrawn(order.order_id, "preBria reopened", ADMIN.email)


def test_undoing_an_approval_withdraws_every_later_approval(app):
    order = approved_order("approved", "approved")
    review.undo(ANA, order.order_id, "preBria")
    assert stage_row(order.order_id, "preBria").status == "pending"
    assert_later_stages_withdrawn(order.order_id, "preBria approval undone", ANA.email)


def test_a_rejected_later_stage_stays_rejected(app):
    order = approved_order("approved", "rejected")
    review.reopen(ADMIN, order.order_id, "preBria")
    assert stage_row(order.order_id, "postBria").status == "pending"
    rejected = stage_row(order.order_id, "postPdf")
    assert (rejected.status, rejected.reviewer_email, rejected.reviewer_notes) == ("rejected", BEN.email,
                                                                                  "wrong colours")
    assert [a.stage for a in voided_audits(order.order_id)] == ["postBria"]


def test_a_later_stage_in_review_returns_to_pending_and_its_claim_ends(app):
    order = approved_order("in_review")
    review.reopen(ADMIN, order.order_id, "preBria")
    assert stage_row(order.order_id, "postBria").status == "pending"
    assert claim_row(order.order_id, "postBria") is None
    [voided] = voided_audits(order.order_id)
    assert voided.details["status_before"] == "in_review"


def test_a_withdrawal_changes_nothing_when_the_earlier_stage_was_not_approved(app):
    order = make_order_with_stages("rejected", "pending", webhooks=[HOOK])
    review.reopen(ADMIN, order.order_id, "preBria")
    assert voided_audits(order.order_id) == []
    assert deliveries(order.order_id, "stage_voided") == []


def test_the_stage_page_says_why_its_approval_was_withdrawn(app, login_as):
    order = approved_order("approved")
    review.reopen(ADMIN, order.order_id, "preBria")
    browser = login_as(make_user())
    page = browser.get(f"/orders/{order.order_id}/stages/postBria").get_data(as_text=True)
    assert "was withdrawn" in page and "preBria reopened" in page


# --- the rules, in one table -------------------------------------------------------------------------------

def test_every_state_offers_its_actions_to_someone_and_decided_stages_are_not_decided_again():
    assert set(ALLOWED) == {NEW, "pending", "in_review", "approved", "rejected"}
    assert all(isinstance(who, Who) for actions in ALLOWED.values() for who in actions.values())
    for decided in ("approved", "rejected"):
        assert not {Action.APPROVE, Action.REJECT, Action.CLAIM} & set(ALLOWED[decided])
        assert ALLOWED[decided][Action.REOPEN] == Who.ADMIN and ALLOWED[decided][Action.UNDO] == Who.DECIDER
    assert set(ALLOWED[NEW]) == {Action.SUBMIT, Action.IMPORT}


def test_an_action_the_state_does_not_offer_is_refused_and_writes_nothing(app):
    order = make_order_with_stages("pending")
    with pytest.raises(Conflict, match="nothing to reopen"):
        review.reopen(ADMIN, order.order_id, "preBria")
    with pytest.raises(Forbidden):
        review.reopen(ANA, order.order_id, "preBria")
    assert db.session.scalar(select(db.func.count()).select_from(AuditLog)) == 0


def test_a_later_stage_cannot_be_approved_before_an_earlier_one(app):
    order = make_order_with_stages("pending", "pending")
    with pytest.raises(StageOutOfOrder):
        review.approve(ANA, order.order_id, "postBria")
    assert stage_row(order.order_id, "postBria").status == "pending"


# --- the database holds the order too ----------------------------------------------------------------------

def test_the_database_refuses_a_commit_that_approves_postpdf_while_prebria_is_pending(app, database_url):
    order = make_order_with_stages("pending", "pending", "pending")
    conn = psycopg2.connect(plain_dsn(database_url))
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE review_stages SET status = 'approved' WHERE order_id = %s AND stage_name = 'postPdf'",
                        (order.order_id,))
            with pytest.raises(psycopg2.errors.CheckViolation, match="postPdf is approved while preBria"):
                conn.commit()
    finally:
        conn.close()
    assert stage_row(order.order_id, "postPdf").status == "pending"


def test_the_database_accepts_the_stages_approved_in_order(app, database_url):
    order = make_order_with_stages("pending", "pending", "pending")
    conn = psycopg2.connect(plain_dsn(database_url))
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE review_stages SET status = 'approved' WHERE order_id = %s", (order.order_id,))
        conn.commit()
    finally:
        conn.close()
    assert stage_row(order.order_id, "postPdf").status == "approved"


# --- the pipeline's own approveStage, straight against the database ----------------------------------------

def run_approve_stage(database_url: str, order_id: str, stage: str, reviewer: str) -> dict:
    conn = psycopg2.connect(plain_dsn(database_url))
    try:
        with conn.cursor() as cur:
            cur.execute(APPROVE_STAGE_SQL, {"p1": order_id, "p2": stage, "p3": reviewer})
            columns = [c.name for c in cur.description]
            row = dict(zip(columns, cur.fetchone()))
        conn.commit()
        return row
    finally:
        conn.close()


def test_the_pipelines_approve_stage_sql_shows_as_approved_on_the_dashboard_once(app, api, login_as):
    order = make_order_with_stages("pending", webhooks=[HOOK])
    returned = run_approve_stage(app.config["SQLALCHEMY_DATABASE_URI"], order.order_id, "preBria",
                                 "pipeline-bot@littleherolabs.com")
    assert returned["status"] == "approved"

    row = stage_row(order.order_id, "preBria")
    assert (row.status, row.reviewer_email, row.reviewed_at) == ("approved", "pipeline-bot@littleherolabs.com",
                                                                 returned["approved_at"])
    answer = api.get(f"/orders/{order.order_id}/stages/preBria").json()
    assert (answer["status"], answer["review_status"], answer["reviewer"]) == (
        "approved", "approved", "pipeline-bot@littleherolabs.com")
    queue = login_as(make_user()).get("/queue?status=waiting").get_data(as_text=True)
    assert order.order_id not in queue
    db.session.expire_all()
    audits = db.session.scalars(select(AuditLog).where(AuditLog.order_id == order.order_id)).all()
    assert [(a.action, a.details["source"]) for a in audits] == [("stage_approved", "approvals table")]

    # The same statement again (the pipeline retries) changes nothing and audits nothing more.
    run_approve_stage(app.config["SQLALCHEMY_DATABASE_URI"], order.order_id, "preBria",
                      "pipeline-bot@littleherolabs.com")
    db.session.expire_all()
    assert db.session.scalar(select(db.func.count()).select_from(AuditLog)
                             .where(AuditLog.order_id == order.order_id)) == 1


def test_the_pipelines_approve_stage_out_of_order_succeeds_but_approves_nothing(app, database_url):
    order = make_order_with_stages("pending", "pending")
    returned = run_approve_stage(database_url, order.order_id, "postBria", "pipeline-bot@littleherolabs.com")

    assert returned["status"] == "pending" and "preBria is not approved" in returned["reviewer_notes"]
    assert stage_row(order.order_id, "postBria").status == "pending"
    assert get_stage_status(order.order_id, "postBria") == "pending"
    db.session.expire_all()
    [refused] = db.session.scalars(select(AuditLog).where(AuditLog.order_id == order.order_id)).all()
    assert refused.action == "approval_refused"
    assert refused.details["source"] == "approvals table" and refused.details["waiting_for"] == "preBria"


def test_lhb_reviews_own_approval_is_not_audited_twice_by_the_approvals_trigger(app):
    order = make_order_with_stages("pending")
    review.approve(ANA, order.order_id, "preBria")
    actions = db.session.scalars(select(AuditLog.action).where(AuditLog.order_id == order.order_id)).all()
    assert actions == ["stage_approved"]
    assert db.session.scalar(select(Approval.reviewer_email).where(Approval.order_id == order.order_id)) == ANA.email


# --- one list of audit action names ------------------------------------------------------------------------

def test_every_audit_action_is_listed_once_with_its_words(app):
    from lhb_review.core import audit

    for action in ("stage_voided", "approval_refused", "stage_approved", "approval_imported"):
        assert audit.ACTIONS[action]
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record(ANA, "stage_approvd", order_id="ORD-TYPO")
