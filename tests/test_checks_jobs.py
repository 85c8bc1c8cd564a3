"""The check job flow on a real database: enqueued with the submission, claimed by several workers, bounded,
stale after a resubmission, and the rule that approving over failing checks needs notes."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, select, text, update

from lhb_review.core.actors import Actor
from lhb_review.core.errors import Invalid
from lhb_review.core.storage import get_storage
from lhb_review.extensions import db
from lhb_review.models import AuditLog, CheckRun, ReviewStage
from lhb_review import review
from lhb_review.review.checks import ChecksFailing, enqueue_checks, failing_checks, jobs, rerun, stage_checks
from lhb_review.review.checks.isolated import Limits
from tests.check_files import asset, png
from tests.factories import make_order

PIPELINE = Actor(email="pipeline-prod", kind="token")
REVIEWER = Actor(email="rev@example.com", ip="192.0.2.10", user_agent="pytest")
SPECS = {"book_specs": {"title": "Maya and the Moon", "pages": 24, "trim_size": "8.5 x 8.5 in",
                        "dedication": "For Maya, with love from Grandma."},
         "character_specs": {"name": "Maya"}}


def settings(app, **limits) -> jobs.WorkerSettings:
    base = jobs.WorkerSettings.from_config(app.config)
    return jobs.WorkerSettings(base.checks, Limits(**limits) if limits else base.limits, lease=base.lease,
                               max_attempts=base.max_attempts, poll=0.1)


def stored(order_id: str, stage: str, name: str, data: bytes, content_type: str) -> dict:
    key = f"orders/{order_id}/{stage}/{name}"
    get_storage().put(key, data, content_type)
    return asset(key, data, content_type)


def runs(order_id: str, stage: str) -> list[CheckRun]:
    db.session.expire_all()
    return list(db.session.scalars(select(CheckRun).where(CheckRun.order_id == order_id, CheckRun.stage == stage)
                                   .order_by(CheckRun.enqueued_at, CheckRun.id)))


def pdf_order(pdf: bytes, **fields):
    order = make_order(r2_assets={}, **SPECS, **fields)
    review.submit(PIPELINE, order.order_id, "preBria",
                       [stored(order.order_id, "preBria", "front.png", png(1200, 1200), "image/png")])
    return order


def test_a_submission_enqueues_its_checks_in_its_own_transaction(app):
    order = make_order(r2_assets={}, **SPECS)
    front = stored(order.order_id, "preBria", "front.png", png(1200, 1200), "image/png")
    review.submit(PIPELINE, order.order_id, "preBria", [front])
    [run] = runs(order.order_id, "preBria")
    submitted = db.session.scalar(select(AuditLog.created_at).where(
        AuditLog.order_id == order.order_id, AuditLog.action == "stage_submitted"))
    # now() is the transaction's start: the same instant proves the run was written by the submitting transaction
    assert (run.state, run.enqueued_at) == ("pending", submitted)
    assert stage_checks(order.order_id, "preBria") == {"state": "pending", "results": []}
    review.submit(PIPELINE, order.order_id, "preBria", [front])  # unchanged: nothing new to check
    assert len(runs(order.order_id, "preBria")) == 1


def test_a_refused_submission_enqueues_nothing(app):
    order = make_order(r2_assets={}, **SPECS)
    with pytest.raises(Invalid):
        review.submit(PIPELINE, order.order_id, "preBria", [{"key": "x", "content_type": "image/png"}])
    assert runs(order.order_id, "preBria") == []


def test_the_worker_stores_results_per_fingerprint_and_the_api_shows_them(app):
    order = make_order(r2_assets={}, **SPECS)
    review.submit(PIPELINE, order.order_id, "preBria", [
        stored(order.order_id, "preBria", "front.png", png(1200, 1200), "image/png"),
        stored(order.order_id, "preBria", "side.png", png(600, 800), "image/png"),
    ])
    assert jobs.run_worker(settings(app), once=True) == 1
    [run] = runs(order.order_id, "preBria")
    assert run.state == "done" and run.failing == ["image.resolution"]
    answer = stage_checks(order.order_id, "preBria")
    assert answer["state"] == "done"
    assert answer["results"][0] == {"check": "image.resolution", "outcome": "fail", "asset": run.results[0]["asset"],
                                    "page": None, "message": run.results[0]["message"]}
    assert answer["results"][0]["asset"].endswith("side.png")
    assert {r["outcome"] for r in answer["results"][1:]} == {"pass"}


def test_a_resubmission_makes_the_old_results_stale_and_queues_new_ones(app):
    order = make_order(r2_assets={}, **SPECS)
    small = stored(order.order_id, "preBria", "front.png", png(600, 600), "image/png")
    review.submit(PIPELINE, order.order_id, "preBria", [small])
    jobs.run_worker(settings(app), once=True)
    assert failing_checks(order.order_id, "preBria") == ["image.resolution"]
    big = stored(order.order_id, "preBria", "front-2.png", png(1500, 1500), "image/png")
    review.submit(PIPELINE, order.order_id, "preBria", [big])
    old, new = runs(order.order_id, "preBria")
    assert old.stale_at is not None and old.state == "done" and new.stale_at is None and new.state == "pending"
    assert stage_checks(order.order_id, "preBria")["state"] == "pending"
    assert failing_checks(order.order_id, "preBria") == []
    jobs.run_worker(settings(app), once=True)
    assert stage_checks(order.order_id, "preBria")["state"] == "done"
    assert failing_checks(order.order_id, "preBria") == []


def test_rerun_queues_fresh_runs_and_makes_the_current_ones_stale(app):
    order = make_order(r2_assets={}, **SPECS)
    review.submit(PIPELINE, order.order_id, "preBria",
                       [stored(order.order_id, "preBria", "front.png", png(1200, 1200), "image/png")])
    jobs.run_worker(settings(app), once=True)
    [again] = rerun(order.order_id, "preBria")
    old, new = runs(order.order_id, "preBria")
    assert (old.stale_at is not None, new.id, new.reason) == (True, again.id, "rerun")


def test_two_workers_never_take_the_same_run(app, database_url):
    orders = [make_order(r2_assets={}, **SPECS) for _ in range(4)]
    for order in orders:
        review.submit(PIPELINE, order.order_id, "preBria",
                           [stored(order.order_id, "preBria", "front.png", png(1100, 1100), "image/png")])
    ids = [r.id for o in orders for r in runs(o.order_id, "preBria")]
    # Another worker holds the first run's row locked (mid-claim): this one skips it instead of waiting.
    other = create_engine(database_url.replace("postgresql://", "postgresql+psycopg2://", 1))
    with other.connect() as conn:
        conn.execute(text("SELECT id FROM check_runs WHERE id = :id FOR UPDATE"), {"id": ids[0]})
        claimed = jobs.claim("worker-b", settings(app), limit=10)
        conn.rollback()
    other.dispose()
    assert sorted(c.id for c in claimed) == sorted(ids[1:])
    # And two real workers at once: every run done exactly once.
    db.session.execute(update(CheckRun).where(CheckRun.id.in_(ids))
                       .values(state="pending", locked_by=None, locked_until=None, attempts=0))
    db.session.commit()
    done: list[int] = []

    def work(name: str) -> None:
        with app.app_context():
            done.append(jobs.run_worker(settings(app), once=True, worker=name))
            db.session.remove()

    threads = [threading.Thread(target=work, args=(f"worker-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sum(done) == 4
    finished = [r for o in orders for r in runs(o.order_id, "preBria")]
    assert [(r.state, r.attempts) for r in finished] == [("done", 1)] * 4


def test_a_run_whose_worker_died_is_taken_over_after_its_lease_and_closed_as_error_after_too_many(app):
    order = make_order(r2_assets={}, **SPECS)
    review.submit(PIPELINE, order.order_id, "preBria",
                       [stored(order.order_id, "preBria", "front.png", png(1100, 1100), "image/png")])
    [first] = jobs.claim("worker-a", settings(app))
    assert jobs.claim("worker-b", settings(app)) == []  # leased
    db.session.execute(update(CheckRun).where(CheckRun.id == first.id).values(locked_until=text("now() - interval '1 s'")))
    db.session.commit()
    [taken] = jobs.claim("worker-b", settings(app))
    assert (taken.id, taken.attempts) == (first.id, 2)
    assert jobs.finish(first, "worker-a", []) is False  # the dead worker's late answer is dropped
    db.session.execute(update(CheckRun).where(CheckRun.id == first.id).values(attempts=3, locked_until=text("now() - interval '1 s'")))
    db.session.commit()
    [last] = jobs.claim("worker-c", settings(app))
    assert jobs.work_one(last, "worker-c", settings(app)) is True
    [run] = runs(order.order_id, "preBria")
    assert (run.state, run.failing, run.results[0]["check"]) == ("done", ["checks.run"], "checks.run")


def test_a_hostile_file_and_a_crashing_check_process_are_recorded_as_errors_and_the_worker_goes_on(app):
    order = make_order(r2_assets={}, **SPECS)
    review.submit(PIPELINE, order.order_id, "preBria",
                       [stored(order.order_id, "preBria", "front.png", png(1100, 1100), "image/png")])
    # 8 MB: the check process cannot even start; the worker records why and lives on.
    assert jobs.run_worker(settings(app, seconds=10, memory_mb=8), once=True) == 1
    [run] = runs(order.order_id, "preBria")
    assert run.state == "done" and "file.decodes" in run.failing
    [bad] = [r for r in run.results if r["outcome"] == "error"]
    assert bad["asset"].endswith("front.png") and "memory" in bad["message"]


def test_a_missing_file_fails_file_exists_through_the_worker(app):
    order = make_order(r2_assets={}, **SPECS)
    ghost = asset(f"orders/{order.order_id}/preBria/ghost.png", png(10, 10), "image/png")
    review.submit(PIPELINE, order.order_id, "preBria", [ghost])
    jobs.run_worker(settings(app), once=True)
    assert failing_checks(order.order_id, "preBria") == ["file.exists"]


def approved_stage_with_failing_checks(app):
    order = make_order(r2_assets={}, **SPECS)
    review.submit(PIPELINE, order.order_id, "preBria",
                       [stored(order.order_id, "preBria", "front.png", png(500, 500), "image/png")])
    jobs.run_worker(settings(app), once=True)
    return order


def test_approving_over_failing_checks_needs_notes_and_the_audit_lists_what_was_overridden(app):
    order = approved_stage_with_failing_checks(app)
    with pytest.raises(ChecksFailing) as refused:
        review.approve(REVIEWER, order.order_id, "preBria", notes="  ")
    assert refused.value.status == 422 and refused.value.code == "checks_failing"
    assert refused.value.context["failing"] == ["image.resolution"]
    db.session.expire_all()
    row = db.session.scalar(select(ReviewStage).where(ReviewStage.order_id == order.order_id))
    assert row.status == "pending"
    review.approve(REVIEWER, order.order_id, "preBria", notes="The customer sent only this photo.")
    details = db.session.scalar(select(AuditLog.details).where(
        AuditLog.order_id == order.order_id, AuditLog.action == "stage_approved"))
    assert details["overridden_checks"] == ["image.resolution"]


def test_the_api_refuses_an_approval_over_failing_checks_with_checks_failing(app):
    from lhb_review.pipeline import tokens
    _, token = tokens.create(Actor(email="cli@localhost", kind="system"), "pipeline-checks")
    order = approved_stage_with_failing_checks(app)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    got = client.get(f"/api/v1/orders/{order.order_id}/stages/preBria", headers=headers).get_json()
    assert got["checks"]["state"] == "done" and got["checks"]["results"][0]["outcome"] == "fail"
    refused = client.post(f"/api/v1/orders/{order.order_id}/stages/preBria/approve", json={}, headers=headers)
    assert refused.status_code == 422
    error = refused.get_json()["error"]
    assert (error["code"], error["details"]["failing"]) == ("checks_failing", ["image.resolution"])
    assert "notes" in error["fields"]
    assert client.get(f"/api/v1/orders/{order.order_id}/stages/preBria", headers=headers).get_json()["review_status"] == "pending"
    ok = client.post(f"/api/v1/orders/{order.order_id}/stages/preBria/approve",
                     json={"notes": "Accepted: the only photo there is."}, headers=headers)
    assert ok.status_code == 200 and ok.get_json()["stage"]["checks"]["state"] == "done"


def test_the_webhook_payload_carries_the_checks(app):
    order = approved_stage_with_failing_checks(app)
    from lhb_review.models import Order, WebhookDelivery
    db.session.execute(update(Order).where(Order.order_id == order.order_id)
                       .values(webhooks=["https://pipeline.example/hooks"]))
    db.session.commit()
    review.reject(REVIEWER, order.order_id, "preBria", notes="Too small", reasons=["other"])
    payload = db.session.scalar(select(WebhookDelivery.payload).where(WebhookDelivery.order_id == order.order_id))
    assert payload["checks"]["state"] == "done"
    assert payload["checks"]["results"][0]["check"] == "image.resolution"


def test_enqueue_checks_without_force_does_not_duplicate_the_current_run(app):
    order = make_order(r2_assets={}, **SPECS)
    review.submit(PIPELINE, order.order_id, "preBria",
                       [stored(order.order_id, "preBria", "front.png", png(1100, 1100), "image/png")])
    assert enqueue_checks(order.order_id, "preBria") is None
    db.session.rollback()
    assert len(runs(order.order_id, "preBria")) == 1


def test_the_queue_marks_each_stage_with_its_checks_and_filters_on_failing_ones(app):
    from lhb_review.review import queries
    failing = approved_stage_with_failing_checks(app)
    passing = make_order(r2_assets={}, **SPECS)
    review.submit(PIPELINE, passing.order_id, "preBria",
                       [stored(passing.order_id, "preBria", "front.png", png(1200, 1200), "image/png")])
    jobs.run_worker(settings(app), once=True)
    waiting = make_order(r2_assets={}, **SPECS)
    review.submit(PIPELINE, waiting.order_id, "preBria",
                       [stored(waiting.order_id, "preBria", "front.png", png(1200, 1200), "image/png")])
    marks = {r.order_id: r.checks for r in queries.queue_page(queries.parse_queue_filter({})).rows}
    assert (marks[failing.order_id], marks[passing.order_id], marks[waiting.order_id]) == ("failing", "pass", "pending")
    only = queries.queue_page(queries.parse_queue_filter({"checks": "failing"})).rows
    assert [r.order_id for r in only] == [failing.order_id]
    with pytest.raises(queries.BadQuery):
        queries.parse_queue_filter({"checks": "maybe"})


def test_a_replacement_upload_queues_checks_of_the_new_file_and_makes_the_old_results_stale(app):
    from lhb_review.review import replace_asset
    order = make_order(r2_assets={}, **SPECS)
    review.submit(PIPELINE, order.order_id, "preBria",
                       [stored(order.order_id, "preBria", "front.png", png(600, 600), "image/png")])
    jobs.run_worker(settings(app), once=True)
    assert failing_checks(order.order_id, "preBria") == ["image.resolution"]
    replace_asset(REVIEWER, order.order_id, "preBria", f"orders/{order.order_id}/preBria/front.png",
                  png(1300, 1300), filename="bigger.png")
    old, new = runs(order.order_id, "preBria")
    assert (old.stale_at is not None, new.state, new.reason) == (True, "pending", "replaced")
    jobs.run_worker(settings(app), once=True)
    assert stage_checks(order.order_id, "preBria")["state"] == "done"
    assert failing_checks(order.order_id, "preBria") == []


def test_the_commands_rerun_and_work_the_checks_and_refuse_unknown_orders_and_stages(app, runner):
    order = make_order(r2_assets={}, **SPECS)
    review.submit(PIPELINE, order.order_id, "preBria",
                       [stored(order.order_id, "preBria", "front.png", png(1200, 1200), "image/png")])
    done = runner.invoke(args=["checks", "run", "--once"])
    assert done.exit_code == 0 and "1 check runs done" in done.output
    again = runner.invoke(args=["checks", "rerun", order.order_id, "preBria"])
    assert again.exit_code == 0 and "Queued 1 check runs" in again.output
    assert stage_checks(order.order_id, "preBria")["state"] == "pending"
    assert runner.invoke(args=["checks", "rerun", "NO-SUCH-ORDER"]).exit_code == 1
    unknown = runner.invoke(args=["checks", "rerun", order.order_id, "cover"])
    assert unknown.exit_code == 1 and "cover" in unknown.output


@pytest.mark.parametrize("htmx", [False, True])
def test_the_stage_page_refuses_an_approval_over_failing_checks_without_notes_and_says_why(app, login_as, htmx):
    from tests.factories import make_user
    order = approved_stage_with_failing_checks(app)
    browser = login_as(make_user())
    page = f"/orders/{order.order_id}/stages/preBria"
    browser.refresh_csrf(page)
    refused = browser.post(f"{page}/approve", {"notes": ""}, htmx=htmx)
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "say in the notes why it is approved anyway" in body
    assert ("checks-panel" in body) is not htmx  # the whole page (with its checks panel) or just the decision panel
    db.session.expire_all()
    assert db.session.scalar(select(ReviewStage.status).where(ReviewStage.order_id == order.order_id)) != "approved"
    browser.refresh_csrf(page)
    approved = browser.post(f"{page}/approve", {"notes": "Only photo the customer has."}, htmx=htmx)
    assert approved.status_code == (200 if htmx else 303)
    db.session.expire_all()
    assert db.session.scalar(select(ReviewStage.status).where(ReviewStage.order_id == order.order_id)) == "approved"
