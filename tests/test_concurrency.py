"""Reviewers racing on one stage: exactly one decision wins, with one audit row, and approvals agrees."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from lhb_review.extensions import db
from lhb_review.models import Approval, AuditLog, ReviewStage
from tests.conftest import Browser
from tests.factories import PASSWORD, make_order_with_stages, make_user

THREADS = 8


@pytest.mark.parametrize("mix", ["approve", "reject", "mixed"])
@pytest.mark.parametrize("htmx", [False, True])
def test_racing_decisions_record_exactly_one(app, mix, htmx):
    order_id = make_order_with_stages("pending").order_id
    emails = [make_user(f"racer{i}@example.com").email for i in range(THREADS)]
    actions = {"approve": ["approve"] * THREADS, "reject": ["reject"] * THREADS,
               "mixed": ["approve", "reject"] * (THREADS // 2)}[mix]
    barrier = threading.Barrier(THREADS)
    results: list[tuple[str, str, int]] = []
    errors: list[BaseException] = []

    def race(email, action):
        try:
            browser = Browser(app.test_client())  # its own cookies, session and database connection
            assert browser.login(email, PASSWORD).status_code == 302
            browser.refresh_csrf("/queue")
            barrier.wait(timeout=30)
            response = browser.post(f"/orders/{order_id}/stages/preBria/{action}",
                                    {"notes": f"{action} by {email}", "reasons": "other"}, htmx=htmx)
            results.append((email, action, response.status_code))
        except BaseException as exc:  # surfaced below: a thread's assertion must fail the test
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=race, args=(u, a)) for u, a in zip(emails, actions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(results) == THREADS

    won = [r for r in results if r[2] in (200, 303)]
    assert len(won) == 1, results
    assert sorted(r[2] for r in results if r not in won) == [409] * (THREADS - 1)
    winner, action, _ = won[0]

    db.session.expire_all()
    stage = db.session.scalar(select(ReviewStage).where(ReviewStage.order_id == order_id))
    expected = "approved" if action == "approve" else "rejected"
    assert (stage.status, stage.reviewer_email, stage.reviewer_notes) == (expected, winner, f"{action} by {winner}")
    [approval] = db.session.scalars(select(Approval).where(Approval.order_id == order_id)).all()
    assert approval.status == ("approved" if expected == "approved" else "pending")
    assert approval.reviewer_email == winner
    [audit] = db.session.scalars(select(AuditLog).where(AuditLog.order_id == order_id)).all()
    assert (audit.action, audit.reviewer_email) == (f"stage_{expected}", winner)
    assert audit.details["status_before"] == "pending" and audit.details["status_after"] == expected
